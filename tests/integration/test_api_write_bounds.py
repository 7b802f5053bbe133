"""Large HTTP writes are bounded and never stall ingest: CreateObservations and $batch over
their limits answer 413, the largest allowed request succeeds, and ingest's batches keep
committing while a big write creates a new chunk of the hypertable."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.database import connect
from ingest.mapping import Mapped
from ingest.writer import BatchWriter
from tests.integration.writes import Api, batch_request, new_datastream, running_api

PAST = datetime(2025, 3, 3, tzinfo=UTC)  # a month no chunk covers yet
LIMIT = 10_000  # max_observations_per_request by default
CHUNKS = 100  # max_chunks_per_request by default
# The figures of docs/api.md come from larger writes: STADSPULS_BIG_WRITE_ROWS=20000.
ROWS = int(os.environ.get("STADSPULS_BIG_WRITE_ROWS", str(LIMIT)))


@pytest.fixture
async def api(fleet_db: Any, db_url: str) -> AsyncIterator[Api]:
    async with running_api(db_url) as running:
        yield running


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
    rival = await connect(db_url)
    try:
        # A long transaction that changed a Datastream: a new chunk must wait for it, and
        # every writer after the one that waits would wait too.
        async with rival.transaction():
            await rival.execute("UPDATE datastreams SET name = name WHERE id = $1", stream)
            response = await api.client.post("/v1.1/CreateObservations",
                                             json=data_array(stream, 100))
    finally:
        await rival.close()
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"
    assert response.json()["code"] == "busy"
    assert await fleet_db.fetchval("SELECT count(*) FROM observations") == 0
