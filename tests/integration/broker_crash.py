"""What a broker crash (kill -9) loses of a backlog it acknowledged, and what persisting
it costs in publish rate.

A persistent session is parked (subscribed, then gone, as ingest is while it is behind or
down); a device publishes readings at QoS 1 and the broker acknowledges each; the broker is
killed with SIGKILL right after the last acknowledgement and started again; the session
takes what survived. Run with the broker settings to compare:

    .venv/bin/python -m tests.integration.broker_crash --messages 50000
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import signal
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from deploy.mosquitto import BrokerConfig, MosquittoBroker
from deploy.ports import free_port
from deploy.stack import service_user, temporary_state_dir

HOST = "127.0.0.1"
TOPIC = "devices/crash-device/senml"
PAYLOAD = (b'[{"bn":"urn:dev:crash-device:","bt":1790000000,"n":"no2","u":"ug/m3",'
           b'"v":23.4},{"n":"pm10","u":"ug/m3","v":11.2}]')


@dataclass(frozen=True)
class Outcome:
    """One run: messages acknowledged, their rate, and how many the restarted broker still
    held for the session."""

    acknowledged: int
    per_second: float
    survived: int

    @property
    def lost(self) -> int:
        return self.acknowledged - self.survived


def _connected(client: paho.Client, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not client.is_connected():
        if time.monotonic() > deadline:
            raise TimeoutError("no CONNACK")
        time.sleep(0.01)


def park_session(port: int, client_id: str) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         clean_session=False, protocol=paho.MQTTv311)
    subscribed = threading.Event()
    client.on_subscribe = lambda *args: subscribed.set()
    client.connect(HOST, port)
    client.loop_start()
    _connected(client)
    client.subscribe(TOPIC, qos=1)
    if not subscribed.wait(10):
        raise TimeoutError("no SUBACK")
    client.disconnect()
    client.loop_stop()


def publish(port: int, messages: int, window: int = 500) -> float:
    """Publish `messages` at QoS 1, at most `window` unacknowledged; seconds until the broker
    acknowledged the last."""
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
    client.max_inflight_messages_set(window)
    room = threading.Semaphore(window)
    client.on_publish = lambda *args: room.release()
    client.connect(HOST, port)
    client.loop_start()
    _connected(client)
    started = time.monotonic()
    for _ in range(messages + window):  # the last `window` turns wait for the rest
        if not room.acquire(timeout=60):
            raise TimeoutError("the broker stopped acknowledging")
        if _ < messages:
            client.publish(TOPIC, PAYLOAD, qos=1)
    took = time.monotonic() - started
    client.loop_stop()  # no DISCONNECT: the broker is about to die anyway
    return took


def drain(port: int, client_id: str, expected: int, idle_s: float = 3.0) -> int:
    """Messages the parked session is sent, until `expected` or `idle_s` of silence."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         clean_session=False, protocol=paho.MQTTv311)
    count = 0
    last = time.monotonic()

    def on_message(*args: object) -> None:
        nonlocal count, last
        count += 1
        last = time.monotonic()

    client.on_message = on_message
    client.connect(HOST, port)
    client.loop_start()
    _connected(client)
    while count < expected and time.monotonic() - last < idle_s:
        time.sleep(0.05)
    client.disconnect()
    client.loop_stop()
    return count


def crash(directory: Path, messages: int, **settings: object) -> Outcome:
    """Park a session, publish, kill -9 the broker, start it again, count what is left.

    Args:
        directory: where the broker keeps its configuration and persistence.
        messages: how many to publish.
        settings: BrokerConfig fields to change (autosave_interval, ...).
    """
    port = free_port()
    (directory / "logs").mkdir(parents=True, exist_ok=True)
    broker = MosquittoBroker(directory / "mosquitto", port, directory / "logs" / "mq.log",
                             service_user())
    broker.config = dataclasses.replace(broker.config, **settings)  # type: ignore[arg-type]
    client_id = f"crash-{uuid.uuid4().hex[:8]}"
    broker.start()
    try:
        park_session(port, client_id)
        took = publish(port, messages)
        broker.process.stop(signal.SIGKILL)
        broker.start()
        survived = drain(port, client_id, messages)
    finally:
        broker.stop()
    return Outcome(messages, messages / took, survived)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=50_777)
    parser.add_argument("--changes", type=int, action="append",
                        help="autosave after this many changes (repeat); default 1000")
    args = parser.parse_args()
    runs: list[tuple[str, dict[str, object]]] = [
        ("every 5 s (before)", {"autosave_on_changes": False, "autosave_interval": 5})]
    runs += [(f"every {n:,} changes", {"autosave_on_changes": True, "autosave_interval": n})
             for n in args.changes or [BrokerConfig(0, Path(), Path()).autosave_interval]]
    print(f"{'autosave':<28}{'acknowledged':>13}{'msg/s':>10}{'lost':>8}")
    for name, settings in runs:
        directory = temporary_state_dir("stadspuls-crash-")
        try:
            outcome = crash(directory, args.messages, **settings)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        print(f"{name:<28}{outcome.acknowledged:>13,}{outcome.per_second:>10,.0f}"
              f"{outcome.lost:>8,}", flush=True)


if __name__ == "__main__":
    main()
