"""`stadspuls usage report`: a month's usage per agency and its share of the platform's
cost under a price list, as Markdown or CSV (docs/costs.md)."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal
from pathlib import Path

import click

from core import usage as metering
from core.allocation import Line, PriceList, allocate, month_days, month_usage, parse_prices
from deploy import stack as stacks
from deploy.running import on_database
from deploy.settings import StackSettings

# Usage columns: metric, heading.
COLUMNS = (
    (metering.READINGS_INGESTED, "readings ingested"),
    (metering.READINGS_REJECTED, "readings rejected"),
    (metering.STORAGE_ROWS, "rows stored (avg)"),
    (metering.STORAGE_BYTES, "bytes stored (avg)"),
    (metering.API_REQUESTS, "API requests"),
    (metering.API_BYTES, "API bytes"),
    (metering.MQTT_MESSAGES, "MQTT messages"),
)


class Month:
    """The month of a report: its first and last day, and the last day it covers."""

    def __init__(self, text: str, today: date) -> None:
        self.name = text
        self.first, self.last = month_days(text)
        if self.first > today:
            raise ValueError(f"{text} has not begun")
        self.until = min(self.last, today)

    @property
    def days(self) -> int:
        return (self.until - self.first).days + 1


@click.group()
def usage() -> None:
    """Usage per agency and the cost it carries."""


@usage.command("report")
@click.option("--month", required=True, help="The month, as YYYY-MM (to date if current).")
@click.option("--prices", "prices_path", required=True,
              type=click.Path(path_type=Path, dir_okay=False),
              help="The price list (TOML; docs/examples/prices.toml).")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the allocation as CSV to this file.")
@click.option("--markdown", "markdown_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the report as Markdown to this file [default: standard output, "
              "unless --csv is given].")
@click.option("--database-url", envvar="STADSPULS_DATABASE_URL",
              help="PostgreSQL URL [STADSPULS_DATABASE_URL; the local stack's database]")
@click.option("--state-dir", type=click.Path(path_type=Path),
              help="The local stack's directory [STADSPULS_STATE_DIR; .stadspuls]")
def report(month: str, prices_path: Path, csv_path: Path | None, markdown_path: Path | None,
           database_url: str | None, state_dir: Path | None) -> None:
    """A month's usage and cost allocation per agency.

    \b
      stadspuls usage report --month 2026-10 --prices prices.toml
      stadspuls usage report --month 2026-10 --prices prices.toml --csv oct.csv
    """
    try:
        period = Month(month, metering.today())
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--month") from None
    prices = parse_prices(_read(prices_path))
    if database_url is None:
        settings = StackSettings() if state_dir is None else StackSettings(state_dir=state_dir)
        database_url = stacks.settings_of_running_stack(settings).database_url
    days, bytes_per_row = on_database(database_url, lambda conn: metering.usage_between(
        conn, period.first, period.until))
    lines = allocate(month_usage(days, period.days), prices)
    if csv_path is not None:
        csv_path.write_text(as_csv(lines, prices), encoding="utf-8")
    text = as_markdown(lines, prices, period, bytes_per_row)
    if markdown_path is not None:
        markdown_path.write_text(text, encoding="utf-8")
    elif csv_path is None:
        click.echo(text, nl=False)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise click.BadParameter(f"no price list at {path}", param_hint="--prices") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"cannot read {path}: {exc}", param_hint="--prices") from None


def as_csv(lines: list[Line], prices: PriceList) -> str:
    """One row per agency: usage per metric, share and cost per pool, the cost of
    anonymous use carried, the total; money in the price list's currency."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    pools = [p.name for p in prices.pools]
    writer.writerow(["agency", *(m for m, _ in COLUMNS), *(f"share_{p}" for p in pools),
                     *(f"cost_{p}" for p in pools), "public_carried", "total", "currency"])
    for line in lines:
        writer.writerow([line.agency, *(_amount(line.usage.get(m, 0)) for m, _ in COLUMNS),
                         *(f"{line.shares[p]:.6f}" for p in pools),
                         *(line.costs[p] for p in pools), line.public, line.total,
                         prices.currency])
    return out.getvalue()


def as_markdown(lines: list[Line], prices: PriceList, period: Month,
                bytes_per_row: float) -> str:
    """The report: usage per agency, then the allocation, with the totals."""
    pools = prices.pools
    span = (f"{period.first} to {period.until}, {period.days} days"
            + (" (month to date)" if period.until < period.last else ""))
    out = [f"# Usage and cost allocation, {period.name}", "",
           f"{span}; money in {prices.currency}. Storage is the daily average over the days "
           f"covered, at {bytes_per_row:.1f} bytes per row as measured now. docs/costs.md "
           "tells how each figure is counted and shared.", "", "## Usage", "",
           _row(["agency", *(h for _, h in COLUMNS)]), _rule(1 + len(COLUMNS))]
    for line in lines:
        out.append(_row([line.agency, *(f"{_amount(line.usage.get(m, 0)):,}"
                                        for m, _ in COLUMNS)]))
    out += ["", "## Allocation", "",
            "| pool | monthly amount | shared by |", "|---|---:|---|",
            *(f"| {p.name} | {p.amount:,.2f} | {p.driver} |" for p in pools), "",
            _row(["agency", *(f"{p.name} share" for p in pools),
                  *(f"{p.name}" for p in pools), "public use carried", "total"]),
            _rule(3 + 2 * len(pools))]
    for line in lines:
        out.append(_row([line.agency, *(f"{line.shares[p.name] * 100:.2f} %" for p in pools),
                         *(f"{line.costs[p.name]:,.2f}" for p in pools),
                         f"{line.public:,.2f}", f"{line.total:,.2f}"]))
    totals = [sum((line.costs[p.name] for line in lines), Decimal(0)) for p in pools]
    out.append(_row(["**total**", *("" for _ in pools), *(f"{t:,.2f}" for t in totals),
                     f"{sum((line.public for line in lines), Decimal(0)):,.2f}",
                     f"**{sum((line.total for line in lines), Decimal(0)):,.2f}**"]))
    return "\n".join(out) + "\n"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _rule(columns: int) -> str:
    return "|---" + "|---:" * (columns - 1) + "|"


def _amount(value: float) -> int:
    return round(value)
