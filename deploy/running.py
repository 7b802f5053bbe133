"""Commands that work on the database of a stack that is already up."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from core.database import connect

T = TypeVar("T")

# A database that does not answer within this time is not starting, it is not there.
CONNECT_WAIT_S = 3


def on_database(database_url: str, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run `work(conn)` on a connection to `database_url`, closed after it."""

    async def run() -> T:
        conn = await connect(database_url, wait=CONNECT_WAIT_S)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(run())
