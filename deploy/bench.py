"""`stadspuls bench ingest`: the pipeline measured against its ceilings, in one run.

On a fresh stack (its own state directory and free ports) the same load is sent three ways:

1. broker only: a subscriber that does nothing but count (the MQTT ceiling);
2. database only: the same rows by COPY straight into the hypertable (the storage ceiling);
3. Stadspuls: `stadspuls ingest` as a separate process, ack after commit, deduplicating.

The load generator runs in its own process too, like the devices it stands for. Latency
is publish-to-commit per reading: readings carry their publish time as base time, and the
database records commit times (`track_commit_timestamp`).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from core.database import connect
from core.queries import query
from deploy.ports import free_port, http_ok
from deploy.settings import StackSettings
from deploy.stack import LocalStack
from deploy.system import Postgres
from devices.fleet import fleet
from devices.provision import provision
from simulators.load import LoadPlan, LoadResult, publish

SPAWN = multiprocessing.get_context("spawn")


@dataclass(frozen=True)
class BenchOptions:
    readings: int = 200_000
    records_per_message: int = 10
    devices: int = 100
    write_method: str = "unnest"
    batch_rows: int = 5_000
    soak_s: float = 0.0


@dataclass
class Run:
    """One way of consuming the load, measured."""

    name: str
    seconds: float
    readings: int
    messages: int
    p50_ms: float | None = None
    p99_ms: float | None = None
    peak_rss_mb: float | None = None
    stored: int | None = None

    @property
    def readings_per_s(self) -> float:
        return self.readings / self.seconds

    @property
    def messages_per_s(self) -> float:
        return self.messages / self.seconds


async def bench_ingest(options: BenchOptions, install: Postgres, say: Any) -> list[Run]:
    """Run the three measurements (and the latency run at half speed); return them.

    Args:
        options: load and pipeline settings.
        install: the PostgreSQL installation to start the stack with.
        say: prints one progress line.

    Returns:
        The broker ceiling, the database ceiling, the pipeline at full speed, and the
        pipeline at half its sustained rate (for latency).
    """
    state = Path(tempfile.mkdtemp(prefix="stadspuls-bench-"))
    state.chmod(0o755)
    settings = StackSettings(state_dir=state, db_port=free_port(), mqtt_port=free_port(),
                             ingest_metrics_port=free_port())
    stack = LocalStack(settings, install)
    await stack.start()
    try:
        conn = await connect(settings.database_url)
        await provision(conn, fleet("stockholm", scale=options.devices))
        devices = [f"syn-{n:05d}" for n in range(1, options.devices + 1)]
        plan = LoadPlan(devices, options.readings, options.records_per_message,
                        topic_prefix="bench/")
        say(f"load: {plan.readings:,} readings in {plan.messages:,} messages of "
            f"{plan.records_per_message}, from {len(devices)} devices")
        runs = [await _broker_only(settings, plan, say), await _database_only(conn, plan, say)]
        await conn.execute("TRUNCATE observations")
        full = await _pipeline(settings, conn, plan, options, None, "Stadspuls ingest", say)
        runs.append(full)
        await conn.execute("TRUNCATE observations")
        half = full.messages_per_s / 2
        runs.append(await _pipeline(settings, conn, plan, options, half,
                                    f"Stadspuls at half rate ({half:,.0f} msg/s)", say))
        await conn.close()
        return runs
    finally:
        stack.stop()
        shutil.rmtree(state, ignore_errors=True)


async def _broker_only(settings: StackSettings, plan: LoadPlan, say: Any) -> Run:
    say("1/4 broker only: a subscriber that only counts")
    ready, result = SPAWN.Event(), SPAWN.Queue()
    counter = SPAWN.Process(target=_count_messages,
                            args=(settings.mqtt_port, "bench/#", plan.messages, ready, result))
    counter.start()
    ready.wait(30)
    published = await asyncio.to_thread(_publish_in_process, settings.mqtt_port, plan, None)
    last_received = await asyncio.to_thread(result.get, True, 600)
    counter.join(10)
    return Run("broker only (subscriber that counts)", last_received - published.first_publish,
               plan.readings, plan.messages)


async def _database_only(conn: Any, plan: LoadPlan, say: Any) -> Run:
    say("2/4 database only: COPY of the same rows into the hypertable")
    ids = {r["name"]: r["id"] for r in await conn.fetch(query("ingest", "registry_streams"))}
    rows = []
    per_device: dict[str, int] = {}
    for n in range(plan.readings):
        device = plan.devices[(n // plan.records_per_message) % len(plan.devices)]
        k = per_device.get(device, 0)
        per_device[device] = k + 1
        rows.append((datetime.fromtimestamp(plan.start + k, UTC),
                     ids[f"urn:dev:{device}:{plan.record}"], 20.0 + k % 97 * 0.25))
    started = time.perf_counter()
    await conn.copy_records_to_table(
        "observations", records=rows,
        columns=["phenomenon_time", "datastream_id", "result_number"],
    )
    return Run("database only (COPY, no MQTT)", time.perf_counter() - started, plan.readings,
               plan.messages)


async def _pipeline(settings: StackSettings, conn: Any, plan: LoadPlan, options: BenchOptions,
                    rate: float | None, name: str, say: Any) -> Run:
    say(f"{3 if rate is None else 4}/4 {name}")
    client_id = "bench-ingest"  # one session for both pipeline runs: none lingers unread
    log = settings.state_dir / "logs" / "bench-ingest.log"
    with log.open("ab") as out:
        ingest = subprocess.Popen([
            sys.executable, "-m", "deploy", "ingest", "--database-url", settings.database_url,
            "--mqtt-port", str(settings.mqtt_port), "--client-id", client_id,
            "--topic-prefix", "bench/", "--metrics-port", str(settings.ingest_metrics_port),
            "--write-method", options.write_method, "--batch-rows", str(options.batch_rows),
        ], stdout=out, stderr=subprocess.STDOUT)
    try:
        await _wait(lambda: http_ok(settings.ingest_metrics_port, "/healthz"), 60)
        published = await asyncio.to_thread(_publish_in_process, settings.mqtt_port, plan, rate)
        committed = await _wait_for_rows(conn, plan.readings)
        latencies = await conn.fetch(
            "SELECT (extract(epoch FROM pg_xact_commit_timestamp(xmin))"
            " - extract(epoch FROM phenomenon_time)) * 1000 AS ms FROM observations"
        ) if rate is not None else []
        stored = int(await conn.fetchval("SELECT count(*) FROM observations"))
        peak = _peak_rss_mb(ingest.pid)
    finally:
        ingest.terminate()
        ingest.wait(30)
    run = Run(name, committed - published.first_publish, plan.readings, plan.messages,
              peak_rss_mb=peak, stored=stored)
    if latencies:
        ms = sorted(r["ms"] for r in latencies)
        run.p50_ms = statistics.median(ms)
        run.p99_ms = ms[int(len(ms) * 0.99) - 1]
    return run


def _publish_in_process(port: int, plan: LoadPlan, rate: float | None) -> LoadResult:
    result = SPAWN.Queue()
    worker = SPAWN.Process(target=_publish_worker, args=(port, plan, rate, result))
    worker.start()
    outcome: LoadResult = result.get(True, 900)
    worker.join(10)
    return outcome


def _publish_worker(port: int, plan: LoadPlan, rate: float | None, result: Any) -> None:
    result.put(publish("127.0.0.1", port, plan, rate=rate, stamp=rate is not None))


def _count_messages(port: int, topic: str, expected: int, ready: Any, result: Any) -> None:
    seen = 0

    def on_message(client: paho.Client, userdata: Any, message: Any) -> None:
        nonlocal seen
        seen += 1
        if seen == expected:
            result.put(time.time())
            client.disconnect()

    def on_connect(client: paho.Client, *args: Any) -> None:
        client.subscribe(topic, qos=1)

    def on_subscribe(*args: Any) -> None:
        ready.set()

    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.on_message, client.on_connect, client.on_subscribe = (on_message, on_connect,
                                                                 on_subscribe)
    client.connect("127.0.0.1", port)
    client.loop_forever()


async def _wait(check: Any, within: float) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("ingest did not become healthy")
        await asyncio.sleep(0.05)


async def _wait_for_rows(conn: Any, expected: int) -> float:
    """Wall time at which the table first held `expected` rows (polled every 20 ms)."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if await conn.fetchval("SELECT count(*) FROM observations") >= expected:
            return time.time()
        await asyncio.sleep(0.02)
    raise TimeoutError(f"fewer than {expected} rows after 600 s")


def _peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        return None
    return None


def report(runs: list[Run]) -> str:
    """The runs as a table, with each pipeline run as a share of the broker ceiling."""
    ceiling = runs[0].readings_per_s
    lines = [f"{'run':<44} {'readings/s':>11} {'msg/s':>9} {'of ceiling':>10} "
             f"{'p50 ms':>7} {'p99 ms':>7} {'RSS MB':>7} {'stored':>9}"]
    for r in runs:
        lines.append(
            f"{r.name:<44} {r.readings_per_s:>11,.0f} {r.messages_per_s:>9,.0f} "
            f"{r.readings_per_s / ceiling:>10.0%} {_opt(r.p50_ms)} {_opt(r.p99_ms)} "
            f"{_opt(r.peak_rss_mb)} {r.stored if r.stored is not None else '-':>9}"
        )
    return "\n".join(lines)


def _opt(value: float | None) -> str:
    return f"{value:>7.0f}" if value is not None else f"{'-':>7}"
