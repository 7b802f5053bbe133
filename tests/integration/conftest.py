"""Fixtures for ingest: a provisioned database and a consumer running in the test's loop."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiomqtt
import httpx
import pytest

from api.app import create_app
from api.settings import ApiSettings
from deploy.ports import free_port
from devices.fleet import stockholm
from devices.provision import provision
from ingest.consumer import Consumer
from ingest.metrics import IngestMetrics
from ingest.settings import IngestSettings
from tests.access import bearer, make_key
from tests.integration.writes import Api, running_api


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 20) -> None:
    """Wait until `check()` holds; fail the test if it does not within `within` seconds."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.05)


def metric(consumer: Consumer, name: str) -> float:
    """The current value of one of the consumer's metrics (stadspuls_ingest_<name>)."""
    value = consumer.metrics.registry.get_sample_value(f"stadspuls_ingest_{name}")
    return value if value is not None else 0.0


@pytest.fixture
async def fleet_db(db: Any) -> Any:
    """This test's database with the Stockholm fleet provisioned."""
    await provision(db, stockholm())
    return db


@pytest.fixture
def ingest_settings(db_url: str, mqtt_port: int, topic_prefix: str) -> IngestSettings:
    return IngestSettings(
        database_url=db_url, mqtt_port=mqtt_port, topic_prefix=f"{topic_prefix}/",
        mqtt_client_id=f"ingest-{uuid.uuid4().hex[:10]}", ingest_metrics_port=free_port(),
        batch_max_age_s=0.05, max_payload_bytes=16 * 1024,
    )


async def start_consumer(settings: IngestSettings) -> tuple[Consumer, asyncio.Task[None]]:
    consumer = Consumer(settings, IngestMetrics())
    task = asyncio.create_task(consumer.run())

    async def ready() -> bool:
        if task.done():
            task.result()
        return consumer.healthy() and consumer.generation > 0

    await eventually(ready)
    return consumer, task


async def stop_consumer(consumer: Consumer, task: asyncio.Task[None]) -> None:
    consumer.stopping.set()
    async with asyncio.timeout(20):
        await task


@pytest.fixture
async def ingest(fleet_db: Any, ingest_settings: IngestSettings) -> AsyncIterator[Consumer]:
    """An ingest consumer on the test's database and topics."""
    consumer, task = await start_consumer(ingest_settings)
    yield consumer
    await stop_consumer(consumer, task)


@pytest.fixture
async def client(fleet_db: Any, db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The readings API on this test's database (pages of 5), reached in process."""
    app = create_app(ApiSettings(database_url=db_url, page_size=5, mqtt_enabled=False))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://city",
                                     headers=bearer(await make_key(db_url))) as c:
            yield c


class Publisher:
    """Publishes on the test's topic prefix at QoS 1."""

    def __init__(self, client: aiomqtt.Client, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    async def device(self, device_id: str, payload: bytes | str) -> None:
        await self.raw(f"devices/{device_id}/senml", payload)

    async def gateway(self, gateway_id: str, payload: bytes | str) -> None:
        await self.raw(f"gateways/{gateway_id}/senml", payload)

    async def raw(self, topic: str, payload: bytes | str) -> None:
        await self.client.publish(f"{self.prefix}/{topic}", payload, qos=1)


@pytest.fixture
async def publisher(mqtt_port: int, topic_prefix: str) -> AsyncIterator[Publisher]:
    async with aiomqtt.Client("127.0.0.1", mqtt_port) as client:
        yield Publisher(client, topic_prefix)


@pytest.fixture
async def api(fleet_db: Any, db_url: str) -> AsyncIterator[Api]:
    """The API in this process on the fleet's database, as the write tests drive it."""
    async with running_api(db_url) as running:
        yield running
