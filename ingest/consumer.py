"""The ingest consumer: MQTT in, TimescaleDB out, acknowledgement only after commit.

One MQTT 5 session with a fixed client id survives restarts of either side: the broker keeps
what ingest has not acknowledged and sends it again. Messages are mapped as they arrive
into the current batch; a batch is flushed when it holds enough rows or is old enough; its
rows and rejects commit in one transaction; only then are its messages acknowledged, in the
order they arrived. The broker sends at most `receive_maximum` unacknowledged messages, so
memory stays bounded while the database is away: the backlog waits at the broker.

Tasks of the process (one asyncio TaskGroup): `ingest.registry` keeps the registry view
current, `ingest.mqtt` keeps the connection, `ingest.flush` writes and acknowledges,
`ingest.metrics` serves /metrics and /healthz.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

import asyncpg
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from core.database import connect
from core.errors import CoreError
from ingest.batch import Batch
from ingest.mapping import Rules, map_message
from ingest.metrics import IngestMetrics
from ingest.mqtt import BufferedClient, LoopDriver
from ingest.registry import RegistryWatch
from ingest.settings import IngestSettings
from ingest.writer import BatchWriter

log = logging.getLogger(__name__)

# Failures that mean "the database is not there right now": retry the same batch.
CONNECTION_ERRORS = (
    OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError, CoreError, TimeoutError,
)


def jittered(delay: float) -> float:
    return delay * random.uniform(0.5, 1.5)


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
        self._committing = 0
        metrics.unacked.set_function(lambda: self.batch.messages + self._committing)
        self.client = self._make_client()

    def _make_client(self) -> BufferedClient:
        client = BufferedClient(
            CallbackAPIVersion.VERSION2, client_id=self.settings.mqtt_client_id,
            protocol=paho.MQTTv5, manual_ack=True,
        )
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
            await self.registry.loaded.wait()
            background.append(tasks.create_task(self._keep_connected(), name="ingest.mqtt"))
            await tasks.create_task(self._flush_forever(), name="ingest.flush")
            self._disconnect()
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
            delay = 0.5
            await self._disconnected.wait()
            self._disconnected.clear()
            if not self.stopping.is_set():
                await asyncio.sleep(jittered(delay))

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason,
                      extra={"action": "mqtt_refused"})
            return
        # Messages of the previous connection that were not committed are dropped here:
        # the broker sends them again, being unacknowledged.
        self.generation += 1
        self.batch = Batch(self.generation)
        self._connected = True
        client.subscribe([(topic, 1) for topic in self.settings.subscriptions])
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
        map_message(message.topic, bytes(message.payload), time.time(), self.registry.current,
                    self.rules, batch.mapped)
        if message.qos > 0:
            batch.mids.append(message.mid)
        batch.messages += 1
        if batch.rows >= self.settings.batch_max_rows or batch.messages >= self.flush_at_messages:
            self._full.set()

    def _disconnect(self) -> None:
        if self._connected:
            self.client.disconnect()

    # --- batches ------------------------------------------------------------------------

    async def _flush_forever(self) -> None:
        while True:
            await self._wait_for_batch()
            if self.stopping.is_set():
                await self._drain()
                return
            await self._flush()

    async def _wait_for_batch(self) -> None:
        while not self.stopping.is_set():
            batch = self.batch
            full = (batch.rows >= self.settings.batch_max_rows
                    or batch.messages >= self.flush_at_messages)
            remaining = self.settings.batch_max_age_s - batch.age()
            if full or (not batch.empty and remaining <= 0):
                return
            self._full.clear()
            stop = asyncio.ensure_future(self.stopping.wait())
            full_wait = asyncio.ensure_future(self._full.wait())
            await asyncio.wait([stop, full_wait], timeout=max(remaining, 0.005),
                               return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            full_wait.cancel()

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
        await self._commit(batch)
        self._acknowledge(batch)

    async def _commit(self, batch: Batch) -> None:
        delay = 0.1
        while True:
            try:
                writer = await self._connected_writer()
                started = time.monotonic()
                stored = await writer.write(batch.mapped)
            except asyncpg.PostgresError as exc:
                if isinstance(exc, CONNECTION_ERRORS):
                    raise
                # Not the connection: some row is refused (a datastream deleted since the
                # registry was read, say). Write row by row so only that row is rejected.
                log.warning("batch refused (%s); writing it row by row", exc,
                            extra={"action": "batch_isolating"})
                stored = await writer.write_row_by_row(batch.mapped)
            except CONNECTION_ERRORS as exc:
                self._db_ok = False
                self.metrics.write_failures.inc()
                log.warning("batch of %d rows not written (%s); retrying in %.1f s",
                            batch.rows, exc, delay, extra={"action": "write_retry"})
                await self._drop_writer()
                await asyncio.sleep(jittered(delay))
                delay = min(delay * 2, 5)
                continue
            break
        self._db_ok = True
        now = time.monotonic()
        self.metrics.commit_seconds.observe(now - started)
        self.metrics.lag_seconds.observe(now - batch.started)
        self.metrics.batch_rows.observe(batch.rows)
        self.metrics.stored.inc(stored)
        self.metrics.duplicates.inc(batch.rows - stored)
        for reject in batch.mapped.rejects:
            self.metrics.rejected.labels(reject.code).inc()
        log.debug("flushed %d rows (%d new), %d rejects, %d messages", batch.rows, stored,
                  len(batch.mapped.rejects), batch.messages, extra={"action": "batch_flushed"})

    def _acknowledge(self, batch: Batch) -> None:
        self._committing = 0
        if batch.generation != self.generation:
            return  # that connection is gone; the broker sends these again
        for mid in batch.mids:
            self.client.ack(mid, 1)

    async def _connected_writer(self) -> BatchWriter:
        if self._writer is None or self._writer.conn.is_closed():
            conn = await connect(self.settings.database_url, wait=2)
            self._writer = BatchWriter(conn, self.settings.write_method)
        return self._writer

    async def _drop_writer(self) -> None:
        if self._writer is not None:
            self._writer.conn.terminate()
            self._writer = None
