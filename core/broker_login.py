"""How a process logs in to the broker: a username from its settings and a password read
from a file (mode 0600), never from its command line."""

from __future__ import annotations

from pathlib import Path


def read_login(username: str | None, password_file: Path | None) -> tuple[str, str] | None:
    """(username, the first line of `password_file`), or None without a username
    (connect anonymously).

    Raises:
        OSError: the password file cannot be read.
    """
    if username is None:
        return None
    password = password_file.read_text().strip() if password_file is not None else ""
    return username, password
