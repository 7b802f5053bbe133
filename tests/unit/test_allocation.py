"""The cost allocation, recomputed by hand, and the price list's checks."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from core.allocation import (
    Line,
    Pool,
    PriceList,
    PriceListError,
    allocate,
    month_days,
    month_usage,
    parse_prices,
)
from core.usage import DayUsage

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "prices.toml"

PRICES = PriceList("SEK", (
    Pool("platform", Decimal(1000), "equal"),
    Pool("ingest", Decimal(500), "readings_ingested"),
    Pool("storage", Decimal(400), "storage_bytes"),
    Pool("api", Decimal(300), "api_requests"),
    Pool("mqtt", Decimal(100), "mqtt_messages"),
))
USAGE = {
    "env": {"readings_ingested": 600, "storage_bytes": 3000, "api_requests": 30},
    "traffic": {"readings_ingested": 400, "storage_bytes": 1000, "api_requests": 10},
    "public": {"api_requests": 60},
}


def by_agency(prices: PriceList = PRICES) -> dict[str, Line]:
    return {line.agency: line for line in allocate(USAGE, prices)}


def test_each_pool_is_shared_by_its_driver() -> None:
    lines = by_agency()
    env, traffic, public = lines["env"], lines["traffic"], lines["public"]
    assert env.costs == {"platform": 500, "ingest": 300, "storage": 300, "api": 90,
                         "mqtt": 50}
    assert traffic.costs == {"platform": 500, "ingest": 200, "storage": 100, "api": 30,
                             "mqtt": 50}
    assert public.costs == {"platform": 0, "ingest": 0, "storage": 0, "api": 180, "mqtt": 0}
    assert env.shares["api"] == Decimal("0.3")


def test_public_use_is_spread_in_proportion_to_what_each_agency_pays() -> None:
    lines = by_agency()
    # Direct costs: env 1240, traffic 880; public's 180 is spread 1240:880.
    assert lines["env"].public == Decimal("105.28")
    assert lines["traffic"].public == Decimal("74.72")
    assert lines["env"].total == Decimal("1345.28")
    assert lines["traffic"].total == Decimal("954.72")
    assert lines["public"].public == Decimal("-180.00")
    assert lines["public"].total == 0


def test_public_use_spread_in_equal_parts_when_the_price_list_says_so() -> None:
    lines = by_agency(PriceList("SEK", PRICES.pools, "equal"))
    assert lines["env"].total == Decimal("1330.00")
    assert lines["traffic"].total == Decimal("970.00")


def test_the_totals_add_up_to_the_price_list() -> None:
    assert sum(line.total for line in allocate(USAGE, PRICES)) == Decimal(2300)


def test_public_is_the_last_row_and_agencies_are_sorted() -> None:
    assert [line.agency for line in allocate(USAGE, PRICES)] == ["env", "traffic", "public"]


def test_a_month_sums_flows_and_averages_storage_over_its_days() -> None:
    days = [
        DayUsage(date(2026, 11, 1), "env", {"readings_ingested": 10, "storage_rows": 100}),
        DayUsage(date(2026, 11, 2), "env", {"readings_ingested": 5, "storage_rows": 200}),
    ]
    month = month_usage(days, 30)
    assert month["env"]["readings_ingested"] == 15
    assert month["env"]["storage_rows"] == pytest.approx(10.0)  # 300 row-days / 30 days


def test_month_days_of_february_and_bad_months() -> None:
    assert month_days("2028-02") == (date(2028, 2, 1), date(2028, 2, 29))
    for bad in ("2026-13", "26-10", "2026-1", "2026/10", "october", ""):
        with pytest.raises(ValueError, match="YYYY-MM"):
            month_days(bad)


def test_the_example_price_list_is_valid() -> None:
    prices = parse_prices(EXAMPLE.read_text(encoding="utf-8"))
    assert prices.currency == "SEK"
    assert {p.name for p in prices.pools} == {"platform", "ingest", "storage", "api", "mqtt"}


@pytest.mark.parametrize(("text", "named"), [
    ('currency = "SEK"\n[pools.api]\namount = 10\ndriver = "api_calls"\n', "pools.api.driver"),
    ('currency = "SEK"\n[pools.api]\namount = -1\ndriver = "api_requests"\n',
     "pools.api.amount"),
    ('currency = "SEK"\n[pools.api]\namount = "ten"\ndriver = "api_requests"\n',
     "pools.api.amount"),
    ('currency = "SEK"\n[pools.api]\ndriver = "api_requests"\n', "pools.api.amount"),
    ('currency = "SEK"\n[pools.api]\namount = 1\ndriver = "equal"\nprice = 3\n',
     "pools.api.price"),
    ('[pools.api]\namount = 1\ndriver = "equal"\n', "currency"),
    ('currency = "SEK"\n', "pools"),
    ('currency = "SEK"\npublic_spread = "nobody"\n[pools.a]\namount = 1\ndriver = "equal"\n',
     "public_spread"),
    ('currency = "SEK"\ncurency = "EUR"\n[pools.a]\namount = 1\ndriver = "equal"\n',
     "curency"),
    ('currency = "SEK\n', "not valid TOML"),
])
def test_a_bad_price_list_names_the_key(text: str, named: str) -> None:
    with pytest.raises(PriceListError, match=named):
        parse_prices(text)
