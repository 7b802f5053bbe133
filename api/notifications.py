"""The API's side of the SensorThings MQTT extension's notifications: the notifier the
write path hands its committed changes to (`app.state.notifier`).

Changes that concern a restricted Datastream (the Datastream, or one of its Observations)
are confined to that Datastream's own topics (core/notify.py). Whether a Datastream is
restricted is read at notification time on a connection of the notifier's own, as the
stack's database user, so row-level security of the request does not hide it; when that
read fails, such changes are not published at all rather than published everywhere.

`$select` topics (`v1.1/Things?$select=name`) are published while someone is subscribed
to them: a watcher follows the broker's log of subscriptions on `$SYS/broker/log/...`
(core/subscriptions.py), which the stack's broker publishes and lets only the API's
account read.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any

import aiomqtt
import asyncpg

from api.settings import ApiSettings
from core.mqtt_publish import Publisher
from core.notify import Change, MqttNotifier, Notifier, NullNotifier, mqtt_notifier
from core.pacing import reconnecting
from core.queries import query
from core.subscriptions import LOG_TOPICS, Subscriptions
from core.usage import OwnerTally

log = logging.getLogger(__name__)

# Changes whose topics depend on a Datastream's access.
GUARDED = ("Datastreams", "Observations")


class ConfiningNotifier(MqttNotifier):
    """An MqttNotifier that confines the changes of restricted Datastreams first."""

    def __init__(self, publisher: Publisher, prefix: str, database_url: str,
                 published: OwnerTally | None = None,
                 subscriptions: Subscriptions | None = None) -> None:
        super().__init__(publisher, prefix, published, subscriptions)
        self.watcher: SubscriptionWatcher | None = None
        self.database_url = database_url
        self._pool: Any = None
        # Writes notify concurrently: the first ones must not each make a pool.
        self._pool_lock = asyncio.Lock()

    async def notify(self, changes: Sequence[Change]) -> None:
        if not any(c.entity_set in GUARDED for c in changes):
            await super().notify(changes)
            return
        try:
            confined = await self.confine(changes)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("cannot tell which Datastreams are restricted (%s); their changes "
                        "are not announced", exc, extra={"action": "notify_access_unknown"})
            confined = [c for c in changes if c.entity_set not in GUARDED]
        await super().notify(confined)

    async def confine(self, changes: Sequence[Change]) -> list[Change]:
        """`changes` with `confined_to` set on those of restricted Datastreams."""
        datastream_of = {id(c): _datastream(c) for c in changes if c.entity_set in GUARDED}
        unknown = [c.id for c in changes
                   if c.entity_set == "Observations" and datastream_of[id(c)] is None]
        pool = await self._connected()
        async with pool.acquire() as conn:
            looked_up = ({r["id"]: r["datastream_id"] for r in await conn.fetch(
                query("notify", "observation_datastreams"), unknown)} if unknown else {})
            for c in changes:
                if c.entity_set == "Observations" and datastream_of[id(c)] is None:
                    datastream_of[id(c)] = looked_up.get(c.id)
            ids = sorted({d for d in datastream_of.values() if d is not None})
            restricted = {r["id"] for r in await conn.fetch(
                query("notify", "restricted_among"), ids)}
        out = []
        for c in changes:
            ds = datastream_of.get(id(c))
            if c.entity_set == "Observations" and ds is None:
                continue  # gone since: nothing to tell whose it was
            out.append(dataclasses.replace(c, confined_to=ds) if ds in restricted else c)
        return out

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    async def _connected(self) -> Any:
        async with self._pool_lock:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(self.database_url, min_size=0,
                                                       max_size=2)
        return self._pool


class SubscriptionWatcher:
    """Follows the broker's log of connections and subscriptions into `subscriptions`,
    reconnecting with jittered exponential backoff."""

    def __init__(self, settings: ApiSettings, subscriptions: Subscriptions) -> None:
        self.settings = settings
        self.subscriptions = subscriptions
        self.ready = asyncio.Event()  # subscribed to the log; tests wait for it

    async def run(self) -> None:
        """Watch until cancelled."""
        await reconnecting(self._session, log, "following the broker's subscriptions",
                           "subscriptions", self._lost)

    def _lost(self) -> None:
        self.ready.clear()
        self.subscriptions.reconnected()

    async def _session(self) -> None:
        login = self.settings.mqtt_login()
        async with aiomqtt.Client(
                self.settings.mqtt_host, self.settings.mqtt_port,
                identifier=f"{self.settings.mqtt_client_id}-subscriptions-"
                           f"{secrets.token_hex(3)}",
                username=login[0] if login else None,
                password=login[1] if login else None) as client:
            for topic in LOG_TOPICS:
                await client.subscribe(topic, qos=1)
            self.ready.set()
            async for message in client.messages:
                if isinstance(message.payload, bytes | str):
                    self.subscriptions.heard(str(message.topic), message.payload)


def _datastream(change: Change) -> int | None:
    if change.entity_set == "Datastreams":
        return change.id
    return next((pid for pset, pid in change.parents if pset == "Datastreams"), None)


@asynccontextmanager
async def notifier(settings: ApiSettings,
                   published: OwnerTally | None = None) -> AsyncIterator[Notifier]:
    """A notifier publishing on the settings' broker while the context lasts; one that
    publishes nothing when the MQTT extension is off."""
    if not settings.mqtt_enabled:
        yield NullNotifier()
        return
    async with mqtt_notifier(settings.mqtt_host, settings.mqtt_port,
                             f"{settings.mqtt_client_id}-notify",
                             settings.topic_prefix, login=settings.mqtt_login(),
                             published=published) as mqtt:
        subscriptions = Subscriptions()
        confining = ConfiningNotifier(mqtt.publisher, mqtt.prefix, settings.database_url,
                                      mqtt.published, subscriptions)
        confining.watcher = SubscriptionWatcher(settings, subscriptions)
        watching = asyncio.create_task(confining.watcher.run(), name="api.subscriptions")
        try:
            yield confining
        finally:
            watching.cancel()
            with suppress(asyncio.CancelledError):
                await watching
            await confining.close()
