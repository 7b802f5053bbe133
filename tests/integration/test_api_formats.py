"""Result formats for GIS and dashboard clients, on the seeded Stockholm fleet: GeoJSON of
every entity that stands somewhere, CSV with expansions flattened, and series as dashboards
ask for them.

The fleet: fifteen Things, each at one Location; readings only where a test seeds them
(Hornsgatan 108's NO2 from 2026-09-21T10:00Z, one a minute, results 0 to 119).
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx
import pytest

from tests.integration.readings import get, seed_hour

# 2026-09-21T10:00Z and 12:00Z in milliseconds since 1970, as dashboards send them.
T10_MS, T12_MS = 1789984800000, 1789992000000


async def thing_id(fleet_db: Any, device: str) -> int:
    return int(await fleet_db.fetchval("SELECT id FROM things WHERE device_id = $1", device))


async def locations_of(fleet_db: Any) -> dict[int, Any]:
    """Each Thing's one Location as GeoJSON, read straight from the tables."""
    rows = await fleet_db.fetch(
        "SELECT tl.thing_id, ST_AsGeoJSON(l.location)::jsonb::text AS geometry "
        "FROM thing_locations tl JOIN locations l ON l.id = tl.location_id")
    return {r["thing_id"]: json.loads(r["geometry"]) for r in rows}


async def add_feature(fleet_db: Any, lon: float, lat: float) -> int:
    return int(await fleet_db.fetchval(
        "INSERT INTO features_of_interest (name, feature) "
        "VALUES ('Kerb', ST_SetSRID(ST_MakePoint($1, $2), 4326)) RETURNING id", lon, lat))


def table(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


async def test_things_as_geojson_stand_at_their_current_location(
    client: httpx.AsyncClient, fleet_db: Any,
) -> None:
    response = await client.get("/v1.1/Things?$resultFormat=GeoJSON&$top=100")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/geo+json"
    body = response.json()
    assert body["type"] == "FeatureCollection" and len(body["features"]) == 15
    expected = await locations_of(fleet_db)
    for feature in body["features"]:
        assert feature["type"] == "Feature"
        assert feature["geometry"] == expected[feature["id"]]
        properties = feature["properties"]
        assert properties["@iot.id"] == feature["id"]
        assert properties["@iot.selfLink"] == f"http://city/v1.1/Things({feature['id']})"
        assert properties["name"]


async def test_a_thing_at_two_locations_is_a_multipoint_and_one_at_none_has_no_geometry(
    client: httpx.AsyncClient, fleet_db: Any,
) -> None:
    two = await thing_id(fleet_db, "aq-hornsgatan-108")
    none = await thing_id(fleet_db, "aq-norr-malma")
    await fleet_db.execute(
        "WITH l AS (INSERT INTO locations (name, location) "
        "VALUES ('Mast', ST_SetSRID(ST_MakePoint(18.05, 59.32), 4326)) RETURNING id) "
        "INSERT INTO thing_locations SELECT $1, id FROM l", two)
    await fleet_db.execute("DELETE FROM thing_locations WHERE thing_id = $1", none)
    body = await get(client, f"/v1.1/Things?$resultFormat=GeoJSON&$filter=id in ({two}, {none})"
                             "&$select=name&$orderby=name")
    assert [(f["properties"], f["geometry"]) for f in body["features"]] == [
        ({"name": "Hornsgatan 108"},
         {"type": "MultiPoint", "coordinates": [[18.0488, 59.31721], [18.05, 59.32]]}),
        ({"name": "Norr Malma"}, None),
    ]


async def test_observations_as_geojson_stand_at_their_feature_of_interest(
    client: httpx.AsyncClient, fleet_db: Any,
) -> None:
    ds_id = await seed_hour(fleet_db)
    kerb = await add_feature(fleet_db, 18.0491, 59.3171)
    await fleet_db.execute(
        "UPDATE observations SET feature_id = $1 WHERE datastream_id = $2 "
        "AND phenomenon_time < '2026-09-21T10:02:00Z'", kerb, ds_id)
    body = await get(client, f"/v1.1/Datastreams({ds_id})/Observations?$resultFormat=GeoJSON"
                             "&$select=result&$orderby=phenomenonTime&$top=3")
    point = {"type": "Point", "coordinates": [18.0491, 59.3171]}
    assert [(f["properties"], f["geometry"]) for f in body["features"]] == [
        ({"result": 0.0}, point), ({"result": 1.0}, point), ({"result": 2.0}, None)]


async def test_one_entity_as_geojson_is_a_feature(
    client: httpx.AsyncClient, fleet_db: Any,
) -> None:
    thing = await thing_id(fleet_db, "aq-hornsgatan-108")
    response = await client.get(f"/v1.1/Things({thing})?$resultFormat=GeoJSON")
    assert response.headers["content-type"] == "application/geo+json"
    feature = response.json()
    assert feature["type"] == "Feature" and feature["id"] == thing
    assert feature["geometry"] == {"type": "Point", "coordinates": [18.0488, 59.31721]}
    assert feature["properties"]["name"] == "Hornsgatan 108"
    assert feature["properties"]["Locations@iot.navigationLink"].endswith(
        f"/Things({thing})/Locations")
    location = await get(client, f"/v1.1/Things({thing})/Locations?$top=1")
    place = await get(client, f"/v1.1/Locations({location['value'][0]['@iot.id']})"
                              "?$resultFormat=geojson&$select=name")
    assert place == {"type": "Feature", "id": location["value"][0]["@iot.id"],
                     "geometry": feature["geometry"],
                     "properties": {"name": location["value"][0]["name"]}}


async def test_geojson_properties_hold_expansions_but_not_the_geometry_twice(
    client: httpx.AsyncClient, fleet_db: Any,
) -> None:
    thing = await thing_id(fleet_db, "aq-hornsgatan-108")
    body = await get(client, f"/v1.1/Things({thing})/Locations?$resultFormat=GeoJSON"
                             "&$expand=Things($select=name)")
    (feature,) = body["features"]
    assert "location" not in feature["properties"]
    assert feature["properties"]["Things"] == [{"name": "Hornsgatan 108"}]


async def test_csv_flattens_expansions_of_one_entity_into_columns(
    client: httpx.AsyncClient, fleet_db: Any,
) -> None:
    ds_id = await seed_hour(fleet_db)
    name = await fleet_db.fetchval("SELECT name FROM datastreams WHERE id = $1", ds_id)
    response = await client.get(
        "/v1.1/Observations?$resultFormat=CSV&$select=result&$orderby=phenomenonTime&$top=2"
        "&$expand=Datastream($select=name;$expand=Thing($select=id,name)),"
        "FeatureOfInterest($select=name)")
    assert response.status_code == 200, response.text
    thing = await thing_id(fleet_db, "aq-hornsgatan-108")
    assert table(response.text) == [
        ["result", "Datastream/name", "Datastream/Thing/id", "Datastream/Thing/name",
         "FeatureOfInterest/name"],
        ["0.0", name, str(thing), "Hornsgatan 108", ""],
        ["1.0", name, str(thing), "Hornsgatan 108", ""],
    ]


async def test_csv_refuses_an_expanded_collection_saying_so(client: httpx.AsyncClient) -> None:
    body = await get(client, "/v1.1/Things?$resultFormat=CSV&$expand=Datastreams", 400)
    assert body["code"] == "bad_request"
    assert "Thing/Datastreams is a collection" in body["message"]


async def test_one_entity_as_csv_is_a_header_and_a_row(
    client: httpx.AsyncClient, fleet_db: Any,
) -> None:
    thing = await thing_id(fleet_db, "aq-hornsgatan-108")
    response = await client.get(f"/v1.1/Things({thing})?$resultFormat=CSV&$select=id,name")
    assert response.headers["content-type"].startswith("text/csv")
    assert table(response.text) == [["id", "name"], [str(thing), "Hornsgatan 108"]]


@pytest.mark.parametrize(("url", "shape"), [
    ("/v1.1/Observations?$resultFormat=DATAARRAY&$top=1", "dataArray"),
    ("/v1.1/Observations?$resultFormat=dataarray&$top=1", "dataArray"),
    ("/v1.1/Things?$resultFormat=csv&$top=1", "CSV"),
    ("/v1.1/Locations?$resultFormat=geojson&$top=1", "GeoJSON"),
    ("/v1.1/Observations?$resultFormat=GEOJSON&$top=1", "GeoJSON"),
])
async def test_format_names_match_whatever_their_case(
    client: httpx.AsyncClient, fleet_db: Any, url: str, shape: str,
) -> None:
    await seed_hour(fleet_db)
    response = await client.get(url)
    assert response.status_code == 200, response.text
    if shape == "CSV":
        assert response.headers["content-type"].startswith("text/csv")
    elif shape == "GeoJSON":
        assert response.json()["type"] == "FeatureCollection"
    else:
        assert response.json()["value"][0]["components"]


@pytest.mark.parametrize(("interval", "start", "end", "buckets"), [
    ("1h", T10_MS, T12_MS, [("10:00", 60), ("11:00", 60)]),
    ("PT1H", T10_MS, "2026-09-21T12:00:00Z", [("10:00", 60), ("11:00", 60)]),
    ("30m", "2026-09-21T10:00:00Z", T12_MS,
     [("10:00", 30), ("10:30", 30), ("11:00", 30), ("11:30", 30)]),
    ("P1D", T10_MS, T12_MS, [("00:00", 120)]),
    ("1w", T10_MS, T12_MS, [("00:00", 120)]),
    ("2 hours", T10_MS, T12_MS, [("10:00", 120)]),
])
async def test_a_series_takes_what_dashboards_send(
    client: httpx.AsyncClient, fleet_db: Any, interval: str, start: Any, end: Any,
    buckets: list[tuple[str, int]],
) -> None:
    ds_id = await seed_hour(fleet_db)
    body = await get(client, f"/api/Datastreams({ds_id})/series?interval={interval}"
                             f"&start={start}&end={end}")
    assert (body["start"], body["end"]) == ("2026-09-21T10:00:00Z", "2026-09-21T12:00:00Z")
    assert [(b["time"][11:16], b["count"]) for b in body["value"]] == buckets


async def test_a_series_in_seconds_has_a_bucket_per_reading(
    client: httpx.AsyncClient, fleet_db: Any,
) -> None:
    ds_id = await seed_hour(fleet_db)
    body = await get(client, f"/api/Datastreams({ds_id})/series?interval=30s"
                             f"&start={T10_MS}&end={T12_MS}")
    assert [b["count"] for b in body["value"]] == [1] * 120
    assert body["value"][1] == {"time": "2026-09-21T10:01:00Z", "avg": 1.0, "min": 1.0,
                                "max": 1.0, "count": 1}


@pytest.mark.parametrize(("query", "complaint"), [
    ("interval=1M", "months or years"),
    ("interval=P1Y", "months or years"),
    ("interval=0h", "longer than zero"),
    ("interval=99999999999999999999h", "is not like"),
    ("interval=999999999w", "too long"),
    ("interval=100ms", "more than 100,000 buckets"),
    ("start=1733400000000.5", "neither an ISO 8601 time nor milliseconds"),
    ("start=99999999999999999999", "beyond the year 9999"),
    (f"start={T12_MS}&end={T10_MS}", "start must come before end"),
    ("end=0001-01-01T00:00:00Z", "no day before it"),
])
async def test_a_bad_series_value_is_a_400_saying_what_is_wrong(
    client: httpx.AsyncClient, query: str, complaint: str,
) -> None:
    body = await get(client, f"/api/Datastreams(1)/series?{query}", 400)
    assert body["code"] == "bad_request" and complaint in body["message"]
