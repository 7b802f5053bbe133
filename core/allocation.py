"""Sharing the platform's monthly cost among agencies by their metered usage.

A price list (TOML) names a currency and cost pools. Each pool is a monthly amount and the
driver it is shared by: a usage metric (core/usage.py), or "equal" for an even split among
the paying agencies. Every agency pays each pool in proportion to its share of the driver;
anonymous open-data use (agency `public`) gets its share like any agency, shown on its own
row, and that cost is then spread over the paying agencies by the price list's rule. The
steps, with a worked example, are in docs/costs.md; this module is pure, so a unit test can
recompute any allocation by hand.

Everything here is decimal: amounts are rounded to the currency's hundredths only at the
end, cell by cell (so a column may differ from its pool by a few hundredths).
"""

from __future__ import annotations

import calendar
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from core.errors import CoreError
from core.usage import METRICS, PUBLIC, STORAGE_BYTES, STORAGE_ROWS, DayUsage

EQUAL = "equal"
DRIVERS = (*METRICS, STORAGE_ROWS, STORAGE_BYTES, EQUAL)
# How the cost of anonymous use is spread over the paying agencies.
SPREADS = ("proportional", "equal")
# Metrics whose month is the average of its days (a state, not a flow).
AVERAGED = (STORAGE_ROWS, STORAGE_BYTES)
CENT = Decimal("0.01")


class PriceListError(CoreError):
    """The price list is not valid."""


@dataclass(frozen=True)
class Pool:
    """A cost pool: a monthly amount shared by a driver."""

    name: str
    amount: Decimal
    driver: str


@dataclass(frozen=True)
class PriceList:
    currency: str
    pools: tuple[Pool, ...]
    public_spread: str = "proportional"


@dataclass(frozen=True)
class Line:
    """One agency's row of the allocation.

    Attributes:
        agency: its code.
        usage: its usage in the month, per metric (storage: the month's daily average).
        shares: its share of each pool's driver, 0..1, by pool name.
        costs: its cost of each pool, by pool name.
        public: the cost of anonymous use it carries (on the `public` row: minus what the
            agencies carry for it).
        total: what it pays.
    """

    agency: str
    usage: dict[str, float]
    shares: dict[str, Decimal]
    costs: dict[str, Decimal]
    public: Decimal
    total: Decimal


def parse_prices(text: str) -> PriceList:
    """Read a price list from TOML text.

    Raises:
        PriceListError: naming the key that is missing or wrong.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PriceListError(f"the price list is not valid TOML: {exc}") from None
    currency = doc.get("currency")
    if not isinstance(currency, str) or not currency.strip():
        raise PriceListError("'currency' must be a name such as \"SEK\"")
    spread = doc.get("public_spread", "proportional")
    if spread not in SPREADS:
        raise PriceListError(f"'public_spread' must be one of {', '.join(SPREADS)}; "
                             f"got {spread!r}")
    pools = doc.get("pools")
    if not isinstance(pools, dict) or not pools:
        raise PriceListError("'pools' must hold at least one pool, as [pools.<name>] with "
                             "'amount' and 'driver'")
    unknown = sorted(set(doc) - {"currency", "public_spread", "pools"})
    if unknown:
        raise PriceListError(f"unknown key {unknown[0]!r} at the top of the price list")
    return PriceList(currency.strip(), tuple(_pool(n, p) for n, p in pools.items()), spread)


def _pool(name: str, spec: Any) -> Pool:
    where = f"'pools.{name}'"
    if not isinstance(spec, dict):
        raise PriceListError(f"{where} must be a table with 'amount' and 'driver'")
    unknown = sorted(set(spec) - {"amount", "driver"})
    if unknown:
        raise PriceListError(f"unknown key 'pools.{name}.{unknown[0]}'")
    amount = spec.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        raise PriceListError(f"'pools.{name}.amount' must be a number (the monthly amount)")
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise PriceListError(f"'pools.{name}.amount' is not a number") from None
    if not value.is_finite() or value < 0:
        raise PriceListError(f"'pools.{name}.amount' must be zero or more; got {amount}")
    driver = spec.get("driver")
    if driver not in DRIVERS:
        raise PriceListError(f"'pools.{name}.driver' must be one of {', '.join(DRIVERS)}; "
                             f"got {driver!r}")
    return Pool(name, value, driver)


def month_days(month: str) -> tuple[date, date]:
    """The first and last day of a month given as YYYY-MM.

    Raises:
        ValueError: for anything else.
    """
    year_text, sep, month_text = month.partition("-")
    if not (sep and len(year_text) == 4 and len(month_text) == 2 and year_text.isdigit()
            and month_text.isdigit() and 1 <= int(month_text) <= 12 and int(year_text) > 0):
        raise ValueError(f"not a month as YYYY-MM: {month!r}")
    year, number = int(year_text), int(month_text)
    return date(year, number, 1), date(year, number, calendar.monthrange(year, number)[1])


def month_usage(days: Iterable[DayUsage], day_count: int) -> dict[str, dict[str, float]]:
    """Usage per agency over a month of `day_count` days: flows summed, storage averaged
    over the days of the month."""
    out: dict[str, dict[str, float]] = {}
    for d in days:
        totals = out.setdefault(d.agency, dict.fromkeys((*METRICS, *AVERAGED), 0.0))
        for metric, amount in d.amounts.items():
            totals[metric] = totals.get(metric, 0.0) + amount
    for totals in out.values():
        for metric in AVERAGED:
            totals[metric] /= day_count
    return out


def allocate(usage: Mapping[str, Mapping[str, float]], prices: PriceList) -> list[Line]:
    """Share each pool among the agencies by their usage of its driver.

    Args:
        usage: per agency code, its usage in the month per metric (`month_usage`).
        prices: the price list.

    Returns:
        One line per agency, sorted by code, then `public` (when it has any usage) last.
    """
    payers = sorted(a for a in usage if a != PUBLIC)
    everyone = [*payers, PUBLIC] if PUBLIC in usage else payers
    shares = {a: {} for a in everyone}  # type: dict[str, dict[str, Decimal]]
    for pool in prices.pools:
        for agency, share in _shares(pool.driver, usage, payers, everyone).items():
            shares[agency][pool.name] = share
    costs = {a: {p.name: p.amount * shares[a][p.name] for p in prices.pools} for a in everyone}
    direct = {a: sum(costs[a].values(), Decimal(0)) for a in everyone}
    carried = _spread(direct.get(PUBLIC, Decimal(0)), {a: direct[a] for a in payers},
                      prices.public_spread)
    if PUBLIC in usage and payers:
        carried[PUBLIC] = -direct[PUBLIC]
    return [
        Line(a, dict(usage[a]), shares[a], {p: _money(c) for p, c in costs[a].items()},
             _money(carried.get(a, Decimal(0))),
             _money(direct[a] + carried.get(a, Decimal(0))))
        for a in everyone
    ]


def _shares(driver: str, usage: Mapping[str, Mapping[str, float]], payers: list[str],
            everyone: list[str]) -> dict[str, Decimal]:
    """Each agency's share of a driver; with no usage of it at all, an even split among
    the paying agencies (a pool is never left unpaid)."""
    if driver != EQUAL:
        amounts = {a: Decimal(str(usage[a].get(driver, 0))) for a in everyone}
        total = sum(amounts.values(), Decimal(0))
        if total > 0:
            return {a: amounts[a] / total for a in everyone}
    even = Decimal(1) / len(payers) if payers else Decimal(0)
    return {a: (even if a != PUBLIC else Decimal(0)) for a in everyone}


def _spread(amount: Decimal, direct: dict[str, Decimal], rule: str) -> dict[str, Decimal]:
    """How much of `amount` (anonymous use) each paying agency carries."""
    if not direct:
        return {}
    total = sum(direct.values(), Decimal(0))
    if rule == "equal" or total == 0:
        return {a: amount / len(direct) for a in direct}
    return {a: amount * d / total for a, d in direct.items()}


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)
