"""Plots of a simulated week at Hornsgatan for the documentation (needs matplotlib, a
development dependency).

    python -m simulators.plots --start 2026-03-09 --out docs/images
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from pathlib import Path

import click
import matplotlib.dates as mdates
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from devices.fleet import Fleet, stockholm
from devices.models import base_name
from simulators.calendar import STOCKHOLM
from simulators.simulation import Simulation, records
from simulators.timeparse import parse_time

STATION = "aq-hornsgatan-108"
COUNTERS = ("tc-hornsgatan-e", "tc-hornsgatan-w")
Series = dict[str, list[tuple[datetime, float]]]


def hornsgatan(seed: int) -> Simulation:
    """The Hornsgatan station and its two counters, as the full fleet simulates them."""
    city = stockholm()
    chosen = [d for d in city.devices if d.device_id in (STATION, *COUNTERS)]
    return Simulation(Fleet(city.name, city.agencies, city.gateways, chosen), seed)


def week(simulation: Simulation, start: int) -> Series:
    """Hourly NO2, O3, PM10 and vehicles (both directions) from a week of published packs.

    Args:
        simulation: the Hornsgatan simulation.
        start: the first minute of the week.

    Returns:
        Per quantity, (hour, value) pairs: concentrations are hourly means, vehicles hourly
        sums.
    """
    sums: dict[tuple[str, int], float] = defaultdict(float)
    counts: dict[tuple[str, int], int] = defaultdict(int)
    for epoch in range(start, start + 7 * 86_400, 60):
        hour = epoch - epoch % 3_600
        for message in simulation.minute(epoch):
            device = ""
            for record in records(message.payload):
                device = record.get("bn", device)
                key = _quantity(device, record["n"])
                if key:
                    sums[(key, hour)] += record["v"]
                    counts[(key, hour)] += 1
    series: Series = defaultdict(list)
    for (key, hour), total in sorted(sums.items(), key=lambda item: item[0][1]):
        value = total if key == "vehicles" else total / counts[(key, hour)]
        series[key].append((datetime.fromtimestamp(hour, STOCKHOLM), value))
    return series


def _quantity(device: str, name: str) -> str | None:
    if device == base_name(STATION) and name in ("no2", "o3", "pm10"):
        return name
    if device != base_name(STATION) and name.endswith("/count"):
        return "vehicles"
    return None


def draw(series: Series, title: str, path: Path) -> None:
    """Three panels, one time axis: vehicles per hour, NO2 with O3, PM10."""
    # A bare Figure draws to files without pyplot's global state or a display.
    figure = Figure(figsize=(11, 8))
    traffic, gases, dust = figure.subplots(3, 1, sharex=True)
    _line(traffic, series["vehicles"], "vehicles per hour, both directions", "tab:gray")
    _line(gases, series["no2"], "NO2", "tab:red")
    _line(gases, series["o3"], "O3", "tab:blue")
    _line(dust, series["pm10"], "PM10", "tab:brown")
    traffic.set_ylabel("vehicles/h")
    gases.set_ylabel("µg/m³ (hourly mean)")
    dust.set_ylabel("µg/m³ (hourly mean)")
    labels = mdates.DateFormatter("%a %d %b", tz=STOCKHOLM)  # type: ignore[no-untyped-call]
    dust.xaxis.set_major_formatter(labels)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def _line(axes: Axes, points: list[tuple[datetime, float]], label: str, colour: str) -> None:
    hours = mdates.date2num([p[0] for p in points])  # type: ignore[no-untyped-call]
    axes.plot(hours, [p[1] for p in points], label=label,
              color=colour,
              linewidth=1.2)
    axes.legend(loc="upper right")
    axes.grid(alpha=0.3)


@click.command("plot-week")
@click.option("--start", "starts", multiple=True, default=["2026-03-09", "2026-01-05"],
              show_default=True, help="Monday of a week to plot (repeatable).")
@click.option("--seed", default=0, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=Path("docs/images"),
              show_default=True, help="Directory for the PNG files.")
def plot_week(starts: tuple[str, ...], seed: int, out: Path) -> None:
    """Plot simulated weeks at Hornsgatan: traffic, NO2 and O3, PM10."""
    out.mkdir(parents=True, exist_ok=True)
    for start in starts:
        epoch = parse_time(start)
        path = out / f"hornsgatan-week-{start[:10]}.png"
        draw(week(hornsgatan(seed), epoch), f"Simulated week at Hornsgatan from {start[:10]} "
             f"(seed {seed})", path)
        click.echo(f"wrote {path}")


if __name__ == "__main__":
    plot_week()
