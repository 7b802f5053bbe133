"""Change notifications of the SensorThings MQTT extension: what changed, and the topics
that tell subscribers about it.

Ingest and the API describe each committed change as a `Change`; a `Notifier` publishes it
on the standard's topics after the commit. This module holds the description and the
topic rules; the publishing client lives beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Change:
    """One committed creation or update of an entity.

    Attributes:
        entity_set: the entity set, e.g. "Observations".
        id: the entity's @iot.id.
        body: the entity as a GET of it answers (with @iot.id and @iot.selfLink).
        parents: (entity set, id) of each entity whose collection now holds this one, e.g.
            (("Datastreams", 5), ("FeaturesOfInterest", 7)) for a new Observation.
        changed: the properties an update changed; None for a creation.
    """

    entity_set: str
    id: int
    body: dict[str, Any]
    parents: tuple[tuple[str, int], ...] = ()
    changed: tuple[str, ...] | None = None


class Notifier(Protocol):
    """Publishes committed changes. It never raises: a broker that is away costs
    notifications, which are logged and counted, never the write that caused them."""

    async def notify(self, changes: Sequence[Change]) -> None: ...


class NullNotifier:
    """Publishes nothing (no broker configured)."""

    async def notify(self, changes: Sequence[Change]) -> None:
        return None
