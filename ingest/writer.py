"""Writing a batch: observations and rejects in one transaction, and the Datastreams' times
and areas widened to cover it.

Two ways of moving a batch into the hypertable are kept, because which is faster depends on
batch size and the server: `unnest`, one INSERT over column arrays; and `copy`, COPY into a
session-local staging table then INSERT … SELECT. Both skip readings stored before, so a
redelivered message lands once; asked to, both answer the rows newly stored, which are
what notifications announce. docs/ingest.md gives the measurements.

Usage is metered in the batch's transaction (core/usage.py): the readings newly stored per
agency of their Datastream, the rejected ones per agency of their device or gateway, and
the notifications published since the last batch; a batch and its usage commit together.
The readings are counted here, from the batch, when all of them were new (the usual case);
a batch with readings stored before asks the database which rows this transaction wrote.
"""

from __future__ import annotations

import bisect
import json
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

from core import usage
from core.queries import query
from ingest.mapping import Mapped, Reject, sender_device, sender_gateway
from ingest.rejects import PAYLOAD_BYTES, OverBudget, Refusals, RejectBudget, merged

# Errors that mean a row of the batch is unacceptable to the database, not that the
# database is away.
REFUSED_ROW_ERRORS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)

STAGING_COLUMNS = [
    "phenomenon_time", "datastream_id", "feature_id", "result_number", "result_integer",
    "result_string", "result_boolean",
]


@dataclass
class Stored:
    """What a write stored: how many readings were new and, when the writer returns them,
    those rows (id, datastream_id, feature_id, phenomenon_time, result_number,
    result_integer, result_string, result_boolean)."""

    count: int
    rows: list[Any] = field(default_factory=list)


class BatchWriter:
    """Writes batches over one asyncpg connection.

    Args:
        conn: the connection, used by this writer alone.
        method: "copy" or "unnest".
        returning: answer the rows newly stored (for notifications), not only their number.
        published: notifications published, metered with the next batch.
        agency_of: the agency code of each Datastream (ingest's registry view); a
            Datastream it does not name is metered to the platform, `city`.
    """

    def __init__(self, conn: Any, method: str = "copy", returning: bool = False,
                 published: usage.OwnerTally | None = None,
                 agency_of: Callable[[], Mapping[int, str]] = dict) -> None:
        if method not in ("unnest", "copy"):
            raise ValueError(f"unknown write method {method!r}")
        self.conn = conn
        self.method = method
        self.returning = returning
        self.published = published or usage.OwnerTally()
        self.agency_of = agency_of
        self._staging_ready = False

    async def write(self, mapped: Mapped) -> Stored:
        """Commit the batch's rows and rejects; what was newly stored."""
        if self.method == "copy" and not self._staging_ready:
            # Outside the batch's transaction: a rolled-back batch must not take it along.
            await self.conn.execute(query("ingest", "create_staging"))
            self._staging_ready = True
        stored = Stored(0)
        meter = usage.UsageMeter()
        published = self.published.take()
        try:
            async with self.conn.transaction():
                if mapped.times:
                    stored = await self._observations(mapped)
                    if self.method == "copy":
                        await self.conn.execute(
                            query("ingest", "extend_datastreams_from_staging"))
                    else:
                        await self._extend(mapped.times, mapped.datastreams, mapped.features)
                await self._rejects(mapped.rejects, meter)
                await self._over_budget(list(mapped.over_budget.values()), meter)
                await self._meter(meter, published, await self._new_per_stream(mapped, stored))
        except BaseException:
            self.published.restore(published)
            raise
        return stored

    async def flush_usage(self) -> None:
        """Write the notifications tallied since the last batch (at shutdown)."""
        published = self.published.take()
        try:
            async with self.conn.transaction():
                await self._meter(usage.UsageMeter(), published, Counter())
        except BaseException:
            self.published.restore(published)
            raise

    async def write_row_by_row(self, mapped: Mapped, budget: RejectBudget | None = None
                               ) -> tuple[Stored, list[Reject]]:
        """Commit the batch one row per savepoint. The rows the database refuses are
        rejected like refused records: one reject per message counting them, within its
        sender's `budget` (past it, counted into the sender's over_budget row).

        Returns:
            What was newly stored, and the rejects of the refused rows, kept or counted.
        """
        stored = Stored(0)
        refused: list[tuple[int, Exception]] = []
        insert = query("ingest", "insert_observation")
        meter = usage.UsageMeter()
        new_rows: list[Any] = []
        published = self.published.take()
        try:
            async with self.conn.transaction():
                await self._rows_one_by_one(mapped, insert, refused, new_rows)
                stored.count = len(new_rows)
                if self.returning:
                    stored.rows = new_rows
                rejects = _refused_rows(mapped, refused)
                # A copy: a retried write must not count these into `mapped` twice.
                extra, budget = Mapped(), budget or RejectBudget()
                for reject in rejects:
                    extra.reject(reject, budget)
                await self._rejects([*mapped.rejects, *extra.rejects], meter)
                await self._over_budget(merged(mapped.over_budget, extra.over_budget), meter)
                await self._meter(meter, published, Counter(row[1] for row in new_rows))
        except BaseException:
            self.published.restore(published)
            raise
        return stored, rejects

    async def _rows_one_by_one(self, mapped: Mapped, insert: str,
                               refused: list[tuple[int, Exception]],
                               new_rows: list[Any]) -> None:
        kept: list[tuple[Any, ...]] = []
        rows = zip(mapped.times, mapped.datastreams, mapped.features, mapped.numbers,
                   mapped.integers, mapped.strings, mapped.booleans, strict=True)
        for index, row in enumerate(rows):
            try:
                async with self.conn.transaction():
                    new = await self.conn.fetchrow(insert, *row)
            except REFUSED_ROW_ERRORS as exc:
                refused.append((index, exc))
                continue
            kept.append(row)
            if new is not None:
                new_rows.append(new)
        if kept:
            await self._extend([r[0] for r in kept], [r[1] for r in kept],
                               [r[2] for r in kept])

    async def _meter(self, meter: usage.UsageMeter, published: usage.Owned,
                     new_per_stream: Counter[int]) -> None:
        """Usage of the batch, in its transaction: the readings newly stored and the
        notifications published, both per Datastream, under the Datastreams' agencies."""
        day = usage.today()
        agency_of = self.agency_of()
        for datastream, n in new_per_stream.items():
            meter.add(agency_of.get(datastream, usage.CITY), usage.READINGS_INGESTED, n, day)
        for (kind, id), n in published:
            agency = agency_of.get(id, usage.CITY) if kind == "Datastreams" else usage.CITY
            meter.add(agency, usage.MQTT_MESSAGES, n, day)
        await meter.flush(self.conn)

    async def _new_per_stream(self, m: Mapped, stored: Stored) -> Counter[int]:
        """How many readings of each Datastream the batch newly stored."""
        if stored.rows:
            return Counter(row[1] for row in stored.rows)
        if stored.count == len(m.times):  # all new: no need to ask
            return Counter(m.datastreams)
        if stored.count == 0:
            return Counter()
        rows = await self.conn.fetch(query("usage", "stored_in_transaction"), m.datastreams,
                                     m.times)
        return Counter({row["datastream_id"]: row["n"] for row in rows})

    async def _observations(self, m: Mapped) -> Stored:
        if self.method == "unnest":
            if m.only_numbers and not self.returning:
                status = await self.conn.execute(query("ingest", "insert_numbers"), m.times,
                                                 m.datastreams, m.features, m.numbers)
                return Stored(_row_count(status))
            columns = (m.times, m.datastreams, m.features, m.numbers, m.integers, m.strings,
                       m.booleans)
            if self.returning:
                rows = await self.conn.fetch(query("ingest", "insert_observations_returning"),
                                             *columns)
                return Stored(len(rows), rows)
            status = await self.conn.execute(query("ingest", "insert_observations"), *columns)
            return Stored(_row_count(status))
        await self.conn.copy_records_to_table(
            "observations_staging", columns=STAGING_COLUMNS,
            records=zip(m.times, m.datastreams, m.features, m.numbers, m.integers, m.strings,
                        m.booleans, strict=True),
        )
        if self.returning:
            rows = await self.conn.fetch(query("ingest", "move_staging_returning"))
            return Stored(len(rows), rows)
        return Stored(_row_count(await self.conn.execute(query("ingest", "move_staging"))))

    async def _extend(self, times: list[float], datastreams: list[int],
                      features: list[int | None]) -> None:
        """Widen the phenomenonTime and observedArea of the Datastreams written to, with the
        shared queries of core/sql/datastreams.sql, given each one's first and last time
        (the COPY path does the same from its staging table, without the round trip)."""
        spans: dict[int, list[float]] = {}
        places: set[tuple[int, int | None]] = set()
        for at, datastream, feature in zip(times, datastreams, features, strict=True):
            span = spans.get(datastream)
            if span is None:
                spans[datastream] = [at, at]
                places.add((datastream, feature))
                continue
            if at < span[0]:
                span[0] = at
            elif at > span[1]:
                span[1] = at
            if feature is not None:
                places.add((datastream, feature))
        ids = [d for d, span in spans.items() for _ in span]
        moments = [datetime.fromtimestamp(at, UTC) for span in spans.values() for at in span]
        nothing = [None] * len(ids)
        await self.conn.execute(query("datastreams", "extend_datastream_times"), ids, moments,
                                nothing, nothing)
        located = [(d, f) for d, f in places if f is not None]
        if located:
            await self.conn.execute(query("datastreams", "extend_datastream_areas"),
                                    [d for d, _ in located], [f for _, f in located])

    async def _rejects(self, r: list[Reject], meter: usage.UsageMeter) -> None:
        if not r:
            return
        devices = [x.device_id or sender_device(x.topic) for x in r]
        gateways = [sender_gateway(x.topic) for x in r]
        await self._meter_rejects(meter, devices, gateways, [x.records for x in r])
        await self.conn.execute(
            query("ingest", "insert_rejects"),
            [datetime.fromtimestamp(x.received, UTC) for x in r], [x.topic for x in r],
            [x.payload for x in r], [x.code for x in r], [x.reason for x in r],
            [x.device_id for x in r], [x.record_index for x in r], [x.records for x in r],
            [x.details.decode() if x.details is not None else None for x in r],
            [x.payload_bytes for x in r],
        )

    async def _over_budget(self, summaries: list[OverBudget],
                           meter: usage.UsageMeter) -> None:
        """Count the rejects past their senders' budget into one row per sender and window
        (each batch adds to it), and meter them like any other."""
        if not summaries:
            return
        gateways = [sender_gateway(x.topic) for x in summaries]
        await self._meter_rejects(meter, [x.device_id for x in summaries], gateways,
                                  [x.records for x in summaries])
        await self.conn.execute(
            query("ingest", "upsert_over_budget"), [x.window for x in summaries],
            [x.topic for x in summaries], [x.device_id for x in summaries],
            [x.records for x in summaries], [x.details() for x in summaries],
            [x.reason for x in summaries],
        )

    async def _meter_rejects(self, meter: usage.UsageMeter, devices: list[str | None],
                             gateways: list[str | None], records: list[int]) -> None:
        day = usage.today()
        for row in await self.conn.fetch(query("ingest", "reject_agencies"), devices,
                                         gateways, records):
            meter.add(row["agency"], usage.READINGS_REJECTED, row["n"], day)


def _row_count(status: str) -> int:
    return int(status.rsplit(" ", 1)[1])


def _refused_rows(mapped: Mapped, refused: list[tuple[int, Exception]]) -> list[Reject]:
    """One reject per message for the rows of it the database refused (rows of no known
    message, one for them all); its payload is those readings as JSON, cut."""
    starts = [origin.first_row for origin in mapped.origins]
    groups: dict[int, tuple[Refusals, list[bytes]]] = {}
    for index, exc in refused:
        message = bisect.bisect_right(starts, index) - 1
        row = (mapped.times[index], mapped.datastreams[index], mapped.numbers[index],
               mapped.integers[index], mapped.strings[index], mapped.booleans[index])
        reading = _reading(row)
        refusals, readings = groups.setdefault(message, (Refusals(), []))
        device = mapped.origins[message].device_id if message >= 0 else None
        refusals.add(None, "database", f"database refused the reading: {exc}", device,
                     reading)
        readings.append(reading)
    now = time.time()
    rejects = []
    for message, (refusals, readings) in groups.items():
        topic = mapped.origins[message].topic if message >= 0 else ""
        payload = b"[" + b",".join(readings) + b"]"
        rejects.append(refusals.reject(topic, payload, now, None, PAYLOAD_BYTES))
    return rejects


def _reading(row: tuple[Any, ...]) -> bytes:
    at, datastream, *results = row
    value = next((v for v in results if v is not None), None)
    return json.dumps({"datastream": datastream, "t": at, "value": value}).encode()
