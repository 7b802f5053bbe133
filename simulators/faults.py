"""Faults the simulator injects, each with its own rate, and the state they need.

Rates are probabilities per opportunity:

- offline (per publisher-minute): the device or gateway drops off for 5-60 minutes,
  keeps its packs, and publishes them in a burst when it is back (store and forward).
- duplicate (per message): the same payload is published twice.
- skew (per message): the pack's base times are off by 30 s to 15 minutes, either way.
- stuck (per datastream-minute): the datastream repeats one value for 30-180 minutes.
- spike (per reading): one reading jumps far outside its normal range.
- malformed (per message): an extra payload, malformed in one of `malformed.KINDS`.
- foreign (per gateway message): an extra pack on the gateway's topic for a device that is
  not behind it.

Every fault draws from its own generator, so switching one on changes neither the readings
nor where the other faults fall.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field, fields, replace
from typing import Any

from simulators.errors import BadFaultSpec

OUTAGE_MINUTES = (5, 60)
STUCK_MINUTES = (30, 180)
SKEW_SECONDS = (30, 900)


@dataclass(frozen=True)
class FaultRates:
    """The rate of each fault; all zero means a clean fleet."""

    offline: float = 0.0
    duplicate: float = 0.0
    skew: float = 0.0
    stuck: float = 0.0
    spike: float = 0.0
    malformed: float = 0.0
    foreign: float = 0.0

    @classmethod
    def kinds(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def parse(cls, specs: list[str] | tuple[str, ...]) -> FaultRates:
        """Rates from specifications such as ``duplicate=0.01,spike=0.001`` or ``all=0.001``.

        Args:
            specs: comma-separated ``kind=rate`` items; ``all`` sets every kind, later
                items override earlier ones, ``none`` clears everything.

        Returns:
            The rates.

        Raises:
            BadFaultSpec: an unknown kind, or a rate that is not a number in 0..1.
        """
        rates = cls()
        for item in (i.strip() for spec in specs for i in spec.split(",")):
            if not item:
                continue
            if item == "none":
                rates = cls()
                continue
            kind, _, text = item.partition("=")
            rate = _rate(item, text)
            if kind == "all":
                rates = cls(**dict.fromkeys(cls.kinds(), rate))
            elif kind in cls.kinds():
                rates = replace(rates, **{kind: rate})
            else:
                raise BadFaultSpec(
                    f"unknown fault {kind!r} in {item!r}; known: all, {', '.join(cls.kinds())}"
                )
        return rates

    def describe(self) -> str:
        active = [f"{k}={getattr(self, k):g}" for k in self.kinds() if getattr(self, k) > 0]
        return ",".join(active) or "none"


def _rate(item: str, text: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        raise BadFaultSpec(f"{item!r}: the rate must be a number, as in duplicate=0.01") from None
    if not 0.0 <= rate <= 1.0:
        raise BadFaultSpec(f"{item!r}: the rate is a probability, from 0 to 1")
    return rate


@dataclass
class _Stuck:
    until: int
    value: Any


class RecordFaults:
    """Stuck datastreams and spikes for one device.

    Args:
        rates: the fault rates.
        rng: the device's fault generator.
        tally: where injected faults are counted, by kind.
    """

    def __init__(self, rates: FaultRates, rng: random.Random, tally: Counter[str]) -> None:
        self._rates = rates
        self._rng = rng
        self._tally = tally
        self._stuck: dict[str, _Stuck] = {}

    def apply(self, epoch: int, values: dict[str, Any]) -> dict[str, Any]:
        """The readings after this minute's stuck and spike faults.

        Args:
            epoch: the simulated minute.
            values: the true readings, by record name; not changed.

        Returns:
            The readings as the device reports them.
        """
        if self._rates.stuck == 0.0 and self._rates.spike == 0.0:
            return values
        reported = dict(values)
        for record, value in values.items():
            reported[record] = self._stuck_value(epoch, record, value)
            if self._rates.spike and self._rng.random() < self._rates.spike:
                reported[record] = spiked(record, reported[record], self._rng)
                self._tally["spike"] += 1
        return reported

    def _stuck_value(self, epoch: int, record: str, value: Any) -> Any:
        stuck = self._stuck.get(record)
        if stuck is not None and epoch < stuck.until:
            return stuck.value
        if self._rates.stuck and self._rng.random() < self._rates.stuck:
            minutes = self._rng.randint(*STUCK_MINUTES)
            self._stuck[record] = _Stuck(epoch + 60 * minutes, value)
            self._tally["stuck"] += 1
        return value


def spiked(record: str, value: Any, rng: random.Random) -> Any:
    """`value` turned into a spike: implausible, but of the right type and unit.

    Args:
        record: the SenML record name, which decides what a spike looks like.
        value: the true reading.
        rng: where the size of the spike comes from.

    Returns:
        The spiked reading.
    """
    sign = rng.choice((-1.0, 1.0))
    if record == "temp":
        return round(value + sign * rng.uniform(20.0, 40.0), 1)
    if record == "pressure":
        return round(value + sign * rng.uniform(40.0, 90.0), 1)
    if record == "rh":
        return 0.0 if value > 50.0 else 100.0
    if record.endswith("occupancy"):
        return 1.0 if value < 0.5 else 0.0
    if record.endswith("count"):
        return int(value * rng.uniform(5.0, 20.0)) + rng.randint(60, 300)
    return round(value * rng.uniform(5.0, 20.0) + rng.uniform(50.0, 300.0), 1)


@dataclass
class LinkState:
    """What a publisher remembers between minutes: an outage and what it buffered."""

    offline_until: int = 0
    buffered: list[list[dict[str, Any]]] = field(default_factory=list)
