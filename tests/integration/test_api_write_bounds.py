"""Large HTTP writes are bounded and never stall ingest: CreateObservations, $batch and deep
inserts (Observations inline in another entity) over their limits answer 413, the largest
allowed request succeeds, and ingest's batches keep committing while a big write creates a
new chunk of the hypertable."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from api.bounds import make_chunks
from core.database import connect
from core.queries import query
from ingest.mapping import Mapped
from ingest.writer import BatchWriter
from tests.integration.writes import (
    POINT,
    Api,
    batch_request,
    datastream,
    new_datastream,
    observed_property,
    sensor,
    thing,
)

PAST = datetime(2025, 3, 3, tzinfo=UTC)  # a month no chunk covers yet
LIMIT = 10_000  # max_observations_per_request by default
CHUNKS = 100  # max_chunks_per_request by default
# The figures of docs/api.md come from larger writes: STADSPULS_BIG_WRITE_ROWS=20000.
ROWS = int(os.environ.get("STADSPULS_BIG_WRITE_ROWS", str(LIMIT)))


@dataclass
class IngestLoop:
    """Ingest's writer committing small batches of current readings, as fast as it can,
    on a connection of its own; when each batch committed."""

    db_url: str
    datastreams: list[int]
    late: datetime | None = None  # a late reading in each batch, at this time onwards
    commits: list[float] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        conn = await connect(self.db_url)
        try:
            writer = BatchWriter(conn, "unnest")
            k = 0
            while not stop.is_set():
                k += 1
                mapped = Mapped()
                now = time.time()
                for datastream in self.datastreams:
                    mapped.add(now, datastream, number=float(k))
                if self.late is not None:
                    mapped.add((self.late + timedelta(seconds=k)).timestamp(),
                               self.datastreams[0], number=float(k))
                await writer.write(mapped)
                self.commits.append(time.monotonic())
                await asyncio.sleep(0.02)
        finally:
            await conn.close()

    def longest_gap(self, start: float, end: float) -> float:
        """The longest time without a commit between `start` and `end`."""
        marks = [start, *(t for t in self.commits if start < t < end), end]
        return max(b - a for a, b in itertools.pairwise(marks))

    def during(self, start: float, end: float) -> int:
        return sum(1 for t in self.commits if start < t < end)


def data_array(stream: int, rows: int, start: datetime = PAST) -> list[dict[str, Any]]:
    return [{"Datastream": {"@iot.id": stream}, "components": ["phenomenonTime", "result"],
             "dataArray": [[(start + timedelta(seconds=i)).isoformat(), float(i)]
                           for i in range(rows)]}]


async def posted_while_held(api: Api, db_url: str, stream: int,
                            body: Any) -> httpx.Response:
    """A CreateObservations of `body` while another transaction holds Datastream
    `stream`'s row (it changed it and has not committed)."""
    rival = await connect(db_url)
    try:
        async with rival.transaction():
            await rival.execute("UPDATE datastreams SET name = name WHERE id = $1", stream)
            return await api.client.post("/v1.1/CreateObservations", json=body)
    finally:
        await rival.close()


def observations(count: int, step: timedelta = timedelta(seconds=1),
                 **links: Any) -> list[dict[str, Any]]:
    """`count` Observations inline, from PAST on, `step` apart."""
    return [{"phenomenonTime": (PAST + i * step).isoformat(), "result": float(i), **links}
            for i in range(count)]


def feature(**links: Any) -> dict[str, Any]:
    return {"name": "Odenplan", "description": "Where the mast stands",
            "encodingType": "application/geo+json", "feature": POINT, **links}


def new_thing_with(inline: list[dict[str, Any]]) -> dict[str, Any]:
    """A new Thing with a new Datastream holding the Observations `inline`."""
    return thing(Datastreams=[datastream(Sensor=sensor(), ObservedProperty=observed_property(),
                                         Observations=inline)])


async def _ingest_streams(db: Any) -> list[int]:
    return [r["id"] for r in await db.fetch("SELECT id FROM datastreams ORDER BY id LIMIT 20")]


async def measured(api: Api, db: Any, db_url: str, late: datetime | None,
                   url: str, body: Any) -> tuple[Any, float, float, int]:
    """The answer to a big write sent while ingest runs; how long it took, ingest's longest
    stall in that time and how many batches ingest committed in its second half."""
    loop = IngestLoop(db_url, await _ingest_streams(db), late)
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    await asyncio.sleep(0.5)
    start = time.monotonic()
    response = await api.client.post(url, json=body)
    end = time.monotonic()
    await asyncio.sleep(0.3)
    stop.set()
    await task
    # Batches committed in the second half of the write: a write that stalls ingest lets
    # through at most the one it met at its start.
    return (response, end - start, loop.longest_gap(start, end),
            loop.during(start + (end - start) / 2, end))


async def test_create_observations_past_the_limit_is_a_413_that_says_to_split(
    api: Api, fleet_db: Any
) -> None:
    stream = (await new_datastream(api))["@iot.id"]
    response = await api.client.post("/v1.1/CreateObservations",
                                     json=data_array(stream, LIMIT + 1))
    assert response.status_code == 413
    assert response.json() == {
        "code": "payload_too_large",
        "message": f"CreateObservations holds {LIMIT + 1} Observations; at most {LIMIT} are "
                   f"taken in one request: split it into requests of at most {LIMIT}"}
    assert await fleet_db.fetchval("SELECT count(*) FROM observations") == 0


async def test_the_largest_create_observations_at_one_time_stores_one_and_marks_the_rest(
    api: Api, fleet_db: Any
) -> None:
    stream = (await new_datastream(api))["@iot.id"]
    body = [{"Datastream": {"@iot.id": stream}, "components": ["phenomenonTime", "result"],
             "dataArray": [[PAST.isoformat(), float(i)] for i in range(LIMIT)]}]
    links = await api.post("/v1.1/CreateObservations", body)
    assert links[0].startswith("http://city/v1.1/Observations(")
    assert links[1:] == ["error"] * (LIMIT - 1)
    assert await fleet_db.fetchval("SELECT count(*) FROM observations") == 1


async def test_the_largest_create_observations_over_the_most_weeks_stores_every_row(
    api: Api, fleet_db: Any
) -> None:
    # Each week a chunk: a transaction that filled 1,430 of them held 10,000 locks and
    # more, and the server ran out of shared memory.
    stream = (await new_datastream(api))["@iot.id"]
    start = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(weeks=2770)  # a chunk's start, 2023
    step = timedelta(weeks=CHUNKS) / LIMIT
    body = data_array(stream, 0)
    body[0]["dataArray"] = [[(start + i * step).isoformat(), float(i)] for i in range(LIMIT)]
    links = await api.post("/v1.1/CreateObservations", body)
    assert "error" not in links
    assert await fleet_db.fetchval("SELECT count(*) FROM observations") == LIMIT
    body[0]["dataArray"][-1][0] = (start + timedelta(weeks=CHUNKS)).isoformat()  # one more
    response = await api.client.post("/v1.1/CreateObservations", json=body)
    assert response.status_code == 413
    assert response.json()["message"] == (
        f"the Observations fall in {CHUNKS + 1} chunks of storage (7 days each); at most "
        f"{CHUNKS} are taken in one request: split it by phenomenonTime")


async def test_a_row_the_database_refuses_is_an_error_alone_in_a_large_request(
    api: Api, fleet_db: Any
) -> None:
    stream = (await new_datastream(api))["@iot.id"]
    body = data_array(stream, 1200)
    body[0]["dataArray"][700][1] = "nul \u0000 inside"  # refused by the database itself
    links = await api.post("/v1.1/CreateObservations", body)
    assert [i for i, link in enumerate(links) if link == "error"] == [700]
    assert await fleet_db.fetchval("SELECT count(*) FROM observations") == 1199


async def test_a_batch_past_the_limit_of_observations_is_a_413(api: Api, fleet_db: Any) -> None:
    stream = (await new_datastream(api))["@iot.id"]
    inline = [{"phenomenonTime": (PAST + timedelta(seconds=i)).isoformat(), "result": 1.0}
              for i in range(LIMIT)]
    response = await api.client.post("/v1.1/$batch", json={"requests": [
        batch_request("1", "post", f"Datastreams({stream})/Observations",
                      {"phenomenonTime": PAST.isoformat(), "result": 0.5}),
        batch_request("2", "patch", f"Datastreams({stream})", {"Observations": inline})]})
    assert response.status_code == 413
    assert f"at most {LIMIT}" in response.json()["message"]
    response = await api.client.post("/v1.1/$batch", json={"requests": [
        batch_request(str(i), "get", "Things") for i in range(1001)]})
    assert response.status_code == 413
    assert await fleet_db.fetchval("SELECT count(*) FROM observations") == 0


@pytest.mark.parametrize("late", [False, True], ids=["current", "with_late_reading"])
async def test_ingest_keeps_committing_while_a_big_create_observations_makes_a_new_chunk(
    api: Api, fleet_db: Any, db_url: str, late: bool
) -> None:
    stream = (await new_datastream(api))["@iot.id"]
    response, took, gap, batches = await measured(
        api, fleet_db, db_url, PAST + timedelta(days=1) if late else None,
        "/v1.1/CreateObservations", data_array(stream, ROWS))
    print(f"\nCreateObservations {ROWS} rows: {response.status_code} in {took:.2f} s; "
          f"ingest committed {batches} batches in its second half, longest stall {gap:.2f} s")
    assert response.status_code == 201, response.text[:300]
    assert batches >= 1


async def test_ingest_keeps_committing_while_a_big_batch_group_makes_a_new_chunk(
    api: Api, fleet_db: Any, db_url: str
) -> None:
    stream = (await new_datastream(api))["@iot.id"]
    parts = [batch_request(str(i), "post", f"Datastreams({stream})/Observations",
                           {"phenomenonTime": (PAST + timedelta(seconds=i)).isoformat(),
                            "result": float(i)}, group="g")
             for i in range(1000)]
    response, took, gap, batches = await measured(
        api, fleet_db, db_url, None, "/v1.1/$batch", {"requests": parts})
    print(f"\n$batch of 1000 in one group: {response.status_code} in {took:.2f} s; "
          f"ingest committed {batches} batches in its second half, longest stall {gap:.2f} s")
    assert [r["status"] for r in response.json()["responses"]] == [201] * 1000
    assert batches >= 1


async def test_a_big_write_that_cannot_make_its_chunk_soon_is_a_503_to_retry(
    api: Api, fleet_db: Any, db_url: str
) -> None:
    stream = (await new_datastream(api))["@iot.id"]
    # A long transaction that changed a Datastream: a new chunk must wait for it, and
    # every writer after the one that waits would wait too.
    response = await posted_while_held(api, db_url, stream, data_array(stream, 100))
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"
    assert response.json()["code"] == "busy"
    assert await fleet_db.fetchval("SELECT count(*) FROM observations") == 0


async def test_a_deep_insert_past_the_limit_of_observations_is_a_413(
    api: Api, fleet_db: Any
) -> None:
    response = await api.client.post("/v1.1/Things",
                                     json=new_thing_with(observations(LIMIT + 1)))
    assert response.status_code == 413
    assert response.json()["message"] == (
        f"the request holds {LIMIT + 1} Observations; at most {LIMIT} are taken in one "
        f"request: split it into requests of at most {LIMIT}")
    assert await fleet_db.fetchval("SELECT count(*) FROM observations") == 0


async def test_a_deep_insert_into_a_new_datastream_over_too_many_chunks_is_a_413(
    api: Api, fleet_db: Any
) -> None:
    inline = observations(CHUNKS + 1, step=timedelta(weeks=1))
    response = await api.client.post("/v1.1/Things", json=new_thing_with(inline))
    assert response.status_code == 413
    assert response.json()["message"].startswith(f"the Observations fall in {CHUNKS + 1} chunks")
    response = await api.client.post("/v1.1/$batch", json={"requests": [
        batch_request("1", "post", "Things", new_thing_with(inline))]})
    assert response.status_code == 413
    assert await fleet_db.fetchval("SELECT count(*) FROM observations") == 0


async def test_a_batch_of_more_requests_than_allowed_says_so_not_observations(api: Api) -> None:
    response = await api.client.post("/v1.1/$batch", json={"requests": [
        batch_request(str(i), "get", "Things") for i in range(1001)]})
    assert response.status_code == 413
    assert response.json() == {"code": "payload_too_large", "message":
                               "a batch holds at most 1000 requests; this one holds 1001: "
                               "split it"}


async def test_ingest_keeps_committing_while_a_big_deep_insert_makes_a_new_chunk(
    api: Api, fleet_db: Any, db_url: str
) -> None:
    stream = (await new_datastream(api))["@iot.id"]
    body = feature(Observations=observations(ROWS, Datastream={"@iot.id": stream}))
    response, took, gap, batches = await measured(
        api, fleet_db, db_url, None, "/v1.1/FeaturesOfInterest", body)
    print(f"\nFeatureOfInterest with {ROWS} Observations: {response.status_code} in "
          f"{took:.2f} s; ingest committed {batches} batches in its second half, longest "
          f"stall {gap:.2f} s")
    assert response.status_code == 201, response.text[:300]
    assert batches >= 1
    assert await fleet_db.fetchval(
        "SELECT count(*) FROM observations WHERE datastream_id = $1", stream) == ROWS


async def test_a_write_that_waits_too_long_for_its_datastream_is_a_503_not_a_500(
    api: Api, fleet_db: Any, db_url: str
) -> None:
    stream = (await new_datastream(api))["@iot.id"]
    await api.post("/v1.1/CreateObservations", data_array(stream, 1))  # the chunk exists
    # The rows go in, the Datastream's summary waits for its row (writer.finish).
    response = await posted_while_held(api, db_url, stream,
                                       data_array(stream, 100, PAST + timedelta(minutes=5)))
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"
    assert response.json()["code"] == "busy"
    assert await fleet_db.fetchval("SELECT count(*) FROM observations") == 1


async def test_chunks_are_made_past_a_refused_probe_and_the_rounds_end(
    fleet_db: Any, db_url: str
) -> None:
    stream = await fleet_db.fetchval("SELECT min(id) FROM datastreams")
    later = PAST + timedelta(weeks=10)
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=1)
    try:
        async with asyncio.timeout(10):
            # No Datastream 0: its probe is refused, and so is each time after it.
            await make_chunks(pool, [(0, PAST), (0, PAST + timedelta(hours=1)),
                                     (stream, later)], 2.0, CHUNKS)
    finally:
        await pool.close()
    without = await fleet_db.fetch(query("api_write", "times_without_chunk"),
                                   [PAST, later])
    assert [r["t"] for r in without] == [PAST]
