"""Running a simulation through time: real time, accelerated, or a backfill as fast as the
broker takes it, with a progress bar and a summary at the end."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from tqdm import tqdm  # type: ignore[import-untyped]  # no stubs installed

from simulators.calendar import STOCKHOLM
from simulators.errors import BadTimeRange
from simulators.simulation import LATE, READING, Message, Simulation

log = logging.getLogger(__name__)

Sink = Callable[[Message], None]


@dataclass(frozen=True)
class Period:
    """The simulated minutes to run and how fast.

    `end` None runs until stopped; `speed` None runs as fast as possible, otherwise
    `speed` simulated seconds pass per second of wall-clock time.
    """

    start: int
    end: int | None = None
    speed: float | None = None

    def __post_init__(self) -> None:
        if self.end is not None and self.end <= self.start:
            raise BadTimeRange(f"the period is empty: {_local(self.end)} is not after "
                               f"{_local(self.start)}")

    @property
    def minutes(self) -> int | None:
        return None if self.end is None else (self.end - self.start + 59) // 60


@dataclass
class Summary:
    """What a run published."""

    devices: int
    first: int
    last: int | None = None
    minutes: int = 0
    readings: int = 0
    bytes: int = 0
    seconds: float = 0.0
    messages: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)

    def add(self, message: Message) -> None:
        self.messages[message.kind] += 1
        self.bytes += len(message.payload)
        if message.kind in (READING, LATE):
            self.readings += message.readings

    def describe(self) -> str:
        """The run in a few lines, for the closing note of the command."""
        span = f"{_local(self.first)} to {_local(self.last or self.first)} (Stockholm time)"
        rate = self.readings / self.seconds if self.seconds > 0 else 0.0
        kinds = ", ".join(f"{n:,} {k}" for k, n in sorted(self.messages.items()))
        faults = ", ".join(f"{k} {n:,}" for k, n in sorted(self.faults.items())) or "none"
        return (
            f"simulated {self.minutes:,} minutes, {span}, for {self.devices:,} devices\n"
            f"published {sum(self.messages.values()):,} messages ({kinds or 'none'}), "
            f"{self.readings:,} readings, {self.bytes / 1e6:.1f} MB "
            f"in {self.seconds:.1f} s ({rate:,.0f} readings/s)\n"
            f"faults injected: {faults}"
        )


def run(simulation: Simulation, period: Period, sink: Sink, progress: bool = False,
        stop: threading.Event | None = None) -> Summary:
    """Publish the simulated minutes of `period` through `sink`.

    Args:
        simulation: the fleet to simulate.
        period: which minutes, and how fast.
        sink: called with every message, in order (a publisher, or a list in tests).
        progress: show a progress bar on stderr.
        stop: set it to end the run after the current minute.

    Returns:
        What was published, with the faults that were injected.
    """
    stop = stop or threading.Event()
    summary = Summary(devices=len(simulation.devices), first=period.start)
    began = time.monotonic()
    with tqdm(total=period.minutes, unit="min", disable=not progress, leave=False,
              desc="simulating") as bar:
        epoch = period.start
        while not stop.is_set() and (period.end is None or epoch < period.end):
            if period.speed and _wait(began + (epoch - period.start) / period.speed, stop):
                break
            for message in simulation.minute(epoch):
                sink(message)
                summary.add(message)
            summary.minutes += 1
            summary.last = epoch + 60
            epoch += 60
            bar.update(1)
    for message in simulation.flush():
        sink(message)
        summary.add(message)
    summary.seconds = time.monotonic() - began
    summary.faults = Counter(simulation.faults)
    log.debug("simulated %d minutes: %d readings", summary.minutes, summary.readings,
             extra={"action": "simulation_finished"})
    return summary


def _wait(until: float, stop: threading.Event) -> bool:
    """Sleep until the monotonic clock reaches `until`; True if stopped meanwhile."""
    left = until - time.monotonic()
    return left > 0 and stop.wait(left)


def _local(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, STOCKHOLM).strftime("%Y-%m-%d %H:%M")
