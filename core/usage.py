"""Usage metered per agency and day, added up in memory and written in one statement.

Ingest, the API and the notifiers each hold a `UsageMeter`, call `add` as work is done and
`flush` into `usage_daily` now and then (ingest in the transaction of each batch, so a
batch and its usage commit together). Agencies are named by code; `public` stands for
requests without an API key. docs/costs.md says what every metric counts.
"""

from __future__ import annotations

from collections import Counter
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

PUBLIC = "public"


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
