"""Change notifications of the SensorThings MQTT extension: what changed, and the topics
that tell subscribers about it.

Ingest and the API describe each committed change as a `Change`; a `Notifier` publishes it
on the standard's topics after the commit. This module holds the description, the topic
rules, and the notifier that publishes through core/mqtt_publish.py.

The topics (OGC 18-088, "Receive updates via MQTT"), before each of which the process's
topic prefix goes:

- `v1.1/{set}`: an entity of the set created or updated, as a GET of it answers;
- `v1.1/{parent set}({id})/{set}`: an entity of a parent's collection created or updated,
  e.g. `v1.1/Datastreams(5)/Observations`; the navigation property of every collection in
  the data model is named after the entity set it holds;
- `v1.1/{set}({id})`: an entity updated, as a GET of it answers;
- `v1.1/{set}({id})/{property}`: a property an update changed, as `{"property": value}`;
- `v1.1/{set}?$select=a,b` and `v1.1/{parent set}({id})/{set}?$select=a,b`: as the
  collection topic, the entity with only the selected properties; published only while
  someone is subscribed to it (core/subscriptions.py), and for an update only when it
  changed a selected property.

A change to a restricted Datastream, or to one of its Observations, is published only on the
topics under `v1.1/Datastreams({id})` (the entity, its properties, its Observations), which
the broker's ACL lets only that Datastream's agency read; never on the collection topics
that everyone reads (`Change.confined_to`, `confined`).

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
from core.subscriptions import SELECT, Subscriptions
from core.usage import OwnerTally, owner_of

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
        parents: (entity set, id) of each entity whose collection holds this one, e.g.
            (("Datastreams", 5), ("FeaturesOfInterest", 7)) for an Observation.
        changed: the properties an update changed; None for a creation.
        confined_to: the restricted Datastream this change is about (the Datastream itself,
            or the Datastream of an Observation): it goes out only on that Datastream's
            topics. None for everything else.
    """

    entity_set: str
    id: int
    body: dict[str, Any]
    parents: tuple[tuple[str, int], ...] = ()
    changed: tuple[str, ...] | None = None
    confined_to: int | None = None


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


def confined(topic: str, datastream_id: int) -> bool:
    """Whether `topic` (without prefix) is one of a Datastream's own topics:
    `v1.1/Datastreams({id})` or a topic under it."""
    own = entity_topic("Datastreams", datastream_id)
    return topic == own or topic.startswith(own + "/")


def messages(change: Change, prefix: str = "",
             subscriptions: Subscriptions | None = None) -> list[tuple[str, bytes]]:
    """The (topic, JSON payload) messages that announce `change`.

    Args:
        change: a committed creation or update.
        prefix: goes before every topic ("" in production).
        subscriptions: the `$select` topics clients are subscribed to; None for none.

    Returns:
        For an update the entity topic and a property topic per changed property that the
        body holds (a navigation property has none); for both, the entity set topic and
        the collection topic of each parent, and the subscribed `$select` topics of these.
        Of a confined change, only those under its Datastream's topic.
    """
    body = _encode(change.body)
    out: list[tuple[str, bytes]] = []
    if change.changed is not None:
        out.append((prefix + entity_topic(change.entity_set, change.id), body))
        out += [(prefix + property_topic(change.entity_set, change.id, name),
                 _encode({name: change.body[name]}))
                for name in change.changed if name in change.body]
    collections = [prefix + entity_set_topic(change.entity_set)]
    collections += [prefix + navigation_topic(parent_set, parent_id, change.entity_set)
                    for parent_set, parent_id in change.parents]
    out += [(topic, body) for topic in collections]
    if subscriptions is not None:
        out += _selections(change, collections, subscriptions)
    if change.confined_to is not None:
        out = [(topic, payload) for topic, payload in out
               if confined(topic[len(prefix):].split(SELECT)[0], change.confined_to)]
    return out


def selected(body: dict[str, Any], props: Sequence[str]) -> dict[str, Any]:
    """`body` with only the properties `props` names, as `$select` has them: `id` is
    `@iot.id` and `@iot.selfLink`, a navigation property its navigation link."""
    keys = set(props)
    if "id" in keys:
        keys |= {"@iot.id", "@iot.selfLink"}
    keys |= {f"{name}@iot.navigationLink" for name in props}
    return {k: v for k, v in body.items() if k in keys}


def _selections(change: Change, collections: list[str],
                subscriptions: Subscriptions) -> list[tuple[str, bytes]]:
    out = []
    for base in collections:
        for topic, props in subscriptions.selected(base).items():
            if change.changed is not None and not set(props) & set(change.changed):
                continue  # nothing it selected has changed
            body = selected(change.body, props)
            if body:
                out.append((topic, _encode(body)))
    return out


class MqttNotifier:
    """Publishes changes at QoS 0 through a Publisher; drops them while the broker is away."""

    def __init__(self, publisher: Publisher, prefix: str,
                 published: OwnerTally | None = None,
                 subscriptions: Subscriptions | None = None) -> None:
        self.publisher = publisher
        self.prefix = prefix
        self.published = published or OwnerTally()  # metered per owner's agency
        # The `$select` topics someone is subscribed to, when the broker tells them.
        self.subscriptions = subscriptions

    async def notify(self, changes: Sequence[Change]) -> None:
        try:
            each = [messages(change, self.prefix, self.subscriptions) for change in changes]
        except Exception:  # a notification must never fail the write
            log.exception("could not encode a change notification",
                          extra={"action": "notify_encode_failed"})
            return
        if self.publisher.publish([m for made in each for m in made]):  # all or none
            for change, made in zip(changes, each, strict=True):
                self.published.add(owner_of(change.entity_set, change.id, change.parents),
                                   len(made))


@contextlib.asynccontextmanager
async def mqtt_notifier(host: str, port: int, client_id: str, prefix: str,
                        settle_s: float = 2.0, login: tuple[str, str] | None = None,
                        published: OwnerTally | None = None,
                        ) -> AsyncIterator[MqttNotifier]:
    """A notifier connected to the broker at `host`:`port` while the context lasts.

    It waits up to `settle_s` for the first connection attempt, so that the first changes
    are not lost to the handshake; a broker that is away does not hold the caller up longer.
    """
    publisher = Publisher(host, port, client_id, login=login)
    task = asyncio.create_task(publisher.run(), name="notify.mqtt")
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(settle_s):
                await publisher.settled.wait()
        yield MqttNotifier(publisher, prefix, published)
    finally:
        await publisher.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
