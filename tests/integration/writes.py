"""Helpers of the write API tests: the API with a notifier that records, requests with an
expected status, and bodies to build on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from api.app import create_app
from api.settings import ApiSettings
from core.notify import Change
from tests.access import bearer, make_key

BASE = "http://city/v1.1"
T0 = "2026-09-21T10:00:00Z"
POINT = {"type": "Point", "coordinates": [18.0686, 59.3293]}


@dataclass
class Recorder:
    """A notifier that keeps what it is handed."""

    changes: list[Change] = field(default_factory=list)

    async def notify(self, changes: Sequence[Change]) -> None:
        self.changes.extend(changes)


@dataclass
class Api:
    client: httpx.AsyncClient
    notified: Recorder

    async def send(self, method: str, url: str, body: Any = None, status: int = 200,
                   content_type: str = "application/json") -> Any:
        response = await self.client.request(
            method, url, json=body, headers={"content-type": content_type})
        assert response.status_code == status, response.text
        return response.json() if response.content else None

    async def post(self, url: str, body: Any, status: int = 201) -> Any:
        return await self.send("POST", url, body, status)

    async def get(self, url: str, status: int = 200) -> Any:
        return await self.send("GET", url, status=status)


@asynccontextmanager
async def running_api(db_url: str) -> AsyncIterator[Api]:
    """The API on `db_url`, HTTP only, with a recording notifier."""
    app = create_app(ApiSettings(database_url=db_url, mqtt_enabled=False))
    async with app.router.lifespan_context(app):
        app.state.notifier = recorder = Recorder()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://city",
                                     headers=bearer(await make_key(db_url))) as client:
            yield Api(client, recorder)


def location(name: str = "Odenplan", point: dict[str, Any] = POINT) -> dict[str, Any]:
    return {"name": name, "description": f"Mast at {name}",
            "encodingType": "application/geo+json", "location": point}


def sensor(name: str = "Thermometer") -> dict[str, Any]:
    return {"name": name, "description": "A sensor", "encodingType": "text/html",
            "metadata": "https://example.org/sensor"}


def observed_property(name: str = "Air temperature") -> dict[str, Any]:
    return {"name": name, "description": "How warm the air is",
            "definition": "https://example.org/air-temperature"}


def datastream(name: str = "Temperature", **links: Any) -> dict[str, Any]:
    return {"name": name, "description": "Air temperature each minute",
            "observationType":
                "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
            "unitOfMeasurement": {"name": "degree Celsius", "symbol": "°C",
                                  "definition": "http://unitsofmeasure.org/ucum.html#Cel"},
            **links}


def thing(name: str = "Weather mast", **links: Any) -> dict[str, Any]:
    return {"name": name, "description": "A mast with sensors", **links}


async def counts(db: Any) -> dict[str, int]:
    """Rows per table of the registry and the observations."""
    tables = ("things", "locations", "thing_locations", "historical_locations",
              "historical_location_locations", "sensors", "observed_properties",
              "datastreams", "observations", "features_of_interest")
    return {t: int(await db.fetchval(f"SELECT count(*) FROM {t}")) for t in tables}


def grown(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """The tables that gained (or lost) rows, by how many."""
    return {t: after[t] - before[t] for t in before if after[t] != before[t]}


async def new_datastream(api: Api, located: bool = True) -> dict[str, Any]:
    """A Datastream of a new Thing (at POINT unless `located` is false)."""
    body = thing(Locations=[location()] if located else [],
                 Datastreams=[datastream(Sensor=sensor(),
                                         ObservedProperty=observed_property())])
    made = await api.post("/v1.1/Things", body)
    streams = await api.get(f"/v1.1/Things({made['@iot.id']})/Datastreams")
    return dict(streams["value"][0])


def batch_request(ident: str, method: str, url: str, body: Any = None,
                  group: str | None = None) -> dict[str, Any]:
    """One request of a JSON `$batch`, in atomicity group `group` if given."""
    out: dict[str, Any] = {"id": ident, "method": method, "url": url}
    if body is not None:
        out["body"] = body
    if group is not None:
        out["atomicityGroup"] = group
    return out
