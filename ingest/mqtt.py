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


class LoopDriver:
    """Registers a paho client's socket with the running asyncio loop."""

    def __init__(self, client: paho.Client) -> None:
        self.client = client
        self.loop = asyncio.get_running_loop()
        self._misc: asyncio.Task[None] | None = None
        client.on_socket_open = self._opened
        client.on_socket_close = self._closed
        client.on_socket_register_write = self._want_write
        client.on_socket_unregister_write = self._written

    def _opened(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self.loop.add_reader(sock, self._read)
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self._misc = self.loop.create_task(self._keepalive(), name="mqtt.keepalive")

    def _closed(self, client: paho.Client, userdata: Any, sock: Any) -> None:
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
        # Several packets per wake-up: paho reads one packet per call.
        for _ in range(64):
            if self.client.loop_read() != paho.MQTT_ERR_SUCCESS:
                return
            if not self._readable():
                return

    def _readable(self) -> bool:
        sock = self.client.socket()
        if not isinstance(sock, socket.socket):
            return False
        try:
            return bool(sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
        except BlockingIOError:
            return False
        except OSError:
            return False

    async def _keepalive(self) -> None:
        # paho's housekeeping: pings, retries; it ends when the connection does.
        for _ in iter(int, 1):
            if self.client.loop_misc() != paho.MQTT_ERR_SUCCESS:
                return
            await asyncio.sleep(1)
