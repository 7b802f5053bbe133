import asyncio
import uuid
from pathlib import Path

import aiomqtt

from deploy.mosquitto import MosquittoBroker
from deploy.ports import free_port
from deploy.stack import service_user

HOST = "127.0.0.1"


async def _receive(client: aiomqtt.Client, count: int) -> list[bytes]:
    received: list[bytes] = []
    async with asyncio.timeout(20):
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            received.append(message.payload)
            if len(received) == count:
                break
    return received


async def _park_session(port: int, client_id: str, topic: str) -> None:
    """Subscribe under a persistent session, then go away, leaving the session open."""
    async with aiomqtt.Client(HOST, port, identifier=client_id, clean_session=False) as c:
        await c.subscribe(topic, qos=1)


async def test_a_reading_published_at_qos1_reaches_a_subscriber(
    mqtt_port: int, topic_prefix: str
) -> None:
    payload = b'[{"bn":"urn:dev:aq-hornsgatan-108:","n":"no2","u":"ug/m3","v":23.4}]'
    async with aiomqtt.Client(HOST, mqtt_port) as subscriber:
        await subscriber.subscribe(f"{topic_prefix}/devices/+/senml", qos=1)
        async with aiomqtt.Client(HOST, mqtt_port) as device:
            await device.publish(f"{topic_prefix}/devices/aq-hornsgatan-108/senml", payload,
                                 qos=1)
        assert await _receive(subscriber, 1) == [payload]


async def test_a_persistent_session_gets_a_backlog_larger_than_the_default_queue(
    mqtt_port: int, topic_prefix: str
) -> None:
    client_id = f"ingest-{uuid.uuid4().hex[:8]}"
    topic = f"{topic_prefix}/devices/+/senml"
    await _park_session(mqtt_port, client_id, topic)
    sent = [f"reading {n}".encode() for n in range(2_500)]  # Mosquitto's default keeps 1000
    async with aiomqtt.Client(HOST, mqtt_port) as device:
        for payload in sent:
            await device.publish(f"{topic_prefix}/devices/d1/senml", payload, qos=1)
    async with aiomqtt.Client(HOST, mqtt_port, identifier=client_id,
                              clean_session=False) as consumer:
        received = await _receive(consumer, len(sent))
    assert sorted(received) == sorted(sent)


async def test_queued_messages_survive_a_broker_restart(state_dir: Path) -> None:
    port = free_port()
    (state_dir / "logs").mkdir()
    broker = MosquittoBroker(state_dir / "mosquitto", port, state_dir / "logs" / "mq.log",
                             service_user())
    broker.start()
    try:
        await _park_session(port, "ingest-restart", "devices/+/senml")
        async with aiomqtt.Client(HOST, port) as device:
            for n in range(10):
                await device.publish("devices/d1/senml", f"r{n}".encode(), qos=1)
        broker.stop()
        broker.start()
        async with aiomqtt.Client(HOST, port, identifier="ingest-restart",
                                  clean_session=False) as consumer:
            received = await _receive(consumer, 10)
        assert sorted(received) == sorted(f"r{n}".encode() for n in range(10))
    finally:
        broker.stop()
