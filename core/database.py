"""Connecting to PostgreSQL and creating databases."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from core.errors import DatabaseUnavailable
from core.queries import query

log = logging.getLogger(__name__)


async def connect(url: str, *, wait: float = 10) -> Any:
    """An asyncpg connection to `url`, retried for up to `wait` seconds while the server starts."""
    try:
        async with asyncio.timeout(wait):
            while True:
                try:
                    return await asyncpg.connect(url)
                except (OSError, asyncpg.CannotConnectNowError):
                    await asyncio.sleep(0.1)
    except TimeoutError:
        raise DatabaseUnavailable(
            f"no database answers at {redact(url)} after {wait:.0f} s; "
            "is the stack running (`stadspuls status`)?"
        ) from None


async def ensure_database(admin_url: str, name: str) -> bool:
    """Create database `name` unless it exists; whether it was created now."""
    conn = await connect(admin_url)
    try:
        if await conn.fetchval(query("admin", "database_exists"), name):
            return False
        await conn.execute(f"CREATE DATABASE {quote_ident(name)}")
        log.info("created database %s", name, extra={"action": "database_created"})
        return True
    finally:
        await conn.close()


def quote_ident(name: str) -> str:
    """`name` as a quoted SQL identifier, for the DDL that cannot take parameters."""
    return '"' + name.replace('"', '""') + '"'


def redact(url: str) -> str:
    """`url` with its password, if any, replaced by stars, fit for a log line."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
