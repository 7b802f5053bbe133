"""Announcing stored readings on the SensorThings MQTT topics.

After a batch has committed and its messages are acknowledged, the rows it newly stored are
handed over here; a task of their own encodes each as the Observation a GET answers and
publishes it, in commit order, on `v1.1/Datastreams({id})/Observations` and, with the
topics setting "all", on `v1.1/Observations` and `v1.1/FeaturesOfInterest({id})/Observations`
too. A reading of a restricted Datastream goes out on its Datastream's topic only, which the
broker lets only the owning agency read. No commit or acknowledgement waits for it: while a
backlog drains faster than it can be announced, the announcements fall behind, up to
`MAX_PENDING_ROWS` readings; past that, and while the broker is away or stalled,
notifications are dropped and counted.
docs/mqtt.md describes the contract.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Container
from datetime import datetime
from typing import Any

import msgspec

from core import notify
from core.mqtt_publish import LOG_EVERY_S, Publisher
from core.pacing import ThrottledWarning
from core.usage import OwnerTally
from ingest.metrics import IngestMetrics
from ingest.settings import IngestSettings

log = logging.getLogger(__name__)

# Rows encoded and written at a time: the receiving side gets its turn in between.
CHUNK_ROWS = 2_500
# Rows waiting to be announced beyond which a newly committed batch is not announced: about
# 60 MB of returned rows, two of the largest batches (half the receive window of 10-record
# messages each).
MAX_PENDING_ROWS = 200_000
# How long a congested broker may hold up a chunk before its messages are dropped.
BROKER_WAIT_S = 0.5


class ObservationJson(msgspec.Struct):
    """An Observation as GET /v1.1/Observations({id}) answers it (api/entities.py)."""

    id: int = msgspec.field(name="@iot.id")
    self_link: str = msgspec.field(name="@iot.selfLink")
    phenomenon_time: datetime = msgspec.field(name="phenomenonTime")
    result_time: None = msgspec.field(name="resultTime")
    result: Any
    datastream_link: str = msgspec.field(name="Datastream@iot.navigationLink")
    feature_link: str = msgspec.field(name="FeatureOfInterest@iot.navigationLink")


class ObservationAnnouncer:
    """Publishes the Observations of committed batches; see the module docstring."""

    def __init__(self, settings: IngestSettings, metrics: IngestMetrics,
                 published: OwnerTally | None = None) -> None:
        self.published = published or OwnerTally()  # metered per Datastream's agency
        self.base = settings.api_url.rstrip("/")
        self.prefix = settings.topic_prefix
        self.every_topic = settings.notify_topics == "all"
        self.metrics = metrics
        self.publisher = Publisher(settings.notify_host, settings.notify_port,
                                   f"{settings.mqtt_client_id}-notify",
                                   login=settings.mqtt_login())
        metrics.notify_connected.set_function(lambda: self.publisher.connected.is_set())
        self._pending: deque[list[Any]] = deque()
        self._pending_rows = 0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._encode = msgspec.json.Encoder().encode
        # The restricted Datastreams of the current registry view (the consumer sets it).
        self.restricted: Callable[[], Container[int]] = frozenset
        self._all_topic = self.prefix + notify.entity_set_topic("Observations")
        self._datastream_topics: dict[int, str] = {}
        self._feature_topics: dict[int, str] = {}
        self._behind_warning = ThrottledWarning(
            log, "%d readings not announced: notifications fall behind%s", "notify_behind",
            LOG_EVERY_S)

    def hand(self, rows: list[Any]) -> None:
        """Queue the rows a batch newly stored (rows of BatchWriter's RETURNING)."""
        if not rows:
            return
        if self._pending_rows + len(rows) > MAX_PENDING_ROWS:
            self._behind(rows)
            return
        self._pending.append(rows)
        self._pending_rows += len(rows)
        self._idle.clear()
        self._wake.set()

    async def run(self) -> None:
        """Keep the broker connection and publish what is handed over; until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.publisher.run(), name="ingest.notify.mqtt")
            tasks.create_task(self._publish_forever(), name="ingest.notify")

    async def settle(self, within: float = 2.0) -> None:
        """Wait (at most `within` seconds) for the first attempt to reach the broker."""
        try:
            async with asyncio.timeout(within):
                await self.publisher.settled.wait()
        except TimeoutError:
            pass

    async def finish(self, within: float = 2.0) -> None:
        """Publish what is queued (for at most `within` seconds), then disconnect."""
        try:
            async with asyncio.timeout(within):
                await self._idle.wait()
        except TimeoutError:
            log.warning("%d readings not announced at shutdown", self._pending_rows,
                        extra={"action": "notify_abandoned"})
        await self.publisher.close()

    def messages(self, rows: list[Any]) -> list[tuple[str, bytes]]:
        """The (topic, payload) messages announcing `rows`."""
        out: list[tuple[str, bytes]] = []
        base, encode, every = self.base, self._encode, self.every_topic
        restricted = self.restricted()
        for id, datastream, feature, at, number, integer, string, boolean in rows:
            link = f"{base}/Observations({id})"
            result = (number if number is not None else integer if integer is not None
                      else string if string is not None else boolean)
            payload = encode(ObservationJson(id, link, at, None, result, link + "/Datastream",
                                             link + "/FeatureOfInterest"))
            out.append((self._datastream_topics.get(datastream)
                        or self._datastream_topic(datastream), payload))
            if every and datastream not in restricted:
                out.append((self._all_topic, payload))
                if feature is not None:
                    out.append((self._feature_topics.get(feature)
                                or self._feature_topic(feature), payload))
        return out

    async def _publish_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                rows = self._pending.popleft()
                started = time.perf_counter()
                for at in range(0, len(rows), CHUNK_ROWS):
                    await self.publisher.room(BROKER_WAIT_S)
                    self._publish(rows[at:at + CHUNK_ROWS])
                    await asyncio.sleep(0)  # receiving and writing get their turn
                self._pending_rows -= len(rows)
                self.metrics.notify_seconds.observe(time.perf_counter() - started)
            self._idle.set()

    def _publish(self, rows: list[Any]) -> None:
        try:
            out = self.messages(rows)
        except Exception:  # a notification must never stop ingest
            log.exception("could not encode notifications", extra={"action": "notify_failed"})
            return
        sent = self.publisher.publish(out)
        if sent:  # all or none
            self.published.add_datastreams(
                _messages_per_datastream(rows, self.every_topic, self.restricted()))
        self.metrics.notifications.inc(sent)
        if sent < len(out):
            self.metrics.notify_dropped.inc(len(out) - sent)

    def _datastream_topic(self, datastream: int) -> str:
        topic = self.prefix + notify.navigation_topic("Datastreams", datastream, "Observations")
        self._datastream_topics[datastream] = topic
        return topic

    def _feature_topic(self, feature: int) -> str:
        topic = self.prefix + notify.navigation_topic("FeaturesOfInterest", feature,
                                                      "Observations")
        self._feature_topics[feature] = topic
        return topic

    def _behind(self, rows: list[Any]) -> None:
        messages = len(rows)
        if self.every_topic:
            messages += len(rows) + sum(1 for r in rows if r[2] is not None)
        self.metrics.notify_dropped.inc(messages)
        self._behind_warning.add(len(rows))


def _messages_per_datastream(rows: list[Any], every_topic: bool,
                             restricted: Container[int]) -> Counter[int]:
    """How many messages `messages` makes for each Datastream's rows (for metering)."""
    counts: Counter[int] = Counter()
    for row in rows:
        everywhere = every_topic and row[1] not in restricted
        counts[row[1]] += 1 if not everywhere else 3 if row[2] is not None else 2
    return counts
