"""Publishing over MQTT at QoS 1, many messages in flight and a bounded window.

paho-mqtt's network loop runs in its own thread; `publish` hands a message over and
returns at once unless `window` messages are already waiting for their PUBACK, in which
case it waits. That keeps thousands of publishes a second going without holding more
than a window of them in memory.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from simulators.errors import BrokerUnavailable

log = logging.getLogger(__name__)

QOS = 1


class Publisher:
    """One MQTT connection that publishes at QoS 1 and counts acknowledgements.

    Args:
        host: the broker's host.
        port: the broker's port.
        window: the most messages awaiting PUBACK at once.
        timeout_s: how long to wait for the connection, or for room in the window.
        login: (username, password) at the broker; None: anonymous.
    """

    def __init__(self, host: str, port: int, window: int = 1_000,
                 timeout_s: float = 30.0, login: tuple[str, str] | None = None) -> None:
        self.host, self.port = host, port
        self.window = window
        self.timeout_s = timeout_s
        self.acknowledged = 0
        self._pending = 0
        self._changed = threading.Condition()
        self._connected = threading.Event()
        self._answered = threading.Event()  # a CONNACK came, accepting or refusing
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"stadspuls-sim-{uuid.uuid4().hex[:12]}",
            protocol=mqtt.MQTTv311,
        )
        if login is not None:
            self._client.username_pw_set(*login)
        self.username = login[0] if login else None
        self._refused: str | None = None
        self._client.max_inflight_messages_set(window)
        self._client.max_queued_messages_set(0)
        self._client.on_connect = self._on_connect
        self._client.on_publish = self._on_publish

    def __enter__(self) -> Publisher:
        self.connect()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        try:
            if kind is None:
                self.drain()
        finally:
            self.close()

    def connect(self) -> None:
        """Connect and start the network thread.

        Raises:
            BrokerUnavailable: nothing listens at host:port, or no CONNACK came in time.
        """
        try:
            self._client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            raise BrokerUnavailable(
                f"no MQTT broker at {self.host}:{self.port} ({exc.strerror or exc}); "
                "is the stack up? --mqtt-port or STADSPULS_MQTT_PORT choose the port"
            ) from None
        self._client.loop_start()
        self._answered.wait(self.timeout_s)
        if not self._connected.is_set():
            self.close()
            why = f" ({self._refused})" if self._refused else ""
            raise BrokerUnavailable(
                f"the broker at {self.host}:{self.port} did not accept "
                f"{self.username or 'an anonymous client'}{why}")
        log.debug("connected to %s:%d", self.host, self.port, extra={"action": "mqtt_connected"})

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish one message at QoS 1; waits while the window is full.

        Args:
            topic: the MQTT topic.
            payload: the message body.

        Raises:
            BrokerUnavailable: no PUBACK freed the window within the timeout.
        """
        with self._changed:
            if not self._changed.wait_for(lambda: self._pending < self.window, self.timeout_s):
                raise BrokerUnavailable(f"no PUBACK from the broker in {self.timeout_s:g} s")
            self._pending += 1
        info = self._client.publish(topic, payload, qos=QOS)
        # NO_CONN still queues the message; paho sends it once the connection is back.
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            raise BrokerUnavailable(f"publish failed: {mqtt.error_string(info.rc)}")

    def drain(self) -> None:
        """Wait until every message published so far is acknowledged.

        Raises:
            BrokerUnavailable: some are still unacknowledged after the timeout.
        """
        deadline = time.monotonic() + self.timeout_s
        with self._changed:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BrokerUnavailable(f"{self._pending} messages were never acknowledged")
                self._changed.wait(left)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if not reason.is_failure:
            self._connected.set()
        else:
            self._refused = str(reason)
        self._answered.set()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any,
                    properties: Any) -> None:
        with self._changed:
            self._pending -= 1
            self.acknowledged += 1
            self._changed.notify_all()
