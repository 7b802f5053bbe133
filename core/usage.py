"""Usage metered per agency and day, added up in memory and written in one statement.

Ingest, the API and the notifiers each hold a `UsageMeter`, call `add` as work is done and
`flush` into `usage_daily` now and then (ingest in the transaction of each batch, so a
batch and its usage commit together). Agencies are named by code; `public` stands for
requests without an API key. docs/costs.md says what every metric counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from core.queries import query

# The metrics, by the name stored in usage_daily.metric.
READINGS_INGESTED = "readings_ingested"
READINGS_REJECTED = "readings_rejected"
API_REQUESTS = "api_requests"
API_BYTES = "api_bytes"
MQTT_MESSAGES = "mqtt_messages"
METRICS = (READINGS_INGESTED, READINGS_REJECTED, API_REQUESTS, API_BYTES, MQTT_MESSAGES)

# Computed when asked (`storage`), never stored in usage_daily.
STORAGE_ROWS = "storage_rows"
STORAGE_BYTES = "storage_bytes"
REPORTED = (*METRICS, STORAGE_ROWS, STORAGE_BYTES)

PUBLIC = "public"
# The platform operator: usage no other agency owns (unknown senders, entities of none).
CITY = "city"


def today() -> date:
    return datetime.now(UTC).date()


class UsageMeter:
    """Amounts per (day, agency code, metric) not yet written to the database."""

    def __init__(self) -> None:
        self._amounts: Counter[tuple[date, str, str]] = Counter()

    def add(self, agency: str, metric: str, amount: int = 1, day: date | None = None) -> None:
        if amount:
            self._amounts[(day or today(), agency, metric)] += amount

    def pending(self) -> dict[tuple[date, str, str], int]:
        return dict(self._amounts)

    def take(self) -> list[tuple[date, str, str, int]]:
        """Everything added since the last take, leaving the meter empty."""
        rows = [(d, a, m, n) for (d, a, m), n in self._amounts.items()]
        self._amounts.clear()
        return rows

    def restore(self, rows: list[tuple[date, str, str, int]]) -> None:
        """Put back what a failed flush took, so it is written with the next one."""
        for d, a, m, n in rows:
            self._amounts[(d, a, m)] += n

    async def flush(self, conn: Any) -> int:
        """Write what was added since the last flush; how many rows it touched."""
        rows = self.take()
        if not rows:
            return 0
        try:
            await conn.execute(query("usage", "add_usage"), [r[0] for r in rows],
                               [r[1] for r in rows], [r[2] for r in rows],
                               [r[3] for r in rows])
        except BaseException:
            self.restore(rows)
            raise
        return len(rows)


Owned = list[tuple[tuple[str, int], int]]


class OwnerTally:
    """MQTT messages published per owning entity, ("Datastreams" | "Things", id), until
    whoever writes usage turns them into amounts per agency (`add_owned`): the owner's agency
    is looked up in the database, where it is current."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, int]] = Counter()

    def add(self, owner: tuple[str, int] | None, messages: int) -> None:
        if messages:
            self._counts[owner or ("", 0)] += messages

    def add_datastreams(self, counts: Counter[int]) -> None:
        for datastream, messages in counts.items():
            self._counts[("Datastreams", datastream)] += messages

    def pending(self) -> bool:
        return bool(self._counts)

    def take(self) -> Owned:
        owned = list(self._counts.items())
        self._counts.clear()
        return owned

    def restore(self, owned: Owned) -> None:
        for owner, messages in owned:
            self._counts[owner] += messages


async def add_owned(conn: Any, meter: UsageMeter, metric: str, owned: Owned,
                    day: date | None = None) -> None:
    """Add amounts per owning entity to `meter` under the owners' agencies (a Datastream's
    or Thing's agency; CITY for anything else)."""
    if not owned:
        return
    rows = await conn.fetch(query("usage", "owner_agencies"), [o[0] for o, _ in owned],
                            [o[1] for o, _ in owned])
    for row, (_, amount) in zip(rows, owned, strict=True):
        meter.add(row["agency"], metric, amount, day)


def owner_of(entity_set: str, id: int, parents: Sequence[tuple[str, int]]) -> (
        tuple[str, int] | None):
    """The entity whose agency a notification about (entity_set, id) is metered to: the
    Datastream it is or belongs to, else the Thing, else none (the platform's own)."""
    for kind in ("Datastreams", "Things"):
        if entity_set == kind:
            return kind, id
        for parent_set, parent_id in parents:
            if parent_set == kind:
                return kind, parent_id
    return None


@dataclass(frozen=True)
class DayUsage:
    """Every metric of one agency on one day."""

    day: date
    agency: str
    amounts: dict[str, float]


async def usage_between(conn: Any, first: date, last: date) -> tuple[list[DayUsage], float]:
    """Usage per day and agency from `first` to `last` (both included), metered and
    stored, with zeros for what was not used; and the bytes per row storage was measured
    at.

    Args:
        conn: a connection that may read all of observations and usage_daily.
        first: the first day.
        last: the last day.
    """
    table: dict[tuple[date, str], dict[str, float]] = {}

    def cell(day: date, agency: str) -> dict[str, float]:
        return table.setdefault((day, agency), dict.fromkeys(REPORTED, 0))

    for row in await conn.fetch(query("usage", "usage_between"), first, last):
        cell(row["day"], row["agency"])[row["metric"]] = row["amount"]
    bytes_per_row = 0.0
    for row in await conn.fetch(query("usage", "storage_between"), first, last):
        bytes_per_row = row["bytes_per_row"]
        amounts = cell(row["day"], row["agency"])
        amounts[STORAGE_ROWS] = row["rows"]
        amounts[STORAGE_BYTES] = round(row["rows"] * bytes_per_row)
    return ([DayUsage(day, agency, amounts) for (day, agency), amounts in sorted(table.items())],
            bytes_per_row)
