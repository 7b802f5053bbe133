"""Nothing lost, nothing doubled: lost acknowledgements, a killed ingest process, a database
that goes away under load, and a drained shutdown."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from core.database import connect
from deploy.ports import free_port, http_ok
from deploy.settings import StackSettings
from deploy.stack import LocalStack
from deploy.system import Postgres
from devices.fleet import stockholm
from devices.provision import provision
from ingest.batch import Batch
from ingest.consumer import Consumer
from ingest.settings import IngestSettings
from simulators.load import LoadPlan, publish
from tests.integration.conftest import Publisher, eventually, metric, start_consumer, stop_consumer

STATIONS = ["aq-hornsgatan-108", "aq-sveavagen-59", "aq-lilla-essingen",
            "aq-torkel-knutssonsgatan"]


async def count(db: Any) -> int:
    return int(await db.fetchval("SELECT count(*) FROM observations"))


async def wait_count(db: Any, n: int, within: float = 60) -> None:
    async def reached() -> bool:
        return await count(db) >= n

    await eventually(reached, within)


async def healthy(port: int) -> bool:
    return await asyncio.to_thread(http_ok, port, "/healthz")


async def ingest_process(settings: IngestSettings, log: Path) -> subprocess.Popen[bytes]:
    """`stadspuls ingest` in a subprocess, once it reports healthy (subscribed)."""
    args = [sys.executable, "-m", "deploy", *settings.command()]
    with log.open("ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    await eventually(lambda: healthy(settings.ingest_metrics_port))
    return proc


async def test_a_message_whose_ack_was_lost_is_redelivered_and_stored_once(
    fleet_db: Any, ingest_settings: IngestSettings, publisher: Publisher,
    monkeypatch: Any,
) -> None:
    consumer, task = await start_consumer(ingest_settings)
    dropped: list[Batch] = []
    acknowledge = Consumer._acknowledge

    def lose_first(self: Consumer, batch: Batch) -> None:
        if not dropped:
            dropped.append(batch)  # committed, but the PUBACK never leaves
            return
        acknowledge(self, batch)

    monkeypatch.setattr(Consumer, "_acknowledge", lose_first)
    await publisher.device(STATIONS[0], '[{"bn":"urn:dev:aq-hornsgatan-108:","bt":1.79e9,'
                                        '"n":"no2","u":"ug/m3","v":23.4}]')
    await wait_count(fleet_db, 1)
    generation = consumer.generation
    consumer.client.disconnect()  # the connection drops; the session stays at the broker

    async def redelivered() -> bool:
        return bool(consumer.generation > generation
                    and metric(consumer, "records_duplicate_total") == 1)

    await eventually(redelivered)
    assert await count(fleet_db) == 1
    await stop_consumer(consumer, task)


async def test_kill_9_in_the_middle_of_a_run_loses_and_doubles_nothing(
    fleet_db: Any, ingest_settings: IngestSettings, mqtt_port: int, tmp_path: Path
) -> None:
    plan = LoadPlan(STATIONS, 100_000, records_per_message=10,
                    topic_prefix=ingest_settings.topic_prefix)
    first = await ingest_process(ingest_settings, tmp_path / "ingest.log")
    try:
        publishing = asyncio.create_task(asyncio.to_thread(publish, "127.0.0.1", mqtt_port, plan))
        await wait_count(fleet_db, 20_000)
        first.kill()  # SIGKILL: no flush, no goodbye
        first.wait()
        killed_at = await count(fleet_db)
        second = await ingest_process(ingest_settings, tmp_path / "ingest.log")
        try:
            result = await publishing
            await wait_count(fleet_db, 100_000, within=120)
            await asyncio.sleep(0.5)  # anything more would arrive now
            assert await count(fleet_db) == result.readings == 100_000
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(30) == 0
    finally:
        if first.poll() is None:
            first.kill()
    assert 20_000 <= killed_at < 100_000, "the kill did not land mid-run"
    distinct = await fleet_db.fetchval(
        "SELECT count(DISTINCT (datastream_id, phenomenon_time)) FROM observations")
    assert distinct == 100_000


async def test_sigterm_drains_and_exits_and_a_restart_picks_up_the_rest(
    fleet_db: Any, ingest_settings: IngestSettings, mqtt_port: int, tmp_path: Path
) -> None:
    plan = LoadPlan(STATIONS, 30_000, records_per_message=1,
                    topic_prefix=ingest_settings.topic_prefix)
    proc = await ingest_process(ingest_settings, tmp_path / "ingest.log")
    publishing = asyncio.create_task(asyncio.to_thread(publish, "127.0.0.1", mqtt_port, plan))
    await wait_count(fleet_db, 2_000)
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, 30) == 0
    assert "ingest stopped" in (tmp_path / "ingest.log").read_text()
    await publishing
    again = await ingest_process(ingest_settings, tmp_path / "ingest.log")
    try:
        await wait_count(fleet_db, 30_000, within=120)
        assert await count(fleet_db) == 30_000
    finally:
        again.send_signal(signal.SIGTERM)
        again.wait(30)


async def test_thirty_seconds_without_the_database_under_load_loses_nothing(
    state_dir: Path, postgres_install: Postgres, tmp_path: Path
) -> None:
    # An anonymous broker: the claim is about the database outage, not about logins.
    settings = StackSettings(state_dir=state_dir, db_port=free_port(), mqtt_port=free_port(),
                             mqtt_auth=False)
    stack = LocalStack(settings, postgres_install)
    await stack.start()
    try:
        conn = await connect(settings.database_url)
        await provision(conn, stockholm())
        ingest = IngestSettings(database_url=settings.database_url,
                                mqtt_port=settings.mqtt_port, mqtt_client_id="ingest-outage",
                                ingest_metrics_port=free_port())
        proc = await ingest_process(ingest, tmp_path / "ingest.log")
        # About 40 s of steady traffic: 100 messages of 5 readings a second.
        plan = LoadPlan(STATIONS, 20_000, records_per_message=5)
        publishing = asyncio.create_task(asyncio.to_thread(
            publish, "127.0.0.1", settings.mqtt_port, plan, rate=100))
        await wait_count(conn, 1_000)
        await conn.close()
        stack.postgres.stop()
        await asyncio.sleep(30)
        assert proc.poll() is None, "ingest died while the database was away"
        stack.postgres.start()
        conn = await connect(settings.database_url)
        result = await publishing
        await wait_count(conn, result.readings, within=120)
        assert await count(conn) == 20_000
        log = (tmp_path / "ingest.log").read_text()
        assert "retrying" in log
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        await conn.close()
    finally:
        stack.stop()


async def test_a_message_that_breaks_ingest_becomes_a_reject_and_traffic_flows(
    fleet_db: Any, ingest_settings: IngestSettings, publisher: Publisher, monkeypatch: Any,
) -> None:
    from ingest import consumer as consumer_module

    real = consumer_module.map_message

    def breaks_on_boom(topic: str, payload: bytes, *args: Any) -> None:
        if b"boom" in payload:
            raise RuntimeError("boom")  # a fault injected where a bug could be
        real(topic, payload, *args)

    monkeypatch.setattr(consumer_module, "map_message", breaks_on_boom)
    consumer, task = await start_consumer(ingest_settings)
    try:
        await publisher.device(STATIONS[0], b'[{"vs":"boom"}]')
        await publisher.device(STATIONS[0], '[{"bn":"urn:dev:aq-hornsgatan-108:","bt":1.79e9,'
                                            '"n":"no2","u":"ug/m3","v":23.4}]')
        await wait_count(fleet_db, 1)

        async def rejected() -> bool:
            return bool(await fleet_db.fetchval(
                "SELECT count(*) FROM rejected_messages WHERE code = 'internal'"))

        await eventually(rejected)
    finally:
        await stop_consumer(consumer, task)
