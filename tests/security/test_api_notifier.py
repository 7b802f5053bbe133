"""Claim: the API's notifier reads which Datastreams are restricted on a pool of its own,
one pool however many writes notify at once, even while the database is slow to answer."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from api.notifications import ConfiningNotifier
from core.mqtt_publish import Publisher
from core.notify import Change
from tests.security.api_fixtures import World, access

__all__ = ["access"]  # fixtures

NAME = "stadspuls-notifier-test"


async def test_concurrent_writes_share_one_pool_of_the_notifier(
    access: World, monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_pool = asyncpg.create_pool

    async def slow_pool(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.01)  # the fault: a database slow to answer
        return await make_pool(*args, **kwargs)

    monkeypatch.setattr(asyncpg, "create_pool", slow_pool)
    separator = "&" if "?" in access.db_url else "?"
    notifier = ConfiningNotifier(Publisher("127.0.0.1", 1, "unused"), "",
                                 f"{access.db_url}{separator}application_name={NAME}")
    secret = access.ids["secret"]
    try:
        confined = await asyncio.gather(*(
            notifier.confine([Change("Datastreams", secret, {"name": "secret"})])
            for _ in range(8)))
        connections = await access.db.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", NAME)
    finally:
        await notifier.close()
    assert all(c[0].confined_to == secret for c in confined)
    assert connections <= 2  # one pool, of max_size 2
