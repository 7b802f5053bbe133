"""What SensorThings users keep asking for, beyond the standard, under /api:
the newest reading of every Datastream, and downsampled series."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request

from api.errors import BadRequest, NotFound
from api.serialize import value_json
from core.queries import query

router = APIRouter(prefix="/api")

_INTERVAL = re.compile(r"^([1-9][0-9]{0,5}) (minute|hour|day|week)s?$")
_SECONDS = {"minute": 60, "hour": 3600, "day": 86400, "week": 604800}
MAX_BUCKETS = 100_000


@router.get("/latest")
async def latest(request: Request, thing: int | None = None) -> dict[str, Any]:
    """The newest Observation of every Datastream (of one Thing with `thing`), with the
    Thing's location: what a live map needs, in one request."""
    async with request.app.state.store.pool.acquire() as conn:
        rows = await conn.fetch(query("api", "latest_observations"), thing)
    return {"value": [
        {"datastream": r["datastream_id"], "name": r["name"], "thing": r["thing_id"],
         "unit": r["unit_symbol"], "observation": r["observation_id"],
         "phenomenonTime": value_json(r["phenomenon_time"]), "result": r["result"],
         "location": r["location"]}
        for r in rows
    ]}


@router.get("/Datastreams({datastream_id})/series")
async def series(
    request: Request, datastream_id: int, interval: str = "1 hour",
    start: str | None = None, end: str | None = None,
) -> dict[str, Any]:
    """A Datastream's results averaged per interval (with min, max and count), over
    [start, end); by default the last 24 hours in hourly buckets."""
    bucket = _interval(interval)
    until = _instant(end, "end") if end else datetime.now(UTC)
    since = _instant(start, "start") if start else until - timedelta(days=1)
    if since >= until:
        raise BadRequest("start must come before end")
    if (until - since).total_seconds() / bucket.total_seconds() > MAX_BUCKETS:
        raise BadRequest(f"more than {MAX_BUCKETS:,} buckets; choose a longer interval")
    async with request.app.state.store.pool.acquire() as conn:
        if not await conn.fetchval(query("api", "datastream_exists"), datastream_id):
            raise NotFound(f"no Datastream {datastream_id}")
        rows = await conn.fetch(query("api", "downsampled"), datastream_id, bucket, since,
                                until)
    return {
        "datastream": datastream_id, "interval": interval,
        "start": value_json(since), "end": value_json(until),
        "value": [{"time": value_json(r["bucket"]), "avg": r["avg"], "min": r["min"],
                   "max": r["max"], "count": r["count"]} for r in rows],
    }


def _interval(raw: str) -> timedelta:
    match = _INTERVAL.match(raw.strip())
    if match is None:
        raise BadRequest(f"interval {raw!r} is not like '15 minutes', '1 hour' or '1 day'")
    return timedelta(seconds=int(match.group(1)) * _SECONDS[match.group(2)])


def _instant(raw: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name} {raw!r} is not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise BadRequest(f"{name} {raw!r} needs a time zone, such as Z or +01:00")
    return value
