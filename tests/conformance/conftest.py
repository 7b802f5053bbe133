"""Fixtures of the conformance suite: per module, one database holding the conformance
dataset (posted through the API), and the API on it with the MQTT extension on the test
broker under the module's own topic prefix."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt
import httpx
import pytest

from api.app import create_app
from api.settings import ApiSettings
from deploy.stack import LocalStack
from tests.access import bearer, make_key
from tests.conformance.dataset import Dataset, post_dataset
from tests.conftest import fresh_database

BASE = "http://city"


@pytest.fixture(scope="module")
async def api_settings(stack: LocalStack) -> AsyncIterator[ApiSettings]:
    async with fresh_database(stack) as url:
        yield ApiSettings(
            database_url=url, mqtt_port=stack.settings.mqtt_port,
            topic_prefix=f"conformance/{uuid.uuid4().hex}/",
            mqtt_client_id=f"conformance-{uuid.uuid4().hex[:8]}",
        )


@pytest.fixture(scope="module")
async def api(api_settings: ApiSettings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(api_settings)
    async with app.router.lifespan_context(app):
        # Observations published before the listener has subscribed would find no session.
        await asyncio.wait_for(app.state.observation_listener.ready.wait(), 30)
        transport = httpx.ASGITransport(app=app)
        key = await make_key(api_settings.database_url)
        async with httpx.AsyncClient(transport=transport, base_url=BASE,
                                     headers=bearer(key)) as client:
            yield client


@pytest.fixture(scope="module")
async def dataset(api: httpx.AsyncClient) -> Dataset:
    return await post_dataset(api)


@pytest.fixture
async def mqtt(stack: LocalStack) -> AsyncIterator[aiomqtt.Client]:
    """A subscriber speaking MQTT 5, as a live map would."""
    async with aiomqtt.Client("127.0.0.1", stack.settings.mqtt_port,
                              protocol=aiomqtt.ProtocolVersion.V5) as client:
        yield client


async def get(client: httpx.AsyncClient, url: str, status: int = 200) -> Any:
    response = await client.get(url)
    assert response.status_code == status, response.text
    return response.json()


async def all_pages(client: httpx.AsyncClient, url: str) -> list[dict[str, Any]]:
    """Every entity of a collection, following @iot.nextLink to the last page."""
    out: list[dict[str, Any]] = []
    page = await get(client, url)
    while True:
        out += page["value"]
        if "@iot.nextLink" not in page:
            return out
        page = await get(client, page["@iot.nextLink"])
