"""A key that expires leaves the broker at its expiry, not at the next periodic render: the
access sync runs here as `stadspuls up` runs it, every 30 s besides NOTIFY, and still the
broker drops the key within moments of its expiry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import aiomqtt
import pytest

from core.database import connect
from deploy.stack import LocalStack
from deploy.system import Postgres
from devices.broker_access import SYNC_EVERY_S
from tests.integration.conftest import eventually
from tests.security.conftest import api_key, authenticated_stack

# Far less than the sync's period: only a render at the expiry itself drops the key so soon.
WITHIN_S = 10.0


@pytest.fixture(scope="module")
async def stack(postgres_install: Postgres) -> AsyncIterator[LocalStack]:
    async with authenticated_stack(postgres_install) as (local, sync):
        assert sync.every_s == SYNC_EVERY_S >= 3 * WITHIN_S
        yield local


async def accepted(port: int, key: tuple[str, str]) -> bool:
    try:
        async with aiomqtt.Client("127.0.0.1", port, username=key[0], password=key[1]):
            return True
    except aiomqtt.MqttError:
        return False


async def test_a_key_is_dropped_by_the_broker_within_moments_of_its_expiry(
    stack: LocalStack
) -> None:
    local = stack
    port = local.settings.mqtt_port
    db = await connect(local.settings.database_url)
    try:
        lasts = timedelta(seconds=6)
        key = await api_key(db, "trafikkontoret", lasts=lasts)
        expires = time.time() + lasts.total_seconds()
    finally:
        await db.close()
    await eventually(lambda: accepted(port, key), within=5)
    async with aiomqtt.Client("127.0.0.1", port, username=key[0], password=key[1]) as client:
        await client.subscribe("v1.1/#")
        with pytest.raises(aiomqtt.MqttError):
            async with asyncio.timeout(2 * SYNC_EVERY_S):
                async for _ in client.messages:  # ends when the broker drops the key
                    pass
    dropped_after = time.time() - expires
    print(f"dropped {dropped_after:.2f} s after expiry")
    assert dropped_after < WITHIN_S
    assert not await accepted(port, key)
