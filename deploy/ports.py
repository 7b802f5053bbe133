"""Loopback ports: is one free, and find free ones for tests."""

from __future__ import annotations

import errno
import socket

from deploy.errors import PortBusy

HOST = "127.0.0.1"


def ensure_free(port: int, setting: str) -> None:
    """Raise PortBusy, naming `setting`, when something already listens on `port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the servers do: connections of a stopped server lingering in TIME_WAIT do not
        # make the port busy, a listener does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise PortBusy(port, setting) from exc
            raise


_handed_out: set[int] = set()


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now, and that this process has not
    handed out before: the kernel may offer a port it just gave again, and a stack asks for
    several before it binds any of them."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port: int = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def accepts(port: int, timeout: float = 0.5) -> bool:
    """Whether a TCP connection to 127.0.0.1:`port` succeeds."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_ok(port: int, path: str, timeout: float = 1.0) -> bool:
    """Whether GET http://127.0.0.1:`port``path` answers 200."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as conn:
            conn.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
                         .encode())
            return conn.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False
