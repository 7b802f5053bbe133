"""Conformance class Request data: $filter, $expand, $select, $orderby, $top, $skip,
$count and @iot.nextLink, evaluated in the standard's order."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.conformance.conftest import all_pages, get
from tests.conformance.dataset import STATIONS, Dataset

CONFORMANCE_CLASS = "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data"


async def count(api: httpx.AsyncClient, url: str) -> int:
    sep = "&" if "?" in url else "?"
    body = await get(api, f"{url}{sep}$count=true&$top=0")
    return int(body["@iot.count"])


async def test_pages_cover_the_collection_once_and_the_last_has_no_next_link(
    api: httpx.AsyncClient, dataset: Dataset
) -> None:
    first = await get(api, "/v1.1/Observations?$top=20&$count=true")
    total = len(dataset.observations())
    assert first["@iot.count"] == total and len(first["value"]) == 20
    seen = await all_pages(api, "/v1.1/Observations?$top=20")
    assert len(seen) == total == len({o["@iot.id"] for o in seen})
    last = await get(api, f"/v1.1/Observations?$top=20&$skip={total - 5}")
    assert len(last["value"]) == 5 and "@iot.nextLink" not in last


async def test_count_is_taken_after_the_filter_and_before_top_and_skip(
    api: httpx.AsyncClient, dataset: Dataset
) -> None:
    big = [v for _, _, v in dataset.observations() if v > 30]
    body = await get(api, "/v1.1/Observations?$filter=result gt 30&$count=true&$top=2&$skip=3")
    assert body["@iot.count"] == len(big)
    assert len(body["value"]) == 2


async def test_orderby_sorts_on_several_keys(api: httpx.AsyncClient, dataset: Dataset) -> None:
    got = await all_pages(api, "/v1.1/Observations?$orderby=result desc,phenomenonTime asc"
                               "&$select=result,phenomenonTime&$top=25")
    expected = sorted(((v, t) for _, t, v in dataset.observations()),
                      key=lambda p: (-p[0], p[1]))
    assert [(o["result"], o["phenomenonTime"]) for o in got] == expected


async def test_select_gives_only_the_properties_named(
    api: httpx.AsyncClient, dataset: Dataset
) -> None:
    things = await get(api, "/v1.1/Things?$select=name&$orderby=name")
    assert things["value"] == [{"name": n} for n in sorted(s.name for s in STATIONS)]
    ids = await get(api, "/v1.1/Things?$select=id,name&$top=1")
    assert set(ids["value"][0]) == {"@iot.id", "@iot.selfLink", "name"}


async def test_expand_nests_with_options_of_its_own(
    api: httpx.AsyncClient, dataset: Dataset
) -> None:
    station = STATIONS[0]
    thing = dataset.things[station.name]
    body = await get(api, f"/v1.1/Things({thing})?$select=name&$expand=Datastreams("
                          "$select=name;$orderby=name desc;"
                          "$expand=Observations($top=2;$orderby=phenomenonTime desc;"
                          "$select=result))")
    expected = sorted(station.streams, key=lambda s: s.name, reverse=True)
    # Each expanded collection links to its next page.
    links = [ds.pop("Observations@iot.nextLink") for ds in body["Datastreams"]]
    assert body == {"name": station.name, "Datastreams": [
        {"name": s.name, "Observations": [{"result": v} for v in s.values[::-1][:2]]}
        for s in expected]}
    for link, stream in zip(links, expected, strict=True):
        following = await get(api, link)
        assert [o["result"] for o in following["value"]] == stream.values[::-1][2:4]


async def test_expand_of_to_one_navigation_and_a_path(
    api: httpx.AsyncClient, dataset: Dataset
) -> None:
    stream = STATIONS[2].streams[0]
    ds = dataset.datastreams[stream.name]
    body = await get(api, f"/v1.1/Datastreams({ds})?$expand=Thing/Locations,Sensor")
    assert body["Thing"]["name"] == STATIONS[2].name
    assert body["Thing"]["Locations"][0]["location"]["coordinates"] == [
        STATIONS[2].lon, STATIONS[2].lat]
    assert body["Sensor"]["name"] == f"{stream.name} sensor"


Test = Callable[[str, Any], bool]


def _matching(dataset: Dataset, test: Test) -> int:
    return sum(1 for _, t, v in dataset.observations() if test(t, v))


@pytest.mark.parametrize(("expression", "test"), [
    ("result eq 4.5", lambda t, v: v == 4.5),
    # mul binds tighter than add: 1.5 add 3 = 4.5.
    ("result eq 1.5 add 1.5 mul 2", lambda t, v: v == 4.5),
    # Parentheses first: (1.5 add 1.5) mul 2 is 6; without them 3 add 1.5 mul 2 is 6.
    ("(result add 1.5) mul 2 eq 6", lambda t, v: v == 1.5),
    ("result add 1.5 mul 2 eq 6", lambda t, v: v == 3),
    # and binds tighter than or.
    ("result lt 3 or result gt 120 and result lt 150",
     lambda t, v: v < 3 or 120 < v < 150),
    ("not (result ge 10)", lambda t, v: not v >= 10),
    # div is floating-point division, also of integer results: 107 div 2 is 53.5.
    ("result div 2 eq 53.5", lambda t, v: v / 2 == 53.5),
    ("result mod 7 eq 2", lambda t, v: v % 7 == 2),
    # round goes half away from zero: 1.5 is 2 (all results here are positive).
    ("round(result) eq 2", lambda t, v: math.floor(v + 0.5) == 2),
    ("floor(result) eq 1", lambda t, v: int(v // 1) == 1),
    ("ceiling(result) eq 2", lambda t, v: -int(-v // 1) == 2),
    ("hour(phenomenonTime) eq 5", lambda t, v: datetime.fromisoformat(t).hour == 5),
    ("phenomenonTime ge 2026-09-21T10:00:00Z and phenomenonTime lt 2026-09-21T12:00:00Z",
     lambda t, v: "T10:" in t or "T11:" in t),
    # An offset is an instant: 12:00+02:00 is 10:00Z.
    ("phenomenonTime ge 2026-09-21T12:00:00%2B02:00",
     lambda t, v: datetime.fromisoformat(t).hour >= 10),
])
async def test_filter_operators_follow_the_standard(
    api: httpx.AsyncClient, dataset: Dataset, expression: str, test: Test
) -> None:
    assert await count(api, f"/v1.1/Observations?$filter={expression}") == _matching(
        dataset, test)


@pytest.mark.parametrize(("url", "expected"), [
    ("/v1.1/Things?$filter=startswith(name, 'Conformance E')",
     ["Conformance Essingeleden counter"]),
    ("/v1.1/Things?$filter=endswith(name, 'gatan')", ["Conformance Hornsgatan",
                                                     "Conformance Torkel Knutssonsgatan"]),
    ("/v1.1/Things?$filter=substringof('Torkel', name)", ["Conformance Torkel Knutssonsgatan"]),
    ("/v1.1/Things?$filter=length(name) eq 22", ["Conformance Hornsgatan"]),
    ("/v1.1/Things?$filter=tolower(name) eq 'conformance hornsgatan'", ["Conformance Hornsgatan"]),
    ("/v1.1/Things?$filter=indexof(name, 'Horn') eq 12", ["Conformance Hornsgatan"]),
    ("/v1.1/Things?$filter=substring(name, 12, 4) eq 'Essi'",
     ["Conformance Essingeleden counter"]),
    ("/v1.1/Things?$filter=concat(name, '!') eq 'Conformance Hornsgatan!'",
     ["Conformance Hornsgatan"]),
    # Into JSON properties.
    ("/v1.1/Things?$filter=properties/site_role eq 'road'", ["Conformance Essingeleden counter"]),
    # Across relations (to-one, then to-one).
    ("/v1.1/Datastreams?$filter=Thing/properties/site_role eq 'street'",
     ["Hornsgatan NO2", "Hornsgatan PM10"]),
    ("/v1.1/Datastreams?$filter=ObservedProperty/name eq 'NO2'",
     ["Hornsgatan NO2", "Torkel NO2"]),
    # Geospatial, through PostGIS.
    ("/v1.1/Locations?$filter=st_within(location, geography'POLYGON((18.04 59.31, "
     "18.06 59.31, 18.06 59.32, 18.04 59.32, 18.04 59.31))')",
     ["Conformance Hornsgatan", "Conformance Torkel Knutssonsgatan"]),
    ("/v1.1/Locations?$filter=geo.intersects(location, geography'POLYGON((17.99 59.32, "
     "18.01 59.32, 18.01 59.33, 17.99 59.33, 17.99 59.32))')",
     ["Conformance Essingeleden counter"]),
    ("/v1.1/Locations?$filter=st_equals(location, geography'POINT(18.049 59.3172)')",
     ["Conformance Hornsgatan"]),
    ("/v1.1/Locations?$filter=geo.distance(location, geography'POINT(18.049 59.3172)') lt 0.01",
     ["Conformance Hornsgatan", "Conformance Torkel Knutssonsgatan"]),
])
async def test_filter_functions_select_exactly_the_entities_expected(
    api: httpx.AsyncClient, dataset: Dataset, url: str, expected: list[str]
) -> None:
    got = await all_pages(api, f"{url}&$orderby=name&$select=name")
    assert [e["name"] for e in got] == expected
