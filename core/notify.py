"""Change notifications of the SensorThings MQTT extension: what changed, and the topics
that tell subscribers about it.

Ingest and the API describe each committed change as a `Change`; a `Notifier` publishes it
on the standard's topics after the commit. This module holds the description, the topic
rules, and the notifier that publishes through core/mqtt_publish.py.

The topics (OGC 18-088, "Receive updates via MQTT"), before each of which the process's
topic prefix goes:

- `v1.1/{set}`: an entity added to the set (a creation), as a GET of it answers;
- `v1.1/{parent set}({id})/{set}`: an entity added to a parent's collection, e.g.
  `v1.1/Datastreams(5)/Observations`; the navigation property of every collection in the
  data model is named after the entity set it holds;
- `v1.1/{set}({id})`: an entity updated, as a GET of it answers;
- `v1.1/{set}({id})/{property}`: a property an update changed, as `{"property": value}`.

`v1.1/{set}?$select=…` is not served: the server would have to know what clients
subscribed to, which an external broker does not tell (docs/mqtt.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from core.mqtt_publish import Publisher

log = logging.getLogger(__name__)

VERSION = "v1.1"

_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class Change:
    """One committed creation or update of an entity.

    Attributes:
        entity_set: the entity set, e.g. "Observations".
        id: the entity's @iot.id.
        body: the entity as a GET of it answers (with @iot.id and @iot.selfLink).
        parents: (entity set, id) of each entity whose collection now holds this one, e.g.
            (("Datastreams", 5), ("FeaturesOfInterest", 7)) for a new Observation; for an
            update, only the collections it joined by the update.
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


def entity_set_topic(entity_set: str) -> str:
    return f"{VERSION}/{entity_set}"


def entity_topic(entity_set: str, id: int) -> str:
    return f"{VERSION}/{entity_set}({id})"


def property_topic(entity_set: str, id: int, name: str) -> str:
    return f"{VERSION}/{entity_set}({id})/{name}"


def navigation_topic(parent_set: str, parent_id: int, entity_set: str) -> str:
    return f"{VERSION}/{parent_set}({parent_id})/{entity_set}"


def messages(change: Change, prefix: str = "") -> list[tuple[str, bytes]]:
    """The (topic, JSON payload) messages that announce `change`.

    Args:
        change: a committed creation or update.
        prefix: goes before every topic ("" in production).

    Returns:
        For a creation the entity set topic, for an update the entity topic and a property
        topic per changed property that the body holds (a navigation property has none);
        for both, the collection topic of each parent.
    """
    body = _encode(change.body)
    if change.changed is None:
        out = [(prefix + entity_set_topic(change.entity_set), body)]
    else:
        out = [(prefix + entity_topic(change.entity_set, change.id), body)]
        out += [(prefix + property_topic(change.entity_set, change.id, name),
                 _encode({name: change.body[name]}))
                for name in change.changed if name in change.body]
    out += [(prefix + navigation_topic(parent_set, parent_id, change.entity_set), body)
            for parent_set, parent_id in change.parents]
    return out


class MqttNotifier:
    """Publishes changes at QoS 0 through a Publisher; drops them while the broker is away."""

    def __init__(self, publisher: Publisher, prefix: str) -> None:
        self.publisher = publisher
        self.prefix = prefix

    async def notify(self, changes: Sequence[Change]) -> None:
        try:
            out = [m for change in changes for m in messages(change, self.prefix)]
        except Exception:  # a notification must never fail the write
            log.exception("could not encode a change notification",
                          extra={"action": "notify_encode_failed"})
            return
        self.publisher.publish(out)


@contextlib.asynccontextmanager
async def mqtt_notifier(host: str, port: int, client_id: str, prefix: str,
                        settle_s: float = 2.0) -> AsyncIterator[MqttNotifier]:
    """A notifier connected to the broker at `host`:`port` while the context lasts.

    It waits up to `settle_s` for the first connection attempt, so that the first changes
    are not lost to the handshake; a broker that is away does not hold the caller up longer.
    """
    publisher = Publisher(host, port, client_id)
    task = asyncio.create_task(publisher.run(), name="notify.mqtt")
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(settle_s):
                await publisher.settled.wait()
        yield MqttNotifier(publisher, prefix)
    finally:
        await publisher.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
