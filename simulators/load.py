"""The load generator: an exact number of readings, published at QoS 1, as fast as the broker
takes them or at a target rate, for the ingest benchmark and the delivery tests.

Readings go to the no2 datastream of air-quality devices (`devices/{id}/senml`), one
second apart per device, so every reading is distinct: the count that lands is the count
that was published.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class LoadPlan:
    """What to publish."""

    devices: list[str]
    readings: int
    records_per_message: int = 10
    start: float = 1_790_000_000.0
    topic_prefix: str = ""
    record: str = "no2"
    unit: str = "ug/m3"

    @property
    def messages(self) -> int:
        return -(-self.readings // self.records_per_message)


@dataclass(frozen=True)
class LoadResult:
    messages: int
    readings: int
    seconds: float
    first_publish: float
    last_ack: float


def messages(plan: LoadPlan) -> Iterator[tuple[str, bytes]]:
    """(topic, payload) of every message of the plan, devices in turn."""
    per_device: dict[str, int] = dict.fromkeys(plan.devices, 0)
    left = plan.readings
    n = 0
    while left > 0:
        device = plan.devices[n % len(plan.devices)]
        count = min(plan.records_per_message, left)
        first = per_device[device]
        per_device[device] = first + count
        pack = [{"bn": f"urn:dev:{device}:", "bt": plan.start + first, "n": plan.record,
                 "u": plan.unit, "v": round(20 + (first % 97) * 0.25, 2)}]
        pack += [{"n": plan.record, "u": plan.unit, "t": float(k),
                  "v": round(20 + ((first + k) % 97) * 0.25, 2)} for k in range(1, count)]
        yield f"{plan.topic_prefix}devices/{device}/senml", _encode(pack)
        left -= count
        n += 1


def publish(host: str, port: int, plan: LoadPlan, *, rate: float | None = None,
            inflight: int = 1000, stamp: bool = False,
            login: tuple[str, str] | None = None) -> LoadResult:
    """Publish the plan at QoS 1 and wait until the broker acknowledged every message.

    Args:
        host: broker host.
        port: broker port.
        plan: what to publish.
        rate: messages per second to aim at; as fast as possible when None.
        inflight: unacknowledged messages allowed at once.
        stamp: set each message's base time to its publish time (for latency work).
        login: (username, password) at the broker; None: anonymous.

    Returns:
        How many messages and readings were published and how long it took.
    """
    done = threading.Event()
    acked = 0
    total = plan.messages

    def on_publish(client: paho.Client, userdata: object, mid: int, reason: object,
                   properties: object) -> None:
        nonlocal acked
        acked += 1
        if acked == total:
            done.set()

    refused: list[str] = []

    def on_connect(client: paho.Client, userdata: object, flags: object, reason: Any,
                   properties: object) -> None:
        if reason.is_failure:
            refused.append(str(reason))
            done.set()

    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
    client.on_connect = on_connect
    client.max_inflight_messages_set(inflight)
    client.max_queued_messages_set(0)
    client.on_publish = on_publish
    if login is not None:
        client.username_pw_set(*login)
    client.connect(host, port, keepalive=60)
    client.loop_start()
    try:
        first = time.time()
        for n, (topic, payload) in enumerate(messages(plan)):
            if stamp:
                payload = _restamp(payload)
            client.publish(topic, payload, qos=1)
            if rate is not None:
                _pace(first, n + 1, rate)
            if n % 1000 == 999:
                # Keep paho's own queue short: it holds every message not yet written.
                while n + 1 - acked > inflight * 4 and not refused:
                    time.sleep(0.001)
            if refused:
                break
        if total and not done.wait(timeout=600):
            raise TimeoutError(f"broker acknowledged {acked} of {total} messages")
        if refused:
            raise ConnectionRefusedError(
                f"the broker refused {login[0] if login else 'an anonymous client'}: "
                f"{refused[0]}")
        last = time.time()
    finally:
        client.disconnect()
        client.loop_stop()
    return LoadResult(total, plan.readings, last - first, first, last)


def _restamp(payload: bytes) -> bytes:
    """Base time = now; records a microsecond apart, so readings stay distinct."""
    pack = msgspec.json.decode(payload)
    # Whole microseconds: otherwise bt + k µs can fall on a half microsecond and two
    # records round to the same stored time.
    pack[0]["bt"] = round(time.time(), 6)
    for k, record in enumerate(pack[1:], start=1):
        record["t"] = k * 1e-6
    return _encode(pack)


def _pace(first: float, sent: int, rate: float) -> None:
    ahead = first + sent / rate - time.time()
    if ahead > 0:
        time.sleep(ahead)
