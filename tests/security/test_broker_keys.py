"""API keys on the broker: an agency reads the live Observations of its restricted
Datastreams; other agencies' keys never see them, on any topic."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import aiomqtt
import pytest

from core.database import connect
from tests.integration.conftest import eventually
from tests.security.conftest import SecureStack, api_key, datastream_id, no2

RESTRICTED_DEVICE, OPEN_DEVICE = "aq-norr-malma", "aq-hornsgatan-108"  # environment's
OWNER, OTHER = "miljoforvaltningen", "trafikkontoret"


class Inbox:
    """Everything one subscribed client receives: (topic, result)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, Any]] = []

    def results(self) -> list[Any]:
        return [result for _, result in self.received]

    async def has(self, result: float) -> bool:
        return result in self.results()


@asynccontextmanager
async def listening(secure: SecureStack, key: tuple[str, str], topic: str
                    ) -> AsyncIterator[tuple[Inbox, list[int]]]:
    """A key's client subscribed to `topic`: its inbox and the SUBACK's reason codes."""
    inbox = Inbox()
    async with secure.client(*key) as client:
        granted = await client.subscribe(topic, qos=0)

        async def collect() -> None:
            async for message in client.messages:
                body = json.loads(bytes(message.payload))  # type: ignore[arg-type]
                inbox.received.append((str(message.topic), body.get("result")))

        task = asyncio.create_task(collect())
        try:
            yield inbox, [int(getattr(g, "value", g)) for g in granted]
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def key_accepted(secure: SecureStack, key: tuple[str, str]) -> bool:
    try:
        async with secure.client(*key):
            return True
    except aiomqtt.MqttError:
        return False


async def test_only_the_owning_agencys_key_receives_a_restricted_datastreams_observations(
    secure: SecureStack, secure_db: Any
) -> None:
    restricted = await datastream_id(secure_db, RESTRICTED_DEVICE, "no2")
    async with secure_db.transaction():  # keys and restriction reach the broker in one render
        owner, other = await api_key(secure_db, OWNER), await api_key(secure_db, OTHER)
        await secure_db.execute("UPDATE datastreams SET access = 'restricted' WHERE id = $1",
                         restricted)
    await eventually(lambda: key_accepted(secure, other), within=10)
    await eventually(lambda: key_accepted(secure, owner), within=10)
    await ingest_reloaded(secure)
    own_topic = f"v1.1/Datastreams({restricted})/Observations"
    at = time.time() - 300
    async with listening(secure, other, "v1.1/#") as (everything, _), \
            listening(secure, other, own_topic) as (prying, prying_suback), \
            listening(secure, owner, own_topic) as (owners, _):
        async with secure.client("gw-norr-malma") as gateway:
            await gateway.publish("gateways/gw-norr-malma/senml",
                                  no2(RESTRICTED_DEVICE, 91.5, at), qos=1)
        await eventually(lambda: owners.has(91.5))
        async with secure.client(OPEN_DEVICE) as device:
            await device.publish(f"devices/{OPEN_DEVICE}/senml", no2(OPEN_DEVICE, 13.25, at),
                                 qos=1)
        await eventually(lambda: everything.has(13.25))
    assert 91.5 not in everything.results()
    assert not [t for t, _ in everything.received if f"Datastreams({restricted})" in t]
    assert prying.received == []
    assert prying_suback in ([128], [0])  # refused, or (Mosquitto 2.0) granted and silent
    assert owners.received == [(own_topic, 91.5)]


async def ingest_reloaded(secure: SecureStack) -> None:
    """Wait for ingest to load the registry after the last change (it logs each load)."""
    log = secure.local.state_dir / "logs" / "ingest.log"
    before = log.read_text().count("registry view loaded")

    async def reloaded() -> bool:
        return log.read_text().count("registry view loaded") > before

    # The change may have been loaded already: a no-op registry change forces a new load.
    conn = await connect(secure.database_url)
    try:
        await conn.execute("NOTIFY registry_changed, 'test'")
    finally:
        await conn.close()
    await eventually(reloaded, within=10)


async def test_a_key_that_expires_is_disconnected_and_refused_from_then_on(
    secure: SecureStack, secure_db: Any
) -> None:
    key = await api_key(secure_db, OTHER, lasts=timedelta(seconds=4))
    await eventually(lambda: key_accepted(secure, key), within=10)
    async with secure.client(*key) as client:
        await client.subscribe("v1.1/#")
        with pytest.raises(aiomqtt.MqttError):
            async with asyncio.timeout(30):
                async for _ in client.messages:  # ends when the broker drops the key
                    pass
    assert not await key_accepted(secure, key)
