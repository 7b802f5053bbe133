"""Query options in the forms that SensorThings clients send, on the real database:
`@iot.id` wherever a property may stand, `ASC`/`DESC` in capitals, and indexes into JSON
arrays in `$filter` and `$orderby`.

One database for the module, read only: the Stockholm fleet, two hours of NO2 readings at
Hornsgatan 108 (results 0 to 119), arrays in three Things' properties and three NO
readings whose results are JSON.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from core.database import connect
from deploy.stack import LocalStack
from devices.fleet import stockholm
from devices.provision import provision
from tests.conftest import fresh_database
from tests.integration.readings import all_pages, api_client, datastream, get, seed_hour

ARRAYS = {
    "aq-hornsgatan-108": {"arr": [10, 20, 30],
                          "inlets": {"heights": [{"m": 2.5, "side": "north"}]}},
    "aq-sveavagen-59": {"arr": [20, 10]},
    "aq-norr-malma": {"arr": [5, 20, 40, 80]},
}
JSON_RESULTS = [[1, 2, 3], [4, 5, 6], {"a": [7, 8]}]


@dataclass(frozen=True)
class Seeded:
    client: httpx.AsyncClient
    things: dict[str, int]  # by device id
    no2: int  # Hornsgatan 108's NO2 Datastream, with 120 readings
    no: int  # Hornsgatan 108's NO Datastream, with the JSON results


@pytest.fixture(scope="module")
async def seeded(stack: LocalStack) -> AsyncIterator[Seeded]:
    async with fresh_database(stack) as url:
        conn = await connect(url)
        try:
            await provision(conn, stockholm())
            no2 = await seed_hour(conn)
            no = await datastream(conn, "aq-hornsgatan-108", "no")
            for device, extra in ARRAYS.items():
                await conn.execute("UPDATE things SET properties = properties || $1::jsonb "
                                   "WHERE device_id = $2", json.dumps(extra), device)
            await conn.executemany(
                "INSERT INTO observations (phenomenon_time, datastream_id, result_json) "
                "VALUES ('2026-09-21T10:00:00Z'::timestamptz + make_interval(mins => $1), "
                "$2, $3::jsonb)",
                [(m, no, json.dumps(result)) for m, result in enumerate(JSON_RESULTS)])
            things = dict(await conn.fetch("SELECT device_id, id FROM things"))
        finally:
            await conn.close()
        async with api_client(url, page_size=5) as client:
            yield Seeded(client, things, no2, no)


async def names(client: httpx.AsyncClient, url: str) -> list[str]:
    rows, _ = await all_pages(client, url)
    return [row["name"] for row in rows]


async def test_filter_on_iot_id_after_navigation_finds_that_things_observations(
    seeded: Seeded,
) -> None:
    thing = seeded.things["aq-hornsgatan-108"]
    body = await get(seeded.client, "/v1.1/Observations?$count=true&$top=1"
                                    f"&$filter=Datastream/Thing/@iot.id eq {thing}")
    assert body["@iot.count"] == 120 + len(JSON_RESULTS)
    other = seeded.things["aq-sveavagen-59"]
    body = await get(seeded.client, "/v1.1/Observations?$count=true&$top=0"
                                    f"&$filter=Datastream/Thing/@iot.id eq {other}")
    assert body["@iot.count"] == 0


async def test_iot_id_in_filter_orderby_and_select_of_one_request(seeded: Seeded) -> None:
    ids = sorted(seeded.things.values())
    rows, _ = await all_pages(seeded.client, "/v1.1/Things?$select=@iot.id,name"
                                             f"&$filter=@iot.id ge {ids[3]}"
                                             "&$orderby=@iot.id DESC")
    assert [row["@iot.id"] for row in rows] == ids[3:][::-1]
    assert {key for row in rows for key in row} == {"@iot.id", "@iot.selfLink", "name"}


async def test_select_of_iot_id_alone_shows_the_id_and_no_other_property(
    seeded: Seeded,
) -> None:
    thing = seeded.things["aq-norr-malma"]
    body = await get(seeded.client, f"/v1.1/Things({thing})?$select=@iot.id")
    assert body == {"@iot.id": thing, "@iot.selfLink": f"http://city/v1.1/Things({thing})"}


@pytest.mark.parametrize("condition", [
    "Datastreams/@iot.id eq {no2}",
    "Datastreams/any(d: d/@iot.id eq {no2})",
    "Datastreams/Observations/any(o: o/Datastream/@iot.id eq {no2} and o/result ge 119)",
    "ceiling(Datastreams/@iot.id) eq {no2}",
    "Datastreams/@iot.id in ({no2}, -1)",
])
async def test_iot_id_through_collections_lambdas_and_functions(
    seeded: Seeded, condition: str
) -> None:
    url = f"/v1.1/Things?$filter={condition.format(no2=seeded.no2)}"
    assert await names(seeded.client, url) == ["Hornsgatan 108"]


async def test_iot_id_in_the_options_inside_expand(seeded: Seeded) -> None:
    thing = seeded.things["aq-hornsgatan-108"]
    body = await get(seeded.client, (
        f"/v1.1/Things({thing})?$select=@iot.id&$expand=Datastreams("
        f"$select=@iot.id;$orderby=@iot.id desc;$filter=@iot.id le {seeded.no2};$top=2;"
        "$expand=Observations($select=@iot.id,result;$orderby=@iot.id desc;$top=1))"))
    streams = body["Datastreams"]
    assert [s["@iot.id"] for s in streams][:1] == [seeded.no2]
    assert streams[0]["@iot.id"] > streams[1]["@iot.id"]
    assert set(streams[0]) >= {"@iot.id", "@iot.selfLink", "Observations"}
    assert "name" not in streams[0]
    (newest,) = streams[0]["Observations"]
    assert newest["result"] == 119.0 and set(newest) == {"@iot.id", "@iot.selfLink", "result"}


@pytest.mark.parametrize(("direction", "first"), [
    ("DESC", [119.0, 118.0, 117.0]), ("ASC", [0.0, 1.0, 2.0]), ("Desc", [119.0, 118.0, 117.0]),
])
async def test_orderby_direction_in_capitals(
    seeded: Seeded, direction: str, first: list[float]
) -> None:
    body = await get(seeded.client, f"/v1.1/Datastreams({seeded.no2})/Observations"
                                    f"?$orderby=phenomenonTime {direction}&$top=3")
    assert [o["result"] for o in body["value"]] == first


async def test_pages_in_capital_desc_order_follow_their_next_links_without_gaps(
    seeded: Seeded,
) -> None:
    rows, links = await all_pages(
        seeded.client, f"/v1.1/Datastreams({seeded.no2})/Observations"
                       "?$orderby=phenomenonTime DESC&$top=50&$select=result")
    assert [o["result"] for o in rows] == [float(m) for m in range(119, -1, -1)]
    assert len(links) == 2 and all("%24skiptoken=" in link for link in links)


@pytest.mark.parametrize(("condition", "expected"), [
    ("properties/arr[1] eq 20", ["Hornsgatan 108", "Norr Malma"]),
    ("properties/arr[0] eq 20", ["Sveavägen 59"]),
    ("properties/arr[3] gt 50", ["Norr Malma"]),
    ("properties/arr[9] eq 20", []),
    ("properties/arr[9223372036854775807] eq 20", []),  # past any array, not an error
    ("properties/inlets/heights[0]/side eq 'north'", ["Hornsgatan 108"]),
    ("properties/inlets/heights[0]/m lt 3", ["Hornsgatan 108"]),
    ("properties/arr[1] add properties/arr[0] eq 30", ["Hornsgatan 108", "Sveavägen 59"]),
    ("properties/inlets[0] ne null", []),  # an object, not an array
    ("Datastreams/any(d: d/Thing/properties/arr[2] eq 40)", ["Norr Malma"]),
])
async def test_filter_on_an_indexed_json_path_finds_exactly_the_matching_things(
    seeded: Seeded, condition: str, expected: list[str]
) -> None:
    assert await names(seeded.client, f"/v1.1/Things?$filter={condition}&$orderby=name") \
        == expected


@pytest.mark.parametrize(("order", "expected"), [
    # Sveavägen has no third element: null, first ascending and last descending.
    ("properties/arr[2] asc", ["Sveavägen 59", "Hornsgatan 108", "Norr Malma"]),
    ("properties/arr[2] DESC", ["Norr Malma", "Hornsgatan 108", "Sveavägen 59"]),
    ("properties/arr[0],name", ["Norr Malma", "Hornsgatan 108", "Sveavägen 59"]),
])
async def test_orderby_an_indexed_json_path(
    seeded: Seeded, order: str, expected: list[str]
) -> None:
    url = f"/v1.1/Things?$filter=properties/arr ne null&$orderby={order}"
    assert await names(seeded.client, url) == expected


@pytest.mark.parametrize(("condition", "results"), [
    ("result[1] eq 5", [[4, 5, 6]]),
    ("result[0] ge 1", [[1, 2, 3], [4, 5, 6]]),
    ("result/a[1] eq 8", [{"a": [7, 8]}]),
])
async def test_json_results_are_indexed_too(
    seeded: Seeded, condition: str, results: list[Any]
) -> None:
    body = await get(seeded.client, f"/v1.1/Datastreams({seeded.no})/Observations"
                                    f"?$filter={condition}&$orderby=phenomenonTime")
    assert [o["result"] for o in body["value"]] == results


async def test_orderby_an_index_into_json_results(seeded: Seeded) -> None:
    body = await get(seeded.client, f"/v1.1/Datastreams({seeded.no})/Observations"
                                    "?$filter=result[0] ne null&$orderby=result[2] desc")
    assert [o["result"] for o in body["value"]] == [[4, 5, 6], [1, 2, 3]]


@pytest.mark.parametrize(("option", "fragment"), [
    ("$filter=properties/arr[x] eq 1", "array index is a whole number"),
    ("$filter=properties/arr[-1] eq 1", "array index is a whole number"),
    ("$filter=properties/arr[1 eq 1", "expected ']'"),
    ("$filter=properties/arr] eq 1", "unexpected ']'"),
    ("$filter=name[0] eq 'x'", "'name' is not JSON"),
    ("$orderby=properties/arr[1.5]", "array index is a whole number"),
    ("$orderby=properties/arr[0", "expected ']'"),
    ("$expand=Datastreams($filter=properties/arr[x] eq 1)", "array index is a whole number"),
])
async def test_a_malformed_array_index_is_a_400_saying_what_is_wrong(
    seeded: Seeded, option: str, fragment: str
) -> None:
    body = await get(seeded.client, f"/v1.1/Things?{option}", 400)
    assert body["code"] == "bad_request"
    assert fragment in body["message"]
