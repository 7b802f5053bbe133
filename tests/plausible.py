"""Readings a simulation publishes, against the plausible ranges of the catalogue."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from core import senml
from devices.catalogue import PLAUSIBLE, model
from devices.fleet import Fleet
from devices.models import Plausible
from simulators.simulation import Message

PREFIX = "urn:dev:"


def ranges_by_name(fleet: Fleet) -> dict[str, Plausible]:
    """The plausible range of every datastream of `fleet`, by resolved SenML name."""
    return {f"{PREFIX}{d.device_id}:{s.record}": PLAUSIBLE[s.observed_property.key]
            for d in fleet.devices for s in model(d.model).streams(d).values()}


def readings(messages: Iterable[Message]) -> Iterator[tuple[str, float]]:
    """(resolved name, value) of every numeric reading in `messages`."""
    for message in messages:
        for entry in senml.decode(message.payload, 0.0):
            assert isinstance(entry, senml.Resolved), entry
            assert isinstance(entry.value, int | float)
            yield entry.name, entry.value


def outside(messages: Iterable[Message], ranges: dict[str, Plausible]) -> list[tuple[str, float]]:
    """The readings of `messages` outside their plausible range."""
    return [(name, value) for name, value in readings(messages) if value not in ranges[name]]
