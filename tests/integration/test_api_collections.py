"""Filters through to-many navigation on the seeded Stockholm fleet: a path through a
collection, the lambda operators any and all, and in.

The fleet: five air-quality sites with nine Datastreams each (NO2 among them), ten traffic
counters with two or three lanes of five Datastreams; readings only where a test seeds them
(Hornsgatan 108's NO2, results 0 to 119).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.readings import all_pages, get, seed_hour

AIR_QUALITY = ["E4/E20 Lilla Essingen", "Hornsgatan 108", "Norr Malma", "Sveavägen 59",
               "Torkel Knutssonsgatan"]
TRAFFIC = ["Essingeleden northbound", "Essingeleden southbound", "Hornsgatan eastbound",
           "Hornsgatan westbound", "Sveavägen northbound", "Sveavägen southbound",
           "Södra länken eastbound", "Södra länken westbound", "Valhallavägen eastbound",
           "Valhallavägen westbound"]


async def names(client: httpx.AsyncClient, url: str) -> list[str]:
    rows, _ = await all_pages(client, f"{url}&$select=name&$orderby=name")
    return [row["name"] for row in rows]


@pytest.mark.parametrize(("url", "expected"), [
    # Some related entity satisfies the comparison; a Thing with three lanes of
    # 'Lane occupancy' comes back once.
    ("/v1.1/Things?$filter=Datastreams/ObservedProperty/name eq 'Lane occupancy'", TRAFFIC),
    ("/v1.1/Things?$filter=Datastreams/Observations/result gt 100", ["Hornsgatan 108"]),
    ("/v1.1/Things?$filter=Datastreams/any(d: d/ObservedProperty/name eq 'NO2')",
     AIR_QUALITY),
    # Two comparisons through the same collection may hold for different members; in one
    # lambda they must hold for the same one.
    ("/v1.1/Things?$filter=Datastreams/ObservedProperty/name eq 'NO2' and "
     "Datastreams/Observations/result gt 100", ["Hornsgatan 108"]),
    ("/v1.1/Things?$filter=Datastreams/any(d: d/ObservedProperty/name eq 'NO' and "
     "d/Observations/any())", []),
    ("/v1.1/Things?$filter=Datastreams/Observations/any(o: o/result ge 119)",
     ["Hornsgatan 108"]),
    ("/v1.1/Things?$filter=Datastreams/all(d: d/ObservedProperty/name eq 'NO2')", []),
    ("/v1.1/Things?$filter=Datastreams/all(d: d/Sensor/name eq "
     "'Air-quality monitoring station')", AIR_QUALITY),
    ("/v1.1/ObservedProperties?$filter=Datastreams/Thing/properties/site_role eq 'street'"
     " and startswith(name, 'N')", ["NO", "NO2", "NOx"]),
    ("/v1.1/Things?$filter=st_within(Locations/location, geography'POLYGON((18.0 59.31, "
     "18.06 59.31, 18.06 59.32, 18.0 59.32, 18.0 59.31))')",
     ["Hornsgatan 108", "Hornsgatan eastbound", "Hornsgatan westbound",
      "Torkel Knutssonsgatan"]),
    ("/v1.1/Things?$filter=name in ('Hornsgatan 108', 'Norr Malma', 'Nowhere')",
     ["Hornsgatan 108", "Norr Malma"]),
    ("/v1.1/Things?$filter=Datastreams/ObservedProperty/name in ('NO2', 'Lane occupancy')",
     sorted(AIR_QUALITY + TRAFFIC)),
])
async def test_a_filter_through_a_collection_returns_each_matching_entity_once(
    client: httpx.AsyncClient, fleet_db: Any, url: str, expected: list[str]
) -> None:
    await seed_hour(fleet_db)
    assert await names(client, url) == expected


@pytest.mark.parametrize(("condition", "count"), [
    # all over an empty collection is true: 154 Datastreams have no Observations.
    ("Observations/all(o: o/result gt 1000)", 154),
    ("Observations/all(o: o/result lt 1000)", 155),
    ("Observations/all(o: o/result ge 1)", 154),
    ("Observations/any()", 1),
    ("not Observations/any()", 154),
    ("Observations/any(o: o/result in (7, 300))", 1),
    ("Observations/any(o: o/result in (300, 301))", 0),
])
async def test_any_and_all_count_the_datastreams_they_hold_for(
    client: httpx.AsyncClient, fleet_db: Any, condition: str, count: int
) -> None:
    await seed_hour(fleet_db)
    body = await get(client, f"/v1.1/Datastreams?$filter={condition}&$count=true&$top=0")
    assert body["@iot.count"] == count


async def test_a_collection_filter_reaches_back_through_to_one_navigation(
    client: httpx.AsyncClient, fleet_db: Any
) -> None:
    await seed_hour(fleet_db)
    # The Observations of any Datastream whose Thing also has a PM10 Datastream: all 120.
    body = await get(client, "/v1.1/Observations?$count=true&$top=1&$filter="
                             "Datastream/Thing/Datastreams/any(d: d/name eq "
                             "'Hornsgatan 108 – PM10') and result lt 10")
    assert body["@iot.count"] == 10


async def test_a_lambda_may_compare_a_member_with_the_filtered_entity(
    client: httpx.AsyncClient,
) -> None:
    # Every Datastream's name starts with its Thing's: true for all fifteen Things ...
    assert len(await names(client, "/v1.1/Things?$filter="
                                   "Datastreams/all(d: startswith(d/name, name))")) == 15
    # ... and no Datastream is named like its Thing.
    assert await names(client, "/v1.1/Things?$filter=Datastreams/any(d: d/name eq name)") == []


@pytest.mark.parametrize(("url", "position", "fragment"), [
    ("/v1.1/Things?$filter=Datastreams/colour eq 'x'", 0, "no property 'colour'"),
    ("/v1.1/Things?$filter=name eq 'x' or Datastreams/any(d: d/Observations/any(d: "
     "d/result gt 1))", 34, "variable 'd' is already in use"),
    ("/v1.1/Things?$filter=name/any()", 0, "'name' is not a collection"),
    ("/v1.1/Things?$filter=Datastreams/all()", 12, "all() needs a condition"),
    ("/v1.1/Things?$orderby=Datastreams/name", 0, "'Datastreams' is a collection"),
    ("/v1.1/Things?$filter=name in (1, 2)", 5, "cannot compare a string with an integer"),
])
async def test_a_wrong_collection_filter_is_a_400_naming_the_position(
    client: httpx.AsyncClient, url: str, position: int, fragment: str
) -> None:
    body = await get(client, url, 400)
    assert fragment in body["message"]
    assert body["position"] == position
