"""The interval and times of /api/Datastreams(id)/series, as dashboards send them."""

from datetime import UTC, datetime, timedelta

import pytest

from api.errors import BadRequest
from api.extras import parse_instant, parse_interval


@pytest.mark.parametrize(("raw", "width"), [
    ("1 hour", timedelta(hours=1)),
    ("15 minutes", timedelta(minutes=15)),
    ("2 weeks", timedelta(weeks=2)),
    ("30s", timedelta(seconds=30)),
    ("5m", timedelta(minutes=5)),
    ("1h", timedelta(hours=1)),
    ("1d", timedelta(days=1)),
    ("1w", timedelta(weeks=1)),
    ("200ms", timedelta(milliseconds=200)),
    ("1h30m", timedelta(minutes=90)),
    ("PT1H", timedelta(hours=1)),
    ("PT15M", timedelta(minutes=15)),
    ("PT0.5S", timedelta(milliseconds=500)),
    ("P1D", timedelta(days=1)),
    ("P1W", timedelta(weeks=1)),
    ("P1DT12H", timedelta(hours=36)),
])
def test_an_interval_is_read_in_words_shorthand_or_iso_8601(raw: str, width: timedelta) -> None:
    assert parse_interval(raw) == width


@pytest.mark.parametrize(("raw", "complaint"), [
    ("fortnightly", "is not like"),
    ("1 hour ago", "is not like"),
    ("1H", "is not like"),
    ("P", "is not like"),
    ("PT", "is not like"),
    ("P1DT", "is not like"),
    ("", "is not like"),
    ("0h", "longer than zero"),
    ("PT0S", "longer than zero"),
    ("1M", "months or years"),
    ("P1M", "months or years"),
    ("P1Y", "months or years"),
    ("999999999w", "too long"),
])
def test_an_interval_that_is_none_of_them_is_refused_saying_why(raw: str, complaint: str) -> None:
    with pytest.raises(BadRequest, match=complaint):
        parse_interval(raw)


def test_a_minute_in_iso_8601_is_not_a_month() -> None:
    assert parse_interval("PT1M") == timedelta(minutes=1)


@pytest.mark.parametrize(("raw", "instant"), [
    ("1733400000000", datetime(2024, 12, 5, 12, 0, tzinfo=UTC)),
    ("1733400000123", datetime(2024, 12, 5, 12, 0, 0, 123000, tzinfo=UTC)),
    ("0", datetime(1970, 1, 1, tzinfo=UTC)),
    ("2026-09-21T10:00:00Z", datetime(2026, 9, 21, 10, tzinfo=UTC)),
    ("2026-09-21T12:00:00+02:00", datetime(2026, 9, 21, 10, tzinfo=UTC)),
])
def test_a_time_is_iso_8601_or_epoch_milliseconds(raw: str, instant: datetime) -> None:
    assert parse_instant(raw, "start") == instant


@pytest.mark.parametrize(("raw", "complaint"), [
    ("yesterday", "neither an ISO 8601 time nor milliseconds"),
    ("1733400000000.5", "neither an ISO 8601 time nor milliseconds"),
    ("-1000", "neither an ISO 8601 time nor milliseconds"),
    ("2026-09-21T10:00:00", "needs a time zone"),
    ("253402300800000", "beyond the year 9999"),
    ("9" * 5000, "beyond the year 9999"),
])
def test_a_time_that_is_neither_is_refused_naming_the_parameter(raw: str, complaint: str) -> None:
    with pytest.raises(BadRequest, match=f"^start .*{complaint}"):
        parse_instant(raw, "start")
