"""No single client can hurt everyone: the bounds of one request on the real database.

An expansion that would read more rows than a request's share, a body past its size, a
property too long to serve to every reader, forwarded headers from anyone, queries nested
past the parser's stack, a database gone away: each is answered with the API's own JSON
error, never a 500, a stack trace or the database's text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn

from api.app import create_app
from api.settings import ApiSettings
from deploy.ports import free_port
from tests.access import bearer, make_key
from tests.integration.readings import api_client, get

T0 = "2026-09-21T00:00:00Z"


async def seed(fleet_db: Any, streams: int, each: int) -> list[int]:
    """`each` one-second readings on each of the first `streams` Datastreams; their ids."""
    ids = [int(r["id"]) for r in await fleet_db.fetch(
        "SELECT id FROM datastreams ORDER BY id LIMIT $1", streams)]
    await fleet_db.execute(
        "INSERT INTO observations (phenomenon_time, datastream_id, result_number) "
        "SELECT $1::text::timestamptz + make_interval(secs => s), d, s "
        "FROM unnest($2::bigint[]) d, generate_series(1, $3) s", T0, ids, each)
    return ids


async def test_an_expansion_past_the_row_limit_is_a_400_that_says_how_to_page(
    fleet_db: Any, db_url: str,
) -> None:
    ids = await seed(fleet_db, streams=20, each=1500)
    async with api_client(db_url) as client:
        bomb = await get(client, "/v1.1/Datastreams?$top=20&$orderby=id"
                                 "&$expand=Observations($top=10000)", 400)
        within = await get(client, "/v1.1/Datastreams?$top=20&$orderby=id"
                                   "&$expand=Observations($top=1000)")
    assert bomb["code"] == "bad_request"
    assert "200000 rows (20 Datastreams × $top=10000)" in bomb["message"]
    assert "20000" in bomb["message"] and "smaller $top" in bomb["message"]
    assert f"http://city/v1.1/Datastreams({ids[0]})/Observations" in bomb["message"]
    assert [len(d["Observations"]) for d in within["value"]] == [1000] * 20
    assert all("Observations@iot.nextLink" in d for d in within["value"])


async def test_the_row_limit_counts_every_level_of_one_request(
    fleet_db: Any, db_url: str,
) -> None:
    await seed(fleet_db, streams=3, each=10)
    async with api_client(db_url, max_expanded_rows=2_000) as client:
        # 15 Things by $top=100 fit; then their 155 Datastreams by $top=20 do not.
        deep = await get(client, "/v1.1/Things?$top=15&$expand=Datastreams("
                                 "$expand=Observations($top=20))", 400)
        shallow = await get(client, "/v1.1/Things?$top=15&$expand=Datastreams("
                                    "$expand=Observations($top=10))")
    assert "155 Datastreams × $top=20" in deep["message"]
    assert "more than the 1845 this request has left" in deep["message"]
    streams = [d for t in shallow["value"] for d in t["Datastreams"]]
    assert len(streams) == 155
    assert sum(len(d["Observations"]) for d in streams) == 30


@pytest.mark.parametrize("expand", [
    "Datastreams($expand=Thing($expand=" * 200 + "Locations" + "))" * 200,
    "Datastreams($expand=Thing($expand=Datastreams($expand=Thing($expand=Datastreams("
    "$expand=Thing)))))",
    "/".join(["Datastreams", "Thing"] * 600),
])
async def test_expansions_nested_past_five_levels_are_a_400_naming_the_limit(
    client: httpx.AsyncClient, expand: str,
) -> None:
    body = await get(client, f"/v1.1/Things?$expand={expand}", 400)
    assert body["code"] == "bad_request"
    assert "deeper than 5 levels" in body["message"]


async def test_five_levels_of_expansion_are_still_served(client: httpx.AsyncClient) -> None:
    body = await get(client, "/v1.1/Things?$top=1&$expand=Datastreams($top=1;$expand=Thing("
                             "$expand=Datastreams($top=1;$expand=Thing($expand=Locations))))")
    assert body["value"][0]["Datastreams"][0]["Thing"]["Datastreams"][0]["Thing"]["Locations"]


@pytest.mark.parametrize("option", ["$filter", "$orderby"])
async def test_thousands_of_nested_parentheses_are_a_400(
    client: httpx.AsyncClient, option: str,
) -> None:
    text = "(" * 5000 + ("name eq 'x'" if option == "$filter" else "name") + ")" * 5000
    body = await get(client, f"/v1.1/Things?{option}={text}", 400)
    assert "nests too deeply" in body["message"]


async def test_a_body_past_the_limit_is_a_413_whether_its_length_is_given_or_not(
    fleet_db: Any, db_url: str,
) -> None:
    huge = b'{"name": "x", "description": "' + b"y" * 2_000_000 + b'"}'

    async def chunks() -> AsyncIterator[bytes]:
        for at in range(0, len(huge), 65_536):
            yield huge[at:at + 65_536]

    async with api_client(db_url, max_body_bytes=1_000_000) as client:
        declared = await client.post("/v1.1/Things", content=huge,
                                     headers={"content-type": "application/json"})
        chunked = await client.post("/v1.1/Things", content=chunks(),
                                    headers={"content-type": "application/json"})
        things = await get(client, "/v1.1/Things?$count=true&$top=0")
    for response in (declared, chunked):
        assert response.status_code == 413
        assert response.json()["code"] == "payload_too_large"
        assert "larger than 1000000 bytes" in response.json()["message"]
    assert "content-length" not in chunked.request.headers
    assert things["@iot.count"] == 15


@pytest.mark.parametrize(("url", "body", "field"), [
    ("/v1.1/Things", {"name": "x", "description": "d" * 20_000}, "Thing.description"),
    ("/v1.1/Things", {"name": "é" * 9_000, "description": "d"}, "Thing.name"),
    ("/v1.1/Things", {"name": "x", "description": "d",
                      "properties": {"blob": "p" * 70_000}}, "Thing.properties"),
    ("/v1.1/Things", {"name": "x", "description": "d", "Datastreams": [{
        "name": "s", "description": "d", "observationType": "o",
        "unitOfMeasurement": {"name": "u" * 20_000}, "Sensor": {"@iot.id": 1},
        "ObservedProperty": {"@iot.id": 1}}]},
     "Thing.Datastreams[0].unitOfMeasurement.name"),
])
async def test_a_property_past_its_size_is_a_400_naming_it_and_nothing_is_stored(
    fleet_db: Any, db_url: str, url: str, body: dict[str, Any], field: str,
) -> None:
    async with api_client(db_url) as client:
        response = await client.post(url, json=body)
        things = await get(client, "/v1.1/Things?$count=true&$top=0")
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith(f"{field} is l")
    assert things["@iot.count"] == 15


async def test_a_property_within_its_size_is_stored(fleet_db: Any, db_url: str) -> None:
    async with api_client(db_url) as client:
        response = await client.post("/v1.1/Things", json={
            "name": "x", "description": "d" * 16_000, "properties": {"blob": "p" * 60_000}})
    assert response.status_code == 201, response.text


async def test_an_answer_past_the_byte_limit_is_a_400_and_select_gets_past_it(
    fleet_db: Any, db_url: str,
) -> None:
    # As a Thing written before the size limits: a 2 MB description.
    await fleet_db.execute("UPDATE things SET description = repeat('y', 2000000) "
                           "WHERE id = (SELECT min(id) FROM things)")
    async with api_client(db_url, max_response_bytes=1_000_000) as client:
        whole = await get(client, "/v1.1/Things", 400)
        names = await get(client, "/v1.1/Things?$select=name")
    assert whole["message"].startswith("the answer would be 2")
    assert "more than the 1000000 one request may have" in whole["message"]
    assert len(names["value"]) == 15


LONG_LINE = {"type": "LineString", "coordinates": [[i, i] for i in range(10_000)]}


@pytest.mark.parametrize(("url", "body", "field", "table"), [
    ("Observations", {"phenomenonTime": T0, "result": "r" * 20_000}, "Observation.result",
     "observations"),
    ("Locations", {"name": "x", "description": "d", "encodingType": "application/geo+json",
                   "location": LONG_LINE}, "Location.location", "locations"),
    ("FeaturesOfInterest", {"name": "x", "description": "d",
                            "encodingType": "application/geo+json", "feature": LONG_LINE},
     "FeatureOfInterest.feature", "features_of_interest"),
])
async def test_a_string_result_or_geometry_past_its_size_is_a_400_naming_it(
    fleet_db: Any, db_url: str, url: str, body: dict[str, Any], field: str, table: str,
) -> None:
    stream = await fleet_db.fetchval("SELECT min(id) FROM datastreams")
    path = f"/v1.1/Datastreams({stream})/{url}" if url == "Observations" else f"/v1.1/{url}"
    before = await fleet_db.fetchval(f"SELECT count(*) FROM {table}")
    async with api_client(db_url) as client:
        response = await client.post(path, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith(f"{field} is l")
    assert await fleet_db.fetchval(f"SELECT count(*) FROM {table}") == before


async def test_a_string_result_within_the_text_size_is_stored(
    fleet_db: Any, db_url: str,
) -> None:
    stream = await fleet_db.fetchval("SELECT min(id) FROM datastreams")
    async with api_client(db_url) as client:
        response = await client.post(f"/v1.1/Datastreams({stream})/Observations",
                                     json={"phenomenonTime": T0, "result": "r" * 16_000})
    assert response.status_code == 201, response.text


def batch_of_gets(*urls: str) -> dict[str, Any]:
    return {"requests": [{"id": str(i), "method": "get", "url": url}
                         for i, url in enumerate(urls)]}


async def test_the_gets_of_one_batch_share_the_expanded_row_limit(
    fleet_db: Any, db_url: str,
) -> None:
    await seed(fleet_db, streams=2, each=30)
    url = "Datastreams?$top=2&$orderby=id&$expand=Observations($top=20)"  # 40 rows
    async with api_client(db_url, max_expanded_rows=40) as client:
        batch = await client.post("/v1.1/$batch", json=batch_of_gets(url, url))
        alone = await get(client, f"/v1.1/{url}")
    assert batch.status_code == 200, batch.text
    first, second = batch.json()["responses"]
    assert first["status"] == 200
    assert [len(d["Observations"]) for d in first["body"]["value"]] == [20, 20]
    assert second["status"] == 400
    assert "more than the 0 this $batch has left of its limit" in second["body"]["message"]
    assert [len(d["Observations"]) for d in alone["value"]] == [20, 20]


async def test_the_gets_of_one_batch_share_the_answer_byte_limit(
    fleet_db: Any, db_url: str,
) -> None:
    thing = await fleet_db.fetchval("UPDATE things SET description = repeat('y', 600000) "
                                    "WHERE id = (SELECT min(id) FROM things) RETURNING id")
    url = f"Things({thing})"
    async with api_client(db_url, max_response_bytes=1_000_000) as client:
        batch = await client.post("/v1.1/$batch", json=batch_of_gets(url, url, "Things(0)"))
        alone = await get(client, f"/v1.1/{url}")
    assert batch.status_code == 200, batch.text
    first, second, third = batch.json()["responses"]
    assert first["status"] == 200 and len(first["body"]["description"]) == 600_000
    assert second["status"] == 400
    assert "the GET requests of this $batch have left" in second["body"]["message"]
    assert third["status"] == 404  # a small answer still fits in what is left
    assert len(alone["description"]) == 600_000
    assert len(batch.content) < 1_000_000


@asynccontextmanager
async def served(db_url: str, **settings: Any) -> AsyncIterator[str]:
    """The API served by uvicorn with the options `stadspuls api` gives it; its base URL."""
    api = ApiSettings(database_url=db_url, mqtt_enabled=False, api_port=free_port(),
                      **settings)
    server = uvicorn.Server(uvicorn.Config(create_app(api), **api.server_options(),
                                           log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "uvicorn stopped"
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{api.api_port}"
    finally:
        server.should_exit = True
        await task


async def statuses_from_rotating_addresses(base: str, n: int) -> list[int]:
    async with httpx.AsyncClient(base_url=base) as client:
        return [(await client.get("/v1.1", headers={"X-Forwarded-For": f"203.0.113.{i}"})
                 ).status_code for i in range(n)]


async def test_a_forwarded_address_does_not_escape_the_anonymous_limit(db_url: str) -> None:
    limit = {"anonymous_rate_limit_burst": 3, "anonymous_rate_limit_per_s": 0.01}
    async with served(db_url, **limit) as base:
        spoofed = await statuses_from_rotating_addresses(base, 5)
    async with served(db_url, forwarded_allow_ips="127.0.0.1", **limit) as base:
        behind_proxy = await statuses_from_rotating_addresses(base, 5)
    assert spoofed == [200, 200, 200, 429, 429]
    assert behind_proxy == [200] * 5


class Proxy:
    """A TCP relay to the database that can be cut, as a database host going away."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65_536):
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.transport.abort()
        await self.server.wait_closed()


async def test_a_database_gone_away_is_a_503_with_retry_after_and_one_log_line(
    fleet_db: Any, db_url: str, stack: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    proxy = Proxy(stack.settings.db_port)
    relayed = db_url.replace(f":{stack.settings.db_port}/", f":{await proxy.start()}/")
    key = await make_key(db_url)
    async with api_client(relayed, database_connect_timeout_s=2) as client:
        await get(client, "/v1.1/Things")
        await proxy.cut()
        with caplog.at_level(logging.WARNING, logger="api.app"):
            broken = await client.get("/v1.1/Things")          # its connection was cut
            refused = await client.get("/v1.1/Datastreams")    # no connection to be had
            keyed = await client.get("/v1.1/Things", headers=bearer(key))  # key unchecked
    for response in (broken, refused, keyed):
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "5"
        assert response.json()["code"] == "unavailable"
    lines = [r for r in caplog.records if getattr(r, "action", "") == "database_unreachable"]
    assert len(lines) == 3 and all(r.exc_info is None for r in lines)


BEYOND_INT64 = "99999999999999999999"


async def test_a_request_that_waits_past_the_timeout_for_a_connection_is_a_503(
    fleet_db: Any, db_url: str,
) -> None:
    app = create_app(ApiSettings(database_url=db_url, mqtt_enabled=False,
                                 database_acquire_timeout_s=0.5))
    async with app.router.lifespan_context(app), contextlib.AsyncExitStack() as held:
        pool = app.state.store.pool
        for _ in range(pool.get_max_size()):  # as ten slow queries would
            await held.enter_async_context(pool.acquire())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://city") as client:
            started = asyncio.get_running_loop().time()
            response = await client.get("/v1.1/Things")
            waited = asyncio.get_running_loop().time() - started
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"
    assert 0.5 <= waited < 5


@pytest.mark.parametrize("url", [
    f"Things?$skip={BEYOND_INT64}",
    f"Things(1)/Datastreams?$top=1&$skip={BEYOND_INT64}",
    f"Things?$expand=Datastreams($skip={BEYOND_INT64})",
])
async def test_a_value_the_database_refuses_is_answered_in_the_apis_words(
    client: httpx.AsyncClient, url: str,
) -> None:
    alone = await get(client, f"/v1.1/{url}", 400)
    batch = await client.post("/v1.1/$batch", json={
        "requests": [{"id": "r", "method": "get", "url": url}]})
    assert batch.status_code == 200, batch.text
    [part] = batch.json()["responses"]
    assert part["status"] == 400
    for body in (alone, part["body"]):
        assert body["message"].startswith("the database cannot use a value of the request")
        for internal in ("$1", "$2", "$3", "int64", "argument", "invalid input"):
            assert internal not in body["message"]


async def test_any_other_database_error_is_a_json_500_without_the_databases_text(
    fleet_db: Any, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture,
) -> None:
    await fleet_db.execute("REVOKE SELECT ON things FROM stadspuls_api")
    with caplog.at_level(logging.ERROR, logger="api.app"):
        response = await client.get("/v1.1/Things")
    assert response.status_code == 500
    assert response.json() == {"code": "error",
                               "message": "the request failed in the database; it is logged"}
    [line] = [r for r in caplog.records if getattr(r, "action", "") == "database_failed"]
    assert "permission denied for table things" in line.getMessage()
