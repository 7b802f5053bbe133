"""Two agencies for the API's access tests, on the session stack's per-test database.

Agency env owns Thing "Env mast" with an open Datastream; agency traffic owns Thing
"Traffic counter" with an open Datastream and a restricted one ("secret"). Each Datastream
holds SECRET_COUNT Observations (results 1000 and up in the restricted one, which nothing
open holds). Keys: a reader and a writer of each agency, and an admin of the city.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.settings import ApiSettings
from core.database import connect
from tests.access import bearer, make_key

BASE = "http://city/v1.1"
SECRET_COUNT = 30
SECRET_RESULT = 1000  # every restricted result is at least this


@dataclass
class World:
    """The database, the API app, the ids of the test's entities and a key per role."""

    db: Any
    db_url: str
    app: Any
    ids: dict[str, int]
    keys: dict[str, str]

    @asynccontextmanager
    async def as_(self, who: str | None) -> AsyncIterator[httpx.AsyncClient]:
        """A client sending the key named `who` (None: no key)."""
        headers = bearer(self.keys[who]) if who is not None else {}
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://city",
                                     headers=headers) as client:
            yield client


async def _seed(db: Any) -> dict[str, int]:
    ids: dict[str, int] = {}
    for code in ("env", "traffic"):
        ids[code] = await db.fetchval(
            "INSERT INTO agencies (code, name) VALUES ($1, $1) RETURNING id", code)
    ids["sensor"] = await db.fetchval(
        "INSERT INTO sensors (name, metadata) VALUES ('counter', 'm') RETURNING id")
    ids["property"] = await db.fetchval(
        "INSERT INTO observed_properties (name, definition) VALUES ('flow', 'd') RETURNING id")
    ids["env_thing"] = await db.fetchval(
        "INSERT INTO things (agency_id, name) VALUES ($1, 'Env mast') RETURNING id", ids["env"])
    ids["traffic_thing"] = await db.fetchval(
        "INSERT INTO things (agency_id, name) VALUES ($1, 'Traffic counter') RETURNING id",
        ids["traffic"])
    location = await db.fetchval(
        "INSERT INTO locations (name, location) "
        "VALUES ('Odenplan', ST_SetSRID(ST_MakePoint(18.05, 59.34), 4326)) RETURNING id")
    await db.execute("INSERT INTO thing_locations (thing_id, location_id) "
                     "VALUES ($1, $3), ($2, $3)", ids["env_thing"], ids["traffic_thing"], location)
    for name, thing, agency, access in (
            ("env_open", "env_thing", "env", "open"),
            ("traffic_open", "traffic_thing", "traffic", "open"),
            ("secret", "traffic_thing", "traffic", "restricted")):
        ids[name] = await db.fetchval(
            "INSERT INTO datastreams (agency_id, thing_id, sensor_id, observed_property_id, "
            "name, observation_type, unit_symbol, access) "
            "VALUES ($1, $2, $3, $4, $5, 'measurement', 'count', $6) RETURNING id",
            ids[agency], ids[thing], ids["sensor"], ids["property"], name, access)
        base = SECRET_RESULT if access == "restricted" else 0
        await db.execute(
            "INSERT INTO observations (phenomenon_time, datastream_id, result_number) "
            "SELECT '2026-09-21T10:00:00Z'::timestamptz + make_interval(mins => m), $1, $2 + m "
            "FROM generate_series(0, $3 - 1) m", ids[name], base, SECRET_COUNT)
    ids["secret_observation"] = await db.fetchval(
        "SELECT min(id) FROM observations WHERE datastream_id = $1", ids["secret"])
    return ids


@asynccontextmanager
async def world(db_url: str, **settings: Any) -> AsyncIterator[World]:
    """The two agencies' data and keys, and the API on them with `settings` changed."""
    db = await connect(db_url)
    try:
        ids = await _seed(db)
        keys = {"admin": await make_key(db_url, "admin", "city")}
        for agency in ("env", "traffic"):
            for role in ("reader", "writer"):
                keys[f"{agency}_{role}"] = await make_key(db_url, role, agency)
        app = create_app(ApiSettings(**{"database_url": db_url, "mqtt_enabled": False,
                                        **settings}))
        async with app.router.lifespan_context(app):
            yield World(db, db_url, app, ids, keys)
    finally:
        await db.close()


WorldFactory = Callable[..., AbstractAsyncContextManager[World]]


@pytest.fixture
async def access(db_url: str) -> AsyncIterator[World]:
    """The two agencies, their keys and the API."""
    async with world(db_url) as w:
        yield w


@pytest.fixture
def access_with(db_url: str) -> WorldFactory:
    """Makes the world with API settings of the test's choosing."""
    return lambda **settings: world(db_url, **settings)
