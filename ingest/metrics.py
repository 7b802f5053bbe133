"""Prometheus metrics of an ingest process, and the small HTTP server that serves them
(/metrics) with a health check (/healthz)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
NOTIFY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)


class IngestMetrics:
    """The metrics one ingest process exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages = Counter("stadspuls_ingest_messages_received_total",
                                "MQTT messages received", registry=r)
        self.stored = Counter("stadspuls_ingest_records_stored_total",
                              "Readings newly stored (redeliveries not counted)", registry=r)
        self.duplicates = Counter("stadspuls_ingest_records_duplicate_total",
                                  "Readings skipped because they were stored before",
                                  registry=r)
        self.rejected = Counter("stadspuls_ingest_rejected_total",
                                "Messages or records rejected, by code", ["code"],
                                registry=r)
        self.over_budget = Counter("stadspuls_ingest_rejects_over_budget_total",
                                   "Rejected messages counted in their sender's over_budget "
                                   "row instead of kept one by one", registry=r)
        self.batch_rows = Histogram("stadspuls_ingest_batch_rows", "Readings per batch",
                                    buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10000, 50000),
                                    registry=r)
        self.commit_seconds = Histogram("stadspuls_ingest_commit_seconds",
                                        "Time to write and commit one batch",
                                        buckets=LATENCY_BUCKETS, registry=r)
        self.lag_seconds = Histogram("stadspuls_ingest_receive_to_commit_seconds",
                                     "From a message's arrival to its batch's commit",
                                     buckets=LATENCY_BUCKETS, registry=r)
        self.unacked = Gauge("stadspuls_ingest_unacknowledged_messages",
                             "Messages received and not yet acknowledged", registry=r)
        self.write_failures = Counter("stadspuls_ingest_write_failures_total",
                                      "Batches that failed to commit and were retried",
                                      registry=r)
        self.notifications = Counter("stadspuls_ingest_notifications_published_total",
                                     "MQTT notifications of stored readings written to the "
                                     "broker", registry=r)
        self.notify_dropped = Counter("stadspuls_ingest_notifications_dropped_total",
                                      "Notifications not published: broker away, too slow, "
                                      "or ingest behind", registry=r)
        self.notify_seconds = Histogram("stadspuls_ingest_notify_seconds",
                                        "Time to encode and write one batch's notifications",
                                        buckets=NOTIFY_BUCKETS, registry=r)
        self.notify_connected = Gauge("stadspuls_ingest_notify_connected",
                                      "1 while the notification connection is up", registry=r)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


async def serve(metrics: IngestMetrics, healthy: Callable[[], bool], port: int) -> None:
    """Serve /metrics and /healthz on 127.0.0.1:`port` until cancelled."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readline()
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            path = request.split(b" ")[1] if request.count(b" ") >= 2 else b""
            if path == b"/metrics":
                status, ctype, body = "200 OK", CONTENT_TYPE_LATEST, metrics.exposition()
            elif path == b"/healthz":
                ok = healthy()
                status = "200 OK" if ok else "503 Service Unavailable"
                ctype, body = "text/plain", b"ok\n" if ok else b"unhealthy\n"
            else:
                status, ctype, body = "404 Not Found", "text/plain", b"not found\n"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
            )
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    log.info("metrics on http://127.0.0.1:%d/metrics", port, extra={"action": "metrics_listening"})
    async with server:
        await server.serve_forever()
