"""The operator's API under /admin: usage per agency and day. Admin keys only."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from api import principal
from api.errors import BadRequest, Forbidden
from core import usage

router = APIRouter(prefix="/admin", tags=["admin"])

# A year and a leap day: one request covers any calendar year.
MAX_DAYS = 366


# Checked by day_range, for messages of the API's own; declared for the OpenAPI description.
FromDay = Annotated[str | None, Query(alias="from", description="first day, YYYY-MM-DD")]
ToDay = Annotated[str | None, Query(description="last day (included), YYYY-MM-DD")]


@router.get("/usage")
async def usage_by_day(request: Request, from_: FromDay = None,
                       to: ToDay = None) -> dict[str, Any]:
    """Usage per day and agency, every metric (docs/costs.md), between the days `from`
    and `to` (YYYY-MM-DD, both included, at most 366 days). Admin keys only."""
    if not principal.current.get().is_admin:
        raise Forbidden("usage is reported to admin keys only")
    first, last = day_range(from_, to)
    async with request.app.state.store.pool.acquire() as conn:
        days, bytes_per_row = await usage.usage_between(conn, first, last)
    return {
        "from": first.isoformat(),
        "to": last.isoformat(),
        "metrics": list(usage.REPORTED),
        "bytes_per_row": round(bytes_per_row, 1),
        "value": [{"day": d.day.isoformat(), "agency": d.agency, **d.amounts} for d in days],
    }


def day_range(first: str | None, last: str | None) -> tuple[date, date]:
    """The days of `from` and `to`, checked: both given, real days, in order, and at most
    MAX_DAYS apart.

    Raises:
        BadRequest: naming what is wrong.
    """
    start, end = _day("from", first), _day("to", last)
    if end < start:
        raise BadRequest(f"'to' ({end}) is before 'from' ({start})")
    if (end - start).days + 1 > MAX_DAYS:
        raise BadRequest(f"the range covers {(end - start).days + 1} days; at most "
                         f"{MAX_DAYS} may be asked at once")
    return start, end


def _day(name: str, text: str | None) -> date:
    if not text:
        raise BadRequest(f"'{name}' is required, as YYYY-MM-DD")
    try:
        if len(text) != 10:
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"'{name}' is not a day as YYYY-MM-DD: {text[:40]!r}") from None
