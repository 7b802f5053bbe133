"""The ingest consumer: MQTT in, TimescaleDB out, acknowledgement only after commit.

One MQTT 5 session with a fixed client id survives restarts of either side: the broker keeps
what ingest has not acknowledged and sends it again. Messages are mapped as they arrive
into the current batch; a batch is flushed when it holds enough rows or is old enough; its
rows and rejects commit in one transaction; only then are its messages acknowledged, in the
order they arrived. The broker sends at most `receive_maximum` unacknowledged messages, so
memory stays bounded while the database is away: the backlog waits at the broker.

After a batch is acknowledged, the rows it newly stored go to the announcer
(ingest/notifications.py), which publishes them on the SensorThings MQTT topics on a
connection and a task of its own; no commit or acknowledgement waits for it.

Tasks (one asyncio TaskGroup): `ingest.registry` keeps the registry view current,
`ingest.mqtt` keeps the connection, `ingest.flush` writes and acknowledges,
`ingest.announce` publishes notifications. The process (ingest/service.py) adds
`ingest.metrics`, which serves /metrics and /healthz.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from core.database import connect
from core.pacing import jittered
from core.usage import OwnerTally
from ingest.batch import Batch
from ingest.mapping import Reject, Rules, map_message, sender_device
from ingest.metrics import IngestMetrics
from ingest.mqtt import BufferedClient, LoopDriver
from ingest.notifications import ObservationAnnouncer
from ingest.registry import RegistryWatch
from ingest.rejects import whole
from ingest.settings import IngestSettings
from ingest.writer import REFUSED_ROW_ERRORS, BatchWriter, Stored

log = logging.getLogger(__name__)



class Consumer:
    """Receives, batches, writes and acknowledges; see the module docstring."""

    def __init__(self, settings: IngestSettings, metrics: IngestMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.rules = Rules(settings.max_payload_bytes, settings.max_future_s)
        self.registry = RegistryWatch()
        self.generation = 0
        self.batch = Batch(self.generation)
        self.flush_at_messages = max(1, settings.receive_maximum // 2)
        self.stopping = asyncio.Event()
        self._full = asyncio.Event()
        self._disconnected = asyncio.Event()
        self._connected = False
        self._writer: BatchWriter | None = None
        self._db_ok = True
        self._accepted = False
        self._stale: list[Batch] = []
        self._committing = 0
        metrics.unacked.set_function(lambda: self.batch.messages + self._committing)
        self.published = OwnerTally()  # notifications, metered with the next batch
        self.announcer = (ObservationAnnouncer(settings, metrics, self.published)
                          if settings.notify_topics != "off" else None)
        if self.announcer is not None:
            self.announcer.restricted = lambda: self.registry.current.restricted
        self.client = self._make_client()

    def _make_client(self) -> BufferedClient:
        client = BufferedClient(
            CallbackAPIVersion.VERSION2, client_id=self.settings.mqtt_client_id,
            protocol=paho.MQTTv5, manual_ack=True,
        )
        login = self.settings.mqtt_login()
        if login is not None:
            client.username_pw_set(*login)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def healthy(self) -> bool:
        return self._connected and self._db_ok

    async def run(self) -> None:
        """Run until `stopping` is set, then drain and return."""
        LoopDriver(self.client)
        async with asyncio.TaskGroup() as tasks:
            background = [
                tasks.create_task(self.registry.run(self.settings.database_url, connect),
                                  name="ingest.registry"),
            ]
            if self.announcer is not None:
                background.append(tasks.create_task(self.announcer.run(),
                                                    name="ingest.announce"))
                await self.announcer.settle()
            if await self._first_of(self.registry.loaded, self.stopping) is self.stopping:
                for task in background:
                    task.cancel()
                return
            background.append(tasks.create_task(self._keep_connected(), name="ingest.mqtt"))
            await tasks.create_task(self._flush_forever(), name="ingest.flush")
            self._disconnect()
            if self.announcer is not None:
                await self.announcer.finish()
                await self._meter_last_notifications()
            for task in background:
                task.cancel()
        if self._writer is not None:
            await self._writer.conn.close()

    # --- MQTT ---------------------------------------------------------------------------

    async def _keep_connected(self) -> None:
        delay = 0.5
        while not self.stopping.is_set():
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = self.settings.session_expiry_s
            properties.ReceiveMaximum = self.settings.receive_maximum
            try:
                self.client.connect(self.settings.mqtt_host, self.settings.mqtt_port,
                                    keepalive=30, clean_start=False, properties=properties)
            except OSError as exc:
                log.warning("broker unreachable (%s); retrying in %.1f s", exc, delay,
                            extra={"action": "mqtt_unreachable"})
                await asyncio.sleep(jittered(delay))
                delay = min(delay * 2, 30)
                continue
            await self._disconnected.wait()
            self._disconnected.clear()
            if self._accepted:
                delay = 0.5
            self._accepted = False
            if not self.stopping.is_set():
                await asyncio.sleep(jittered(delay))
                delay = min(delay * 2, 30)

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason,
                      extra={"action": "mqtt_refused"})
            return
        # What the previous connection received is still committed, but never acknowledged
        # (its packet ids belong to that connection): if the broker kept the session it
        # sends those messages again and the repeats are skipped; if it lost the session,
        # the batch in hand is their last copy.
        if not self.batch.empty:
            self._stale.append(self.batch)
            self._full.set()
        self.generation += 1
        self.batch = Batch(self.generation)
        self._connected = True
        self._accepted = True
        # Retained messages are never readings (_reject_retained): none is sent on
        # subscribing, and one published live keeps its flag, so that it is seen as one.
        options = SubscribeOptions(qos=1, retainAsPublished=True,
                                   retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND)
        client.subscribe([(topic, options) for topic in self.settings.subscriptions])
        log.info("connected to the broker (session %s), subscribed to %s",
                 "resumed" if flags.session_present else "new",
                 ", ".join(self.settings.subscriptions), extra={"action": "mqtt_connected"})

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        self._connected = False
        self._disconnected.set()
        if not self.stopping.is_set():
            log.warning("disconnected from the broker: %s", reason,
                        extra={"action": "mqtt_disconnected"})

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        if self.stopping.is_set():
            return  # not acknowledged: the broker keeps it for the next run
        batch = self.batch
        if batch.empty:
            batch.started = time.monotonic()
        payload = bytes(message.payload)
        try:
            if message.retain:
                self._reject_retained(message.topic, payload, batch)
            else:
                map_message(message.topic, payload, time.time(), self.registry.current,
                            self.rules, batch.mapped)
        except Exception as exc:
            log.exception("could not map a message on %s", message.topic,
                          extra={"action": "map_failed"})
            batch.mapped.reject(whole(message.topic, payload, "internal",
                                      f"ingest could not process it: {exc!r}", time.time(),
                                      None, self.rules.reject_payload_bytes),
                                self.rules.budget)
        if message.qos > 0:
            batch.mids.append(message.mid)
        batch.messages += 1
        if batch.messages == 1:
            self._full.set()  # the batch's age starts now: the flusher sets its timer
        if batch.full(self.settings.batch_max_rows, self.flush_at_messages):
            self._full.set()

    def _reject_retained(self, topic: str, payload: bytes, batch: Batch) -> None:
        # The broker keeps a retained message and sends it again on every subscription,
        # where a relative time resolves anew: it is never a reading. The stack's broker
        # refuses them on these topics; another broker may not.
        batch.mapped.reject(whole(topic, payload, "retained", "published with the retain "
                                  "flag; a retained message is sent again on every "
                                  "subscription, so it is not taken as a reading",
                                  time.time(), sender_device(topic),
                                  self.rules.reject_payload_bytes),
                            self.rules.budget)

    def _disconnect(self) -> None:
        if self._connected:
            self.client.disconnect()

    # --- batches ------------------------------------------------------------------------

    async def _flush_forever(self) -> None:
        while True:
            await self._wait_for_batch()
            while self._stale:
                # Never acknowledged: see _on_connect.
                self._announce(await self._commit(self._stale.pop(0)))
            if self.stopping.is_set():
                await self._drain()
                return
            await self._flush()

    async def _wait_for_batch(self) -> None:
        while not self.stopping.is_set() and not self._stale:
            batch = self.batch
            full = batch.full(self.settings.batch_max_rows, self.flush_at_messages)
            remaining = self.settings.batch_max_age_s - batch.age()
            if full or (not batch.empty and remaining <= 0):
                return
            self._full.clear()
            await self._first_of(self._full, self.stopping,
                                 within=None if batch.empty else remaining)

    @staticmethod
    async def _first_of(*events: asyncio.Event, within: float | None = None) -> Any:
        """Wait for whichever event is set first (or `within` seconds); return it, or None."""
        waits = {asyncio.ensure_future(e.wait()): e for e in events}
        done, pending = await asyncio.wait(waits, timeout=within,
                                           return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return waits[next(iter(done))] if done else None

    async def _drain(self) -> None:
        """Flush what was received before the stop, within the drain timeout."""
        try:
            async with asyncio.timeout(self.settings.drain_timeout_s):
                await self._flush()
        except TimeoutError:
            log.warning("drain timed out; unacknowledged messages stay with the broker",
                        extra={"action": "drain_timeout"})

    async def _flush(self) -> None:
        batch, self.batch = self.batch, Batch(self.generation)
        if batch.empty:
            return
        # Counted per batch, not per message: the metrics take a lock on every update.
        self.metrics.messages.inc(batch.messages)
        self._committing = batch.messages
        stored = await self._commit(batch)
        if stored is not None:
            self._acknowledge(batch)
            self._announce(stored)
        self._committing = 0

    async def _commit(self, batch: Batch) -> Stored | None:
        """Write the batch, retrying while the database is away; what it stored, or None
        if it did not commit.

        It gives up only when the process is stopping: the batch's messages then stay
        unacknowledged, with the broker, for the next run.
        """
        delay = 0.1
        isolate = False
        refused: list[Reject] = []
        while True:
            try:
                writer = await self._connected_writer()
                started = time.monotonic()
                if isolate:
                    stored, refused = await writer.write_row_by_row(batch.mapped,
                                                                    self.rules.budget)
                else:
                    stored = await writer.write(batch.mapped)
                break
            except Exception as exc:  # noqa: BLE001 - sorted below; none may end the process
                if not isolate and isinstance(exc, REFUSED_ROW_ERRORS):
                    # Not the connection: some row is refused (a datastream deleted since
                    # the registry was read, say). Row by row, only that row is rejected.
                    log.warning("batch refused (%s); writing it row by row", exc,
                                extra={"action": "batch_isolating"})
                    isolate = True
                    continue
                self._db_ok = False
                self.metrics.write_failures.inc()
                if self.stopping.is_set():
                    log.warning("batch of %d rows not written at shutdown (%s); its messages "
                                "stay with the broker", batch.rows, exc,
                                extra={"action": "write_abandoned"})
                    return None
                log.warning("batch of %d rows not written (%s); retrying in %.1f s",
                            batch.rows, exc, delay, extra={"action": "write_retry"})
                await self._drop_writer()
                await asyncio.sleep(jittered(delay))
                delay = min(delay * 2, 5)
        self._db_ok = True
        self._record(batch, stored.count, refused, time.monotonic() - started)
        return stored

    def _record(self, batch: Batch, stored: int, refused: list[Reject], seconds: float) -> None:
        self.metrics.commit_seconds.observe(seconds)
        self.metrics.lag_seconds.observe(batch.age())
        self.metrics.batch_rows.observe(batch.rows)
        self.metrics.stored.inc(stored)
        refused_rows = sum(r.records for r in refused)
        self.metrics.duplicates.inc(batch.rows - refused_rows - stored)
        for code, n in (batch.mapped.refused_by_code() + Counter(database=refused_rows)).items():
            self.metrics.rejected.labels(code).inc(n)
        self.metrics.over_budget.inc(sum(s.messages for s in batch.mapped.over_budget.values()))
        log.debug("flushed %d rows (%d new), %d rejects, %d messages", batch.rows, stored,
                  len(batch.mapped.rejects) + refused_rows, batch.messages,
                  extra={"action": "batch_flushed"})

    def _announce(self, stored: Stored | None) -> None:
        """Hand the newly stored rows to the announcer; it publishes on a task of its own."""
        if stored is not None and self.announcer is not None:
            self.announcer.hand(stored.rows)

    def _acknowledge(self, batch: Batch) -> None:
        if batch.generation != self.generation:
            return  # that connection is gone; the broker sends these again
        for mid in batch.mids:
            self.client.ack(mid, 1)

    async def _connected_writer(self) -> BatchWriter:
        if self._writer is None or self._writer.conn.is_closed():
            conn = await connect(self.settings.database_url, wait=2)
            self._writer = BatchWriter(conn, self.settings.write_method,
                                       returning=self.announcer is not None,
                                       published=self.published,
                                       agency_of=lambda: self.registry.current.agency_of)
        return self._writer

    async def _meter_last_notifications(self) -> None:
        """Notifications published after the last batch are metered with none."""
        if not self.published.pending():
            return
        try:
            writer = await self._connected_writer()
            await writer.flush_usage()
        except Exception as exc:  # noqa: BLE001 - usage is not worth failing a shutdown
            log.warning("usage of the last notifications not written: %s", exc,
                        extra={"action": "usage_abandoned"})

    async def _drop_writer(self) -> None:
        if self._writer is not None:
            self._writer.conn.terminate()
            self._writer = None
