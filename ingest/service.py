"""Running an ingest process: signals, metrics endpoint, the consumer."""

from __future__ import annotations

import asyncio
import logging
import signal

from core.database import redact
from ingest.consumer import Consumer
from ingest.metrics import IngestMetrics, serve
from ingest.settings import IngestSettings

log = logging.getLogger(__name__)


async def run(settings: IngestSettings) -> None:
    """Ingest until SIGTERM or SIGINT, then stop intake, flush, acknowledge and return.

    Args:
        settings: broker, database and batching settings, built once by the caller.
    """
    metrics = IngestMetrics()
    consumer = Consumer(settings, metrics)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, consumer.stopping.set)
    server = asyncio.create_task(serve(metrics, consumer.healthy, settings.ingest_metrics_port),
                                 name="ingest.metrics")

    def metrics_ended(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("metrics endpoint failed: %s; stopping", task.exception(),
                      extra={"action": "metrics_failed"})
            consumer.stopping.set()

    server.add_done_callback(metrics_ended)
    log.info("ingest starting: %s → %s, batches of %d rows or %.0f ms, notifications %s",
             ", ".join(settings.subscriptions), redact(settings.database_url),
             settings.batch_max_rows, settings.batch_max_age_s * 1000, settings.notify_topics,
             extra={"action": "ingest_starting"})
    try:
        await consumer.run()
    finally:
        server.cancel()
        log.info("ingest stopped", extra={"action": "ingest_stopped"})
