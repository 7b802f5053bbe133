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

# Three ways to write a bucket's width: words ("15 minutes"), the shorthand of dashboards
# such as Grafana's $__interval ("30s", "5m", "1h30m"), and ISO 8601 durations ("PT1H").
_WORDS = re.compile(r"([0-9]{1,9}) (millisecond|second|minute|hour|day|week)s?")
_SHORTHAND = re.compile(r"(?:[0-9]{1,9}(?:ms|s|m|h|d|w))+")
_SHORTHAND_PART = re.compile(r"([0-9]+)(ms|s|m|h|d|w)")
_ISO = re.compile(r"P(?:([0-9]{1,9})W)?(?:([0-9]{1,9})D)?(?:T(?:([0-9]{1,9})H)?"
                  r"(?:([0-9]{1,9})M)?(?:([0-9]{1,9}(?:\.[0-9]{1,6})?)S)?)?")
_UNITS = {"ms": "milliseconds", "s": "seconds", "m": "minutes", "h": "hours", "d": "days",
          "w": "weeks"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
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
    bucket = parse_interval(interval)
    since, until = _span(start, end)
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


def _span(start: str | None, end: str | None) -> tuple[datetime, datetime]:
    """[start, end) of a series: by default the day before `end`, and `end` now."""
    until = parse_instant(end, "end") if end else datetime.now(UTC)
    try:
        since = parse_instant(start, "start") if start else until - timedelta(days=1)
    except OverflowError:
        raise BadRequest(f"end {end!r} leaves no day before it; give a start") from None
    if since >= until:
        raise BadRequest("start must come before end")
    return since, until


def parse_interval(raw: str) -> timedelta:
    """The width of a bucket: `N unit(s)` in words, dashboard shorthand (`30s`, `5m`,
    `1h`, `1d`, `1w`, also run together as `1h30m`) or an ISO 8601 duration (`PT1H`,
    `P1D`, `P1W`).

    Raises:
        BadRequest: `raw` is none of these, is zero, or counts months or years, which have
            no fixed length.
    """
    text = raw.strip()
    try:
        width = _width(text)
    except OverflowError:
        raise BadRequest(f"interval {raw!r} is too long") from None
    if width is None:
        if re.fullmatch(r"P[^T]*[YM].*|[0-9]+[My]", text):
            raise BadRequest(f"interval {raw!r} counts months or years, which have no fixed "
                             "length; use days or weeks")
        raise BadRequest(f"interval {raw!r} is not like '15 minutes', '1h', '30s' or 'PT1H'")
    if width <= timedelta(0):
        raise BadRequest(f"interval {raw!r} must be longer than zero")
    return width


def _width(text: str) -> timedelta | None:
    if match := _WORDS.fullmatch(text):
        return timedelta(**{f"{match[2]}s": int(match[1])})
    if _SHORTHAND.fullmatch(text):
        return sum((timedelta(**{_UNITS[unit]: int(n)})
                    for n, unit in _SHORTHAND_PART.findall(text)), timedelta(0))
    match = _ISO.fullmatch(text)
    if match is None or text in ("P", "PT") or text.endswith("T"):
        return None
    weeks, days, hours, minutes, seconds = (g or "0" for g in match.groups())
    return timedelta(weeks=int(weeks), days=int(days), hours=int(hours),
                     minutes=int(minutes), seconds=float(seconds))


def parse_instant(raw: str, name: str) -> datetime:
    """A time given as ISO 8601 with a zone, or as milliseconds since 1970 (what dashboards
    send, such as `1733400000000`).

    Raises:
        BadRequest: `raw` is neither, has no zone, or lies beyond the year 9999.
    """
    if raw.isascii() and raw.isdigit():
        if len(raw) > 15:
            raise BadRequest(f"{name} {raw!r} lies beyond the year 9999")
        try:
            return _EPOCH + timedelta(milliseconds=int(raw))
        except OverflowError:
            raise BadRequest(f"{name} {raw!r} lies beyond the year 9999") from None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name} {raw!r} is neither an ISO 8601 time nor milliseconds "
                         "since 1970") from None
    if value.tzinfo is None:
        raise BadRequest(f"{name} {raw!r} needs a time zone, such as Z or +01:00")
    return value
