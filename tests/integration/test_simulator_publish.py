"""The simulator publishes through a real Mosquitto, and a subscriber gets every reading."""

from __future__ import annotations

import asyncio
from collections import Counter

import aiomqtt
import msgspec
from click.testing import CliRunner

from devices.fleet import fleet
from simulators.cli import simulate
from simulators.faults import FaultRates
from simulators.publisher import Publisher
from simulators.runner import Period, Summary, run
from simulators.simulation import Message, Simulation

HOST = "127.0.0.1"
OCT_1_0800 = 1_790_834_400  # 2026-10-01 08:00 Stockholm time


async def receive_until_quiet(client: aiomqtt.Client, quiet_s: float = 1.0,
                              limit_s: float = 60.0) -> list[aiomqtt.Message]:
    """Every message that arrives until none has come for `quiet_s` seconds."""
    received: list[aiomqtt.Message] = []
    async with asyncio.timeout(limit_s):
        while True:
            try:
                async with asyncio.timeout(quiet_s):
                    received.append(await anext(client.messages))
            except TimeoutError:
                return received


def publish_hour(port: int, prefix: str, rates: FaultRates | None = None) -> Summary:
    simulation = Simulation(fleet("stockholm"), seed=3, rates=rates, topic_prefix=prefix)
    with Publisher(HOST, port, window=200) as publisher:

        def sink(message: Message) -> None:
            publisher.publish(message.topic, message.payload)

        return run(simulation, Period(OCT_1_0800, OCT_1_0800 + 3_600), sink)


def readings_in(messages: list[aiomqtt.Message]) -> int:
    total = 0
    for message in messages:
        assert isinstance(message.payload, bytes)
        total += len(msgspec.json.decode(message.payload))
    return total


async def test_an_hour_of_the_stockholm_fleet_reaches_a_subscriber_reading_for_reading(
    mqtt_port: int, topic_prefix: str
) -> None:
    async with aiomqtt.Client(HOST, mqtt_port) as subscriber:
        await subscriber.subscribe(f"{topic_prefix}/#", qos=1)
        summary = await asyncio.to_thread(publish_hour, mqtt_port, topic_prefix)
        received = await receive_until_quiet(subscriber)
    assert summary.readings == 155 * 60
    assert readings_in(received) == 155 * 60
    assert len(received) == 8 * 60
    topics = Counter(str(m.topic).removeprefix(f"{topic_prefix}/") for m in received)
    assert topics["gateways/gw-essingen/senml"] == 60
    assert topics["devices/aq-hornsgatan-108/senml"] == 60
    assert all(m.qos == 1 for m in received)


async def test_with_faults_the_subscriber_gets_exactly_what_the_summary_reports(
    mqtt_port: int, topic_prefix: str
) -> None:
    rates = FaultRates(offline=0.01, duplicate=0.05, malformed=0.05, foreign=0.05)
    async with aiomqtt.Client(HOST, mqtt_port) as subscriber:
        await subscriber.subscribe(f"{topic_prefix}/#", qos=1)
        summary = await asyncio.to_thread(publish_hour, mqtt_port, topic_prefix, rates)
        received = await receive_until_quiet(subscriber)
    assert len(received) == sum(summary.messages.values())
    assert summary.messages["duplicate"] > 0 and summary.messages["malformed"] > 0
    assert summary.readings == 155 * 60  # late, never lost


async def test_the_simulate_command_backfills_and_reports_what_it_published(
    mqtt_port: int, topic_prefix: str
) -> None:
    args = ["--from", "2026-10-01T08:00", "--to", "2026-10-01T08:30", "--seed", "5",
            "--mqtt-port", str(mqtt_port), "--topic-prefix", topic_prefix, "--no-progress"]
    async with aiomqtt.Client(HOST, mqtt_port) as subscriber:
        await subscriber.subscribe(f"{topic_prefix}/#", qos=1)
        result = await asyncio.to_thread(CliRunner().invoke, simulate, args)
        received = await receive_until_quiet(subscriber)
    assert result.exit_code == 0, result.output
    assert "4,650 readings" in result.output
    assert readings_in(received) == 155 * 30


def test_the_simulate_command_names_the_port_when_no_broker_listens() -> None:
    result = CliRunner().invoke(simulate, ["--from", "-1h", "--to", "now", "--mqtt-port", "9",
                                           "--no-progress"])
    assert result.exit_code == 1
    assert "127.0.0.1:9" in result.output
    assert "STADSPULS_MQTT_PORT" in result.output
