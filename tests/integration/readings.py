"""Helpers of the readings API tests: requests with an expected status, seeded readings,
and the API on settings of a test's own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from api.app import create_app
from api.settings import ApiSettings
from tests.access import bearer, make_key


async def get(client: httpx.AsyncClient, url: str, status: int = 200) -> Any:
    response = await client.get(url)
    assert response.status_code == status, response.text
    return response.json()


async def all_pages(client: httpx.AsyncClient, url: str) -> tuple[list[Any], list[str]]:
    """The rows of every page from `url` on, and the next links that led to them."""
    rows: list[Any] = []
    links: list[str] = []
    while True:
        page = await get(client, url)
        rows += page["value"]
        if "@iot.nextLink" not in page:
            return rows, links
        url = page["@iot.nextLink"]
        links.append(url)


async def datastream(fleet_db: Any, device: str, record: str) -> int:
    return int(await fleet_db.fetchval(
        "SELECT ds.id FROM datastreams ds JOIN things t ON t.id = ds.thing_id "
        "WHERE t.device_id = $1 AND ds.record_name = $2", device, record))


async def seed_hour(fleet_db: Any) -> int:
    """Two hours of one-minute NO2 readings at Hornsgatan 108 from 2026-09-21T10:00Z, the
    result of minute m being m (0 to 119); returns the Datastream's id."""
    ds_id = await datastream(fleet_db, "aq-hornsgatan-108", "no2")
    await fleet_db.execute(
        "INSERT INTO observations (phenomenon_time, datastream_id, result_number) "
        "SELECT '2026-09-21T10:00:00Z'::timestamptz + make_interval(mins => m), $1, m "
        "FROM generate_series(0, 119) m", ds_id)
    return ds_id


@asynccontextmanager
async def api_client(db_url: str, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The readings API on `db_url` with `settings` changed, reached in process."""
    app = create_app(ApiSettings(database_url=db_url, mqtt_enabled=False, **settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://city",
                                     headers=bearer(await make_key(db_url))) as client:
            yield client
