"""A QoS 0 MQTT 5 publisher on an asyncio stream, for change notifications.

Notifications are many and best effort: ingest may announce every reading on three topics,
70,000 readings a second. paho's publish path costs about 38 µs of CPU per message on the
machine the figures in docs/mqtt.md come from, several cores' worth at that rate; a QoS 0
PUBLISH packet is a few bytes of header before the topic and the payload, and encoding it
here costs about 1 µs. So this client speaks just the part of MQTT 5 that notifications
need: CONNECT (with a username and password) and CONNACK, PUBLISH at QoS 0 with one user
property, PINGREQ and PINGRESP, DISCONNECT. A batch of messages is encoded and written with
one write.

It never blocks and never raises to its caller: while the broker is away, or so slow that
`max_buffered_bytes` wait unsent, messages are dropped, counted and logged at most once
every `LOG_EVERY_S` seconds. A caller that can wait a little for a busy broker, rather than
have messages dropped, awaits `room()` first.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
from collections.abc import Iterable

from core.pacing import ThrottledWarning, jittered

log = logging.getLogger(__name__)

# Every notification carries it, so that a client subscribed to the same topics for
# another reason (the API creating Observations published by devices) can tell them apart.
USER_PROPERTY = ("stadspuls-notification", "1")
# The user property in which the stack's broker names the account that published a message
# (deploy/mosquitto_publisher.c), signed: see `publisher_stamp`.
PUBLISHER_PROPERTY = "stadspuls-publisher"

LOG_EVERY_S = 10.0
CONNECT, CONNACK, PUBLISH, PINGREQ, PINGRESP, DISCONNECT = 0x10, 0x20, 0x30, 0xC0, 0xD0, 0xE0
MAX_CACHED_TOPICS = 100_000
# Unsent bytes above which `room()` waits, and below which it stops waiting.
HIGH_WATER, LOW_WATER = 4 * 1024 * 1024, 1024 * 1024


def varint(n: int) -> bytes:
    """`n` as an MQTT variable byte integer."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def string(text: str) -> bytes:
    """`text` as an MQTT UTF-8 string: two bytes of length, then the bytes."""
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


_PROPERTIES = b"\x26" + string(USER_PROPERTY[0]) + string(USER_PROPERTY[1])
PUBLISH_PROPERTIES = varint(len(_PROPERTIES)) + _PROPERTIES
# The fixed header of a QoS 0 PUBLISH for each remaining length up to 16 KiB, looked up
# rather than encoded for every message.
_HEADERS = [bytes([PUBLISH]) + varint(n) for n in range(16_384)]


def publisher_stamp(secret: bytes, username: str, topic: str, payload: bytes) -> str:
    """The value of PUBLISHER_PROPERTY the stack's broker gives a message `username`
    published: `<username>;<mac>`, the HMAC-SHA256 in hex of the username, the topic and the
    payload (the first two each ended by a NUL byte, which MQTT strings never hold) under
    the stack's publisher secret. The plugin computes the same in C."""
    signed = username.encode() + b"\0" + topic.encode() + b"\0" + payload
    return f"{username};{hmac.new(secret, signed, hashlib.sha256).hexdigest()}"


def connect_packet(client_id: str, keepalive_s: int,
                   login: tuple[str, str] | None = None) -> bytes:
    """CONNECT of MQTT 5 with a clean start and no session kept (nothing is ever queued
    for a publisher), with a username and password when `login` is given."""
    flags = 0x02 | (0xC0 if login is not None else 0)
    body = (string("MQTT") + b"\x05" + bytes([flags]) + keepalive_s.to_bytes(2, "big")
            + b"\x00" + string(client_id))
    if login is not None:
        body += string(login[0]) + string(login[1])  # the password as binary data
    return bytes([CONNECT]) + varint(len(body)) + body


def publish_packet(topic_field: bytes, payload: bytes) -> tuple[bytes, ...]:
    """PUBLISH at QoS 0, not retained, with the notification user property, as the parts
    to join: `topic_field` is the topic as an MQTT string (see `string`)."""
    size = len(topic_field) + len(PUBLISH_PROPERTIES) + len(payload)
    header = _HEADERS[size] if size < len(_HEADERS) else bytes([PUBLISH]) + varint(size)
    return header, topic_field, PUBLISH_PROPERTIES, payload


class Publisher:
    """One connection to the broker that publishes at QoS 0; see the module docstring.

    `run()` keeps the connection (reconnecting with jittered exponential backoff) until it
    is cancelled; `publish()` may be called at any time.
    """

    def __init__(self, host: str, port: int, client_id: str, *,
                 login: tuple[str, str] | None = None,
                 max_buffered_bytes: int = 16 * 1024 * 1024, keepalive_s: int = 30) -> None:
        self.host = host
        self.port = port
        self._login = login
        # A suffix of its own: replicas of one process share their settings, and a broker
        # disconnects the older of two clients with one id.
        self.client_id = f"{client_id}-{secrets.token_hex(3)}"
        self.max_buffered_bytes = max_buffered_bytes
        self.keepalive_s = keepalive_s
        self.published = 0
        self.dropped = 0
        self.connections = 0
        self.connected = asyncio.Event()
        # Set once the first attempt to connect has succeeded or failed: a process may wait
        # for it at start, so that its first notifications are not lost to the handshake.
        self.settled = asyncio.Event()
        self._writer: asyncio.StreamWriter | None = None
        self._topics: dict[str, bytes] = {}
        self._dropped_warning = ThrottledWarning(log, "%d notifications dropped: %s",
                                                 "notifications_dropped", LOG_EVERY_S)
        self._closing = False
        self._congested = False

    def publish(self, messages: Iterable[tuple[str, bytes]]) -> int:
        """Write (topic, payload) messages with one write; how many were written (all or
        none: while disconnected or behind, they are dropped and counted)."""
        writer = self._writer
        if writer is None or writer.transport.is_closing():
            return self._drop(messages, "not connected to the broker")
        if writer.transport.get_write_buffer_size() > self.max_buffered_bytes:
            return self._drop(messages, "the broker does not keep up")
        parts: list[bytes] = []
        topics = self._topics
        for topic, payload in messages:
            parts += publish_packet(topics.get(topic) or self._topic_field(topic), payload)
        writer.write(b"".join(parts))
        count = len(parts) // 4
        self.published += count
        return count

    async def room(self, within: float) -> None:
        """Wait, for at most `within` seconds, while the broker takes in what was written.

        A broker that has not caught up within that time is congested: until it has, this
        returns at once (and `publish()` drops what would exceed `max_buffered_bytes`), so
        a stalled broker costs the caller one wait, not one per call.
        """
        writer = self._writer
        if writer is None or writer.transport.is_closing():
            return
        if self._congested and writer.transport.get_write_buffer_size() > LOW_WATER:
            return
        self._congested = False
        try:
            async with asyncio.timeout(within):
                await writer.drain()
        except TimeoutError:
            self._congested = True
        except (ConnectionError, OSError):
            pass  # the connection is going; `run()` reconnects

    async def run(self) -> None:
        """Connect, stay connected, reconnect; until closed or cancelled."""
        delay = 0.5
        while not self._closing:
            connections = self.connections
            try:
                await self._session()
            except Exception as exc:  # noqa: BLE001 - a notification must never end the process
                if self._closing:
                    return
                if self.connections > connections:
                    delay = 0.5  # it was up: start the backoff over
                log.warning("notification connection to %s:%d: %s; connecting again in "
                            "%.1f s", self.host, self.port, str(exc) or type(exc).__name__,
                            delay, extra={"action": "notify_connection_failed"})
            finally:
                self._forget()
                self.settled.set()
            await asyncio.sleep(jittered(delay))
            delay = min(delay * 2, 30)

    async def close(self) -> None:
        """Say goodbye to the broker once what was written has gone out; `run()` returns."""
        self._closing = True
        writer = self._writer
        self._forget()
        if writer is None or writer.transport.is_closing():
            return
        writer.write(bytes([DISCONNECT, 0]))
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(5):
                await writer.wait_closed()

    async def _session(self) -> None:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), timeout=10)
        try:
            writer.write(connect_packet(self.client_id, self.keepalive_s, self._login))
            async with asyncio.timeout(10):
                kind, body = await _read_packet(reader)
            if kind != CONNACK or len(body) < 2 or body[1] >= 0x80:
                raise ConnectionError(f"broker refused the connection (reason {body[1:2].hex()})")
            writer.transport.set_write_buffer_limits(high=HIGH_WATER, low=LOW_WATER)
            self._writer = writer
            self._congested = False
            self.connections += 1
            self.connected.set()
            self.settled.set()
            log.info("notifications publish to %s:%d as %s", self.host, self.port,
                     self.client_id, extra={"action": "notify_connected"})
            pings = asyncio.create_task(self._ping(writer), name="notify.ping")
            try:
                await self._receive(reader)
            finally:
                pings.cancel()
        finally:
            writer.close()

    async def _receive(self, reader: asyncio.StreamReader) -> None:
        # A PINGRESP comes back every keepalive/2 seconds at least: a broker silent for
        # longer than the keepalive is gone, however the network failed to tell.
        while True:
            async with asyncio.timeout(self.keepalive_s):
                kind, body = await _read_packet(reader)
            if kind == DISCONNECT:
                raise ConnectionError(f"broker disconnected (reason {body[:1].hex() or '00'})")

    async def _ping(self, writer: asyncio.StreamWriter) -> None:
        while not writer.transport.is_closing():
            await asyncio.sleep(self.keepalive_s / 2)
            writer.write(bytes([PINGREQ, 0]))

    def _forget(self) -> None:
        self._writer = None
        self.connected.clear()

    def _topic_field(self, topic: str) -> bytes:
        if len(self._topics) >= MAX_CACHED_TOPICS:
            self._topics.clear()
        field = self._topics[topic] = string(topic)
        return field

    def _drop(self, messages: Iterable[tuple[str, bytes]], why: str) -> int:
        count = sum(1 for _ in messages)
        self.dropped += count
        self._dropped_warning.add(count, why)
        return 0


async def _read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(packet type, body) of the next packet from the broker."""
    first = (await reader.readexactly(1))[0]
    size, shift = 0, 0
    while True:
        byte = (await reader.readexactly(1))[0]
        size |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
        if shift > 21:
            raise ConnectionError("malformed packet length from the broker")
    return first & 0xF0, await reader.readexactly(size)
