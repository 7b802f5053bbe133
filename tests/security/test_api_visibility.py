"""Claims: a restricted Datastream and its Observations are visible to its own agency's keys
and to admins, and on no read path to anyone else, as if they did not exist; open data
needs no key."""

from __future__ import annotations

from typing import Any

import httpx

from tests.security.api_fixtures import (
    SECRET_COUNT,
    SECRET_RESULT,
    World,
    WorldFactory,
    access,
    access_with,
)

__all__ = ["access", "access_with"]  # fixtures


async def get(client: httpx.AsyncClient, url: str, status: int = 200) -> Any:
    response = await client.get(url)
    assert response.status_code == status, response.text
    return response.json() if "json" in response.headers.get("content-type", "") \
        else response.text


async def test_open_data_needs_no_key(access: World) -> None:
    async with access.as_(None) as anyone:
        things = await get(anyone, "/v1.1/Things")
        streams = await get(anyone, "/v1.1/Datastreams")
        observations = await get(
            anyone, f"/v1.1/Datastreams({access.ids['env_open']})/Observations?$count=true")
    assert {t["name"] for t in things["value"]} == {"Env mast", "Traffic counter"}
    assert {s["name"] for s in streams["value"]} == {"env_open", "traffic_open"}
    assert observations["@iot.count"] == SECRET_COUNT


async def test_another_agency_gets_404_for_a_restricted_datastream_as_if_absent(
    access: World,
) -> None:
    secret, observation = access.ids["secret"], access.ids["secret_observation"]
    for who in (None, "env_reader", "env_writer"):
        async with access.as_(who) as outsider:
            body = await get(outsider, f"/v1.1/Datastreams({secret})", 404)
            assert body["code"] == "not_found"
            await get(outsider, f"/v1.1/Observations({observation})", 404)
            await get(outsider, f"/v1.1/Observations({observation})/Datastream", 404)
            await get(outsider, f"/v1.1/Datastreams({secret})/Observations", 404)
            await get(outsider, f"/v1.1/Datastreams({secret + 1000})", 404)  # truly absent


async def test_the_owning_agency_and_an_admin_see_the_restricted_datastream(
    access: World,
) -> None:
    secret = access.ids["secret"]
    for who in ("traffic_reader", "traffic_writer", "admin"):
        async with access.as_(who) as insider:
            stream = await get(insider, f"/v1.1/Datastreams({secret})")
            page = await get(insider, f"/v1.1/Datastreams({secret})/Observations?$count=true")
        assert stream["name"] == "secret"
        assert page["@iot.count"] == SECRET_COUNT


async def test_paths_through_the_thing_and_expand_leave_the_restricted_datastream_out(
    access: World,
) -> None:
    thing = access.ids["traffic_thing"]
    async with access.as_("env_reader") as outsider:
        streams = await get(outsider, f"/v1.1/Things({thing})/Datastreams")
        expanded = await get(outsider, f"/v1.1/Things({thing})?$expand="
                                       "Datastreams($count=true;$expand=Observations)")
        all_observations = await get(outsider, "/v1.1/Things?$expand=Datastreams/Observations"
                                               "($top=1000)")
    assert [s["name"] for s in streams["value"]] == ["traffic_open"]
    assert [s["name"] for s in expanded["Datastreams"]] == ["traffic_open"]
    assert expanded["Datastreams@iot.count"] == 1
    results = [o["result"] for t in all_observations["value"] for s in t["Datastreams"]
               for o in s["Observations"]]
    assert results and max(results) < SECRET_RESULT
    async with access.as_("traffic_reader") as insider:
        expanded = await get(insider, f"/v1.1/Things({thing})?$expand=Datastreams")
    assert sorted(s["name"] for s in expanded["Datastreams"]) == ["secret", "traffic_open"]


async def test_filters_across_relations_do_not_reveal_restricted_values(access: World) -> None:
    probe = f"result ge {SECRET_RESULT}"
    async with access.as_("env_reader") as outsider:
        things = await get(outsider, f"/v1.1/Things?$filter=Datastreams/Observations/{probe}")
        streams = await get(outsider, f"/v1.1/Datastreams?$filter=Observations/{probe}")
        observations = await get(outsider, f"/v1.1/Observations?$filter={probe}&$count=true")
        by_name = await get(outsider, "/v1.1/Observations?$filter=Datastream/name eq 'secret'")
    assert things["value"] == [] and streams["value"] == []
    assert observations["value"] == [] and observations["@iot.count"] == 0
    assert by_name["value"] == []
    async with access.as_("traffic_reader") as insider:
        things = await get(insider, f"/v1.1/Things?$filter=Datastreams/Observations/{probe}")
    assert [t["name"] for t in things["value"]] == ["Traffic counter"]


async def test_exact_counts_leave_out_restricted_rows(access: World) -> None:
    async with access.as_("env_reader") as outsider:
        observations = await get(outsider, "/v1.1/Observations?$count=true&$top=0")
        streams = await get(outsider, "/v1.1/Datastreams?$count=true")
    async with access.as_("admin") as admin:
        everything = await get(admin, "/v1.1/Observations?$count=true&$top=0")
    assert observations["@iot.count"] == 2 * SECRET_COUNT
    assert streams["@iot.count"] == 2
    assert everything["@iot.count"] == 3 * SECRET_COUNT


async def test_estimated_counts_leave_out_restricted_rows(access_with: WorldFactory) -> None:
    async with access_with(count_estimate_threshold=10) as w:
        # Many more restricted rows than open ones, and statistics that know it.
        await w.db.execute(
            "INSERT INTO observations (phenomenon_time, datastream_id, result_number) "
            "SELECT '2026-09-22T00:00:00Z'::timestamptz + make_interval(secs => s), $1, "
            f"{SECRET_RESULT} + s FROM generate_series(1, 20000) s", w.ids["secret"])
        await w.db.execute("ANALYZE observations")
        async with w.as_("env_reader") as outsider:
            whole = await get(outsider, "/v1.1/Observations?$count=true&$top=0")
            filtered = await get(outsider, "/v1.1/Observations?$count=true&$top=0"
                                           "&$filter=result ge 0")
        async with w.as_("admin") as admin:
            seen_all = await get(admin, "/v1.1/Observations?$count=true&$top=0")
    # Estimates past the threshold of 10: near the 60 open rows, nowhere near 20,090.
    assert 10 < whole["@iot.count"] < 1000
    assert 10 < filtered["@iot.count"] < 1000
    assert seen_all["@iot.count"] > 10_000


async def test_csv_and_data_array_exports_leave_out_restricted_rows(access: World) -> None:
    async with access.as_("env_reader") as outsider:
        csv = await get(outsider, "/v1.1/Observations?$resultFormat=CSV&$top=1000")
        array = await get(outsider, "/v1.1/Observations?$resultFormat=dataArray&$top=1000")
    rows = csv.strip().splitlines()[1:]
    assert len(rows) == 2 * SECRET_COUNT
    assert all(str(SECRET_RESULT) not in row for row in rows)
    assert len(array["value"]) == 2  # one element per open Datastream
    results = [row[element["components"].index("result")] for element in array["value"]
               for row in element["dataArray"]]
    assert len(results) == 2 * SECRET_COUNT and max(results) < SECRET_RESULT


async def test_latest_and_series_leave_out_restricted_datastreams(access: World) -> None:
    secret = access.ids["secret"]
    series = (f"/api/Datastreams({secret})/series?interval=1 hour"
              "&start=2026-09-21T00:00:00Z&end=2026-09-22T00:00:00Z")
    async with access.as_("env_reader") as outsider:
        latest = await get(outsider, "/api/latest")
        await get(outsider, series, 404)
    assert sorted(r["name"] for r in latest["value"]) == ["env_open", "traffic_open"]
    async with access.as_("traffic_reader") as insider:
        latest = await get(insider, "/api/latest")
        buckets = await get(insider, series)
    assert "secret" in [r["name"] for r in latest["value"]]
    assert sum(b["count"] for b in buckets["value"]) == SECRET_COUNT


async def test_batch_reads_act_for_the_batch_key(access: World) -> None:
    body = {"requests": [{"id": "1", "method": "get",
                          "url": f"Datastreams({access.ids['secret']})"}]}
    async with access.as_("env_reader") as outsider:
        hidden = (await outsider.post("/v1.1/$batch", json=body)).json()
    async with access.as_("traffic_reader") as insider:
        shown = (await insider.post("/v1.1/$batch", json=body)).json()
    assert hidden["responses"][0]["status"] == 404
    assert shown["responses"][0]["status"] == 200
    assert shown["responses"][0]["body"]["name"] == "secret"
