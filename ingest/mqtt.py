"""A paho-mqtt client driven by the asyncio loop, without a network thread.

paho does the protocol (and manual acknowledgement, which aiomqtt does not offer); this
module hands its socket to the event loop, so message callbacks, batching and database
writes all run on one thread and need no locks.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import paho.mqtt.client as paho


class BufferedClient(paho.Client):
    """paho's client, reading its socket in large chunks.

    paho reads every packet with three small `recv` calls (type, length, body); at
    thousands of messages a second those system calls are a tenth of ingest's time. This
    client keeps what one large read brings and serves paho's small reads from it. It
    overrides paho's `_sock_recv`, which is not public API: pyproject.toml holds paho to the
    2.x line it was written against, and every ingest test runs through it.
    """

    CHUNK = 256 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._inbox = b""
        self._read_at = 0

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._read_at >= len(self._inbox):
            data = super()._sock_recv(self.CHUNK)  # raises BlockingIOError when empty
            if not data:
                return b""  # the peer closed the connection
            self._inbox, self._read_at = data, 0
        end = self._read_at + bufsize
        chunk = self._inbox[self._read_at:end]
        self._read_at = end
        return chunk

    def buffered(self) -> bool:
        """Whether bytes already read from the socket wait to be handled."""
        return self._read_at < len(self._inbox)

    def forget_buffer(self) -> None:
        """Drop what was read: the connection it came from is gone."""
        self._inbox, self._read_at = b"", 0


class LoopDriver:
    """Registers a paho client's socket with the running asyncio loop."""

    def __init__(self, client: BufferedClient) -> None:
        self.client = client
        self.loop = asyncio.get_running_loop()
        self._misc: asyncio.Task[None] | None = None
        client.on_socket_open = self._opened
        client.on_socket_close = self._closed
        client.on_socket_register_write = self._want_write
        client.on_socket_unregister_write = self._written

    def _opened(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self.client.forget_buffer()
        self.loop.add_reader(sock, self._read)
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self._misc = self.loop.create_task(self._keepalive(), name="mqtt.keepalive")

    def _closed(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self.client.forget_buffer()
        self.loop.remove_reader(sock)
        self.loop.remove_writer(sock)
        if self._misc is not None:
            self._misc.cancel()
            self._misc = None

    def _want_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self.loop.add_writer(sock, self.client.loop_write)

    def _written(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self.loop.remove_writer(sock)

    def _read(self) -> None:
        # paho handles one packet per call; go on while read bytes wait in the buffer, in
        # rounds, so that the flush task gets its turn.
        for _ in range(256):
            if self.client.loop_read() != paho.MQTT_ERR_SUCCESS:
                return
            if not self.client.buffered():
                return
        # The socket may have nothing more to say, so it will not wake us: come back.
        self.loop.call_soon(self._read)

    async def _keepalive(self) -> None:
        # paho's housekeeping: pings, retries; it ends when the connection does.
        for _ in iter(int, 1):
            if self.client.loop_misc() != paho.MQTT_ERR_SUCCESS:
                return
            await asyncio.sleep(1)
