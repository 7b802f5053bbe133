"""Writing a batch: observations and rejects in one transaction.

Two ways of moving a batch into the hypertable are kept, because which is faster depends on
batch size and the server: `unnest`, one INSERT over column arrays; and `copy`, COPY into a
session-local staging table then INSERT … SELECT. Both skip readings stored before, so a
redelivered message lands once. docs/ingest.md gives the measurements.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg

from core.queries import query
from ingest.mapping import Mapped, Reject

# Errors that mean a row of the batch is unacceptable to the database, not that the
# database is away.
REFUSED_ROW_ERRORS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)

STAGING_COLUMNS = [
    "phenomenon_time", "datastream_id", "result_number", "result_integer", "result_string",
    "result_boolean",
]


class BatchWriter:
    """Writes batches over one asyncpg connection."""

    def __init__(self, conn: Any, method: str = "copy") -> None:
        if method not in ("unnest", "copy"):
            raise ValueError(f"unknown write method {method!r}")
        self.conn = conn
        self.method = method
        self._staging_ready = False

    async def write(self, mapped: Mapped) -> int:
        """Commit the batch's rows and rejects; the number of rows newly stored."""
        if self.method == "copy" and not self._staging_ready:
            # Outside the batch's transaction: a rolled-back batch must not take it along.
            await self.conn.execute(query("ingest", "create_staging"))
            self._staging_ready = True
        async with self.conn.transaction():
            stored = await self._observations(mapped) if mapped.times else 0
            if mapped.rejects:
                await self._rejects(mapped.rejects)
        return stored

    async def write_row_by_row(self, mapped: Mapped) -> tuple[int, list[Reject]]:
        """Commit the batch one row per savepoint; a row the database refuses becomes a
        reject with the database's reason. The rows newly stored, and those rejects."""
        stored = 0
        refused: list[Reject] = []
        insert = query("ingest", "insert_observation")
        async with self.conn.transaction():
            for row in zip(mapped.times, mapped.datastreams, mapped.numbers, mapped.integers,
                           mapped.strings, mapped.booleans, strict=True):
                try:
                    async with self.conn.transaction():
                        status = await self.conn.execute(insert, *row)
                except REFUSED_ROW_ERRORS as exc:
                    refused.append(_refused_row(row, exc))
                    continue
                stored += int(status.rsplit(" ", 1)[1])
            if mapped.rejects or refused:
                await self._rejects([*mapped.rejects, *refused])
        return stored, refused

    async def _observations(self, m: Mapped) -> int:
        if self.method == "unnest" and m.only_numbers:
            status = await self.conn.execute(
                query("ingest", "insert_numbers"), m.times, m.datastreams, m.numbers,
            )
        elif self.method == "unnest":
            status = await self.conn.execute(
                query("ingest", "insert_observations"), m.times, m.datastreams, m.numbers,
                m.integers, m.strings, m.booleans,
            )
        else:
            await self.conn.copy_records_to_table(
                "observations_staging", columns=STAGING_COLUMNS,
                records=zip(m.times, m.datastreams, m.numbers, m.integers, m.strings,
                            m.booleans, strict=True),
            )
            status = await self.conn.execute(query("ingest", "move_staging"))
        return int(status.rsplit(" ", 1)[1])

    async def _rejects(self, r: list[Reject]) -> None:
        await self.conn.execute(
            query("ingest", "insert_rejects"),
            [datetime.fromtimestamp(x.received, UTC) for x in r], [x.topic for x in r],
            [x.payload for x in r], [x.code for x in r], [x.reason for x in r],
            [x.device_id for x in r], [x.record_index for x in r],
        )


def _refused_row(row: tuple[Any, ...], exc: Exception) -> Reject:
    at, datastream, *results = row
    value = next((v for v in results if v is not None), None)
    payload = json.dumps({"datastream": datastream, "t": at, "value": value})
    return Reject("", payload.encode(), "database", f"database refused the reading: {exc}",
                  time.time())
