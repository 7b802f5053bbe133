"""Paging on the real database: keyset pages of Observations, counts and next links inside
expanded collections, estimated counts above the threshold, and $top past the page limit.

Seeded: twelve one-minute readings of Hornsgatan 108's NO and NO2 at the same times (every
time ties across the two), with result times that are null or tie in threes.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.integration.readings import all_pages, api_client, datastream, get

T0 = datetime(2026, 9, 21, 10, tzinfo=UTC)
SELECT = "$select=phenomenonTime,resultTime,result"


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


async def seed_ties(fleet_db: Any) -> list[tuple[int, datetime, datetime | None, float]]:
    """Readings (datastream, phenomenon time, result time, result) of NO and NO2."""
    rows = []
    for record, offset in (("no", 100), ("no2", 0)):
        ds = await datastream(fleet_db, "aq-hornsgatan-108", record)
        for m in range(12):
            result_time = None if m % 4 == 0 else T0 + timedelta(hours=m % 3)
            rows.append((ds, T0 + timedelta(minutes=m), result_time, float(offset + m)))
    await fleet_db.executemany(
        "INSERT INTO observations (datastream_id, phenomenon_time, result_time, result_number)"
        " VALUES ($1, $2, $3, $4)", rows)
    return rows


def shown(rows: list[tuple[int, datetime, datetime | None, float]]) -> list[tuple[Any, ...]]:
    return [(iso(t), iso(rt), r) for _, t, rt, r in rows]


def keyset_order(orderby: str) -> Any:
    """The order the standard asks for, with the server's tiebreak (datastream, time)."""
    def key(row: tuple[int, datetime, datetime | None, float]) -> tuple[Any, ...]:
        ds, t, rt, _ = row
        if not orderby:
            return (ds, t.timestamp())  # the default: Datastream, then time
        if orderby.startswith("resultTime"):
            # Nulls first ascending, last descending: either way the smallest, then flipped.
            stamp = float("-inf") if rt is None else rt.timestamp()
            stamp = -stamp if orderby.endswith("desc") else stamp
            return (stamp, ds, t)
        return (-t.timestamp() if orderby.endswith("desc") else t.timestamp(), ds)
    return key


@pytest.mark.parametrize("orderby", [
    "", "phenomenonTime", "phenomenonTime desc", "resultTime", "resultTime desc",
])
async def test_keyset_pages_neither_overlap_nor_skip_rows_that_tie(
    client: httpx.AsyncClient, fleet_db: Any, orderby: str
) -> None:
    seeded = await seed_ties(fleet_db)
    order = f"&$orderby={orderby}" if orderby else ""
    rows, links = await all_pages(client, f"/v1.1/Observations?$top=5&{SELECT}{order}")
    expected = sorted(seeded, key=keyset_order(orderby))
    assert [(o["phenomenonTime"], o["resultTime"], o["result"]) for o in rows] == shown(
        expected)
    assert len(links) == 4
    for link in links:
        query = parse_qs(urlsplit(link).query)
        assert "$skiptoken" in query and "$skip" not in query


async def test_one_datastreams_observations_page_by_key_newest_first(
    client: httpx.AsyncClient, fleet_db: Any
) -> None:
    await seed_ties(fleet_db)
    ds = await datastream(fleet_db, "aq-hornsgatan-108", "no2")
    rows, links = await all_pages(client, f"/v1.1/Datastreams({ds})/Observations?$top=5"
                                          "&$orderby=phenomenonTime desc&$count=true")
    assert [o["result"] for o in rows] == [float(m) for m in range(11, -1, -1)]
    assert all("skiptoken" in link for link in links)
    page = await get(client, links[0])
    assert page["@iot.count"] == 12  # the count ignores the token, as it ignores $skip


async def test_an_order_keyset_paging_does_not_serve_falls_back_to_skip(
    client: httpx.AsyncClient, fleet_db: Any
) -> None:
    await seed_ties(fleet_db)
    rows, links = await all_pages(client, "/v1.1/Observations?$top=10&$orderby=result desc")
    assert [o["result"] for o in rows] == sorted((float(100 * k + m) for k in (0, 1)
                                                  for m in range(12)), reverse=True)
    assert [parse_qs(urlsplit(link).query)["$skip"] for link in links] == [["10"], ["20"]]
    assert not any("skiptoken" in link for link in links)


def token(*values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode().rstrip("=")


@pytest.mark.parametrize(("url", "fragment"), [
    ("/v1.1/Observations?$skiptoken=not-a-token!", "not a token this server gave out"),
    ("/v1.1/Observations?$skiptoken=e30", "not a token this server gave out"),
    ("/v1.1/Observations?$skiptoken=" + "A" * 500, "not a token this server gave out"),
    (f"/v1.1/Observations?$skiptoken={token('default', 'x', 1, None)}", "not a token"),
    (f"/v1.1/Observations?$skiptoken={token('default', '2026-09-21T10:00:00', 1, None)}",
     "not a token"),
    (f"/v1.1/Observations?$skiptoken={token('default', '2026-09-21T10:00:00Z', True, None)}",
     "not a token"),
    (f"/v1.1/Observations?$skiptoken={token('default', '2026-09-21T10:00:00Z', 2**63, None)}",
     "not a token"),
    (f"/v1.1/Observations?$skiptoken={token('default', None, 1, None)}", "not a token"),
    (f"/v1.1/Observations?$orderby=phenomenonTime desc&$skiptoken="
     f"{token('default', '2026-09-21T10:00:00Z', 1, None)}", "belongs to another $orderby"),
    (f"/v1.1/Observations?$orderby=result&$skiptoken={token('default', 'x', 1, None)}",
     "$skiptoken pages Observations"),
    (f"/v1.1/Things?$skiptoken={token('default', 'x', 1, None)}", "$skiptoken pages Observations"),
])
async def test_a_malformed_skiptoken_is_a_400(
    client: httpx.AsyncClient, url: str, fragment: str
) -> None:
    body = await get(client, url, 400)
    assert fragment in body["message"]


async def test_a_valid_token_made_by_hand_seeks_to_its_key(
    client: httpx.AsyncClient, fleet_db: Any
) -> None:
    seeded = await seed_ties(fleet_db)
    no2 = await datastream(fleet_db, "aq-hornsgatan-108", "no2")
    after = token("phenomenonTime desc", "2026-09-21T10:05:00+00:00", no2, None)
    body = await get(client, f"/v1.1/Observations?$orderby=phenomenonTime desc&$top=3"
                             f"&$skiptoken={after}")
    assert len(seeded) == 24
    # 10:05 NO2 is the last row of the previous page; 10:04 NO comes next (NO's id is lower).
    assert [o["result"] for o in body["value"]] == [104.0, 4.0, 103.0]


async def test_expanded_collections_carry_their_count_and_a_next_link_per_parent(
    client: httpx.AsyncClient,
) -> None:
    body = await get(client, "/v1.1/Things?$orderby=name&$top=3&$select=name"
                             "&$expand=Datastreams($count=true;$top=10;$select=name)")
    things = body["value"]
    assert [t["Datastreams@iot.count"] for t in things] == [9, 15, 15]
    assert [len(t["Datastreams"]) for t in things] == [9, 10, 10]
    assert ["Datastreams@iot.nextLink" in t for t in things] == [False, True, True]
    rest = await get(client, things[1]["Datastreams@iot.nextLink"])
    assert rest["@iot.count"] == 15 and len(rest["value"]) == 5
    shown = {d["name"] for d in things[1]["Datastreams"]}
    assert len(shown | {d["name"] for d in rest["value"]}) == 15


async def test_following_an_expanded_next_link_gives_the_rest_with_the_same_options(
    client: httpx.AsyncClient,
) -> None:
    body = await get(client, "/v1.1/Things?$filter=name eq 'Hornsgatan 108'&$expand="
                             "Datastreams($count=true;$top=2;$orderby=name;$select=name;"
                             "$filter=startswith(name, 'Hornsgatan 108 – N') or "
                             "startswith(name, 'Hornsgatan 108 – P'))")
    (thing,) = body["value"]
    assert thing["Datastreams@iot.count"] == 5
    link = thing["Datastreams@iot.nextLink"]
    assert link.startswith(f"http://city/v1.1/Things({thing['@iot.id']})/Datastreams?")
    names = [d["name"] for d in thing["Datastreams"]]
    rows, _ = await all_pages(client, link)
    assert names + [d["name"] for d in rows] == [
        f"Hornsgatan 108 – {n}" for n in ("NO", "NO2", "NOx", "PM10", "PM2.5")]
    assert all(set(d) == {"name"} for d in rows)


async def test_an_expanded_next_link_keeps_nested_expansions(
    client: httpx.AsyncClient,
) -> None:
    body = await get(client, "/v1.1/Things?$filter=name eq 'Hornsgatan 108'&$expand="
                             "Datastreams($top=1;$orderby=name desc;$select=name;"
                             "$expand=ObservedProperty($select=name))")
    (thing,) = body["value"]
    assert thing["Datastreams"] == [{"name": "Hornsgatan 108 – Relative humidity",
                                     "ObservedProperty": {"name": "Relative humidity"}}]
    following = await get(client, thing["Datastreams@iot.nextLink"])
    assert following["value"] == [{"name": "Hornsgatan 108 – PM2.5",
                                   "ObservedProperty": {"name": "PM2.5"}}]


async def test_an_expanded_page_past_the_end_still_counts(client: httpx.AsyncClient) -> None:
    body = await get(client, "/v1.1/Things?$filter=name eq 'Norr Malma'&$expand="
                             "Datastreams($count=true;$skip=20)")
    (thing,) = body["value"]
    assert thing["Datastreams@iot.count"] == 9 and thing["Datastreams"] == []
    assert "Datastreams@iot.nextLink" not in thing


async def test_expanded_observations_count_and_continue_by_key(
    client: httpx.AsyncClient, fleet_db: Any
) -> None:
    await seed_ties(fleet_db)
    ds = await datastream(fleet_db, "aq-hornsgatan-108", "no2")
    body = await get(client, f"/v1.1/Datastreams({ds})?$expand=Observations($count=true;"
                             "$top=3;$orderby=phenomenonTime desc;$select=result)")
    assert body["Observations@iot.count"] == 12
    assert body["Observations"] == [{"result": 11.0}, {"result": 10.0}, {"result": 9.0}]
    rows, links = await all_pages(client, body["Observations@iot.nextLink"])
    assert [o["result"] for o in rows] == [float(m) for m in range(8, -1, -1)]
    assert links and all("skiptoken" in link for link in links)


@pytest.fixture
async def stale_statistics(fleet_db: Any) -> int:
    """300 readings of which the statistics know only the first 100; returns the
    Datastream. Autovacuum is off so that the statistics stay as the test left them."""
    ds = await datastream(fleet_db, "aq-hornsgatan-108", "no2")
    await fleet_db.execute("ALTER TABLE observations SET (autovacuum_enabled = false)")
    insert = ("INSERT INTO observations (phenomenon_time, datastream_id, result_number) "
              "SELECT $1::timestamptz + make_interval(mins => m), $2, m "
              "FROM generate_series(0, $3 - 1) m")
    await fleet_db.execute(insert, T0, ds, 100)
    await fleet_db.execute("ANALYZE observations")
    await fleet_db.execute(insert, T0 + timedelta(days=1), ds, 200)
    return ds


@pytest.mark.parametrize(("condition", "count"), [
    ("phenomenonTime lt 2026-09-21T10:40:00Z", 40),
    ("phenomenonTime lt 2026-09-21T10:50:00Z", 50),
    # 200 rows the statistics have not seen: the planner expects about none, and the answer
    # is the least that is known to be true.
    ("phenomenonTime ge 2026-09-22T00:00:00Z", 51),
])
async def test_counts_past_the_threshold_are_the_planners_estimate(
    stale_statistics: int, db_url: str, condition: str, count: int
) -> None:
    async with api_client(db_url, count_estimate_threshold=50) as small:
        body = await get(small, f"/v1.1/Observations?$count=true&$top=1&$filter={condition}")
    assert body["@iot.count"] == count


async def test_a_count_of_all_observations_past_the_threshold_is_timescales_estimate(
    stale_statistics: int, db_url: str, fleet_db: Any, client: httpx.AsyncClient
) -> None:
    estimate = await fleet_db.fetchval("SELECT approximate_row_count('observations')")
    async with api_client(db_url, count_estimate_threshold=50) as small:
        body = await get(small, "/v1.1/Observations?$count=true&$top=1")
    assert body["@iot.count"] == estimate == 100
    exact = await get(client, "/v1.1/Observations?$count=true&$top=1")
    assert exact["@iot.count"] == 300


async def test_top_past_the_largest_page_is_cut_to_it_and_a_next_link_leads_on(
    db_url: str, fleet_db: Any
) -> None:
    async with api_client(db_url, max_page_size=4) as small:
        first = await get(small, "/v1.1/Things?$top=10&$orderby=name")
        rows, links = await all_pages(small, "/v1.1/Things?$top=10&$orderby=name")
    assert len(first["value"]) == 4
    assert len(rows) == 15 and len(links) == 3
