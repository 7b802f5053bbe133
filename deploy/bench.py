"""`stadspuls bench ingest`: the pipeline measured against its ceilings, in one run.

On a fresh stack (its own state directory and free ports) the same load is sent three ways:

1. broker only: a subscriber that does nothing but count (the MQTT ceiling);
2. database only: the same rows by COPY straight into the hypertable (the storage ceiling);
3. Stadspuls: `stadspuls ingest` as a separate process, ack after commit, deduplicating,
   once for each notification setting asked for (by default with every reading announced
   on the standard's three topics, and with notifications off); a run with notifications
   ends when the last one is written to the broker, if that is after the last commit.

The load generator runs in its own process too, like the devices it stands for. Latency
is publish-to-commit per reading: readings carry their publish time as base time, and the
database records commit times (`track_commit_timestamp`).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from core.database import connect
from core.queries import query
from deploy.ports import free_port, http_ok
from deploy.settings import StackSettings
from deploy.stack import LocalStack, temporary_state_dir
from deploy.system import Postgres
from devices.fleet import fleet
from devices.provision import provision
from ingest.mapping import Mapped
from ingest.settings import IngestSettings, NotifyTopics
from ingest.writer import BatchWriter
from simulators.load import LoadPlan, LoadResult, publish

SPAWN = multiprocessing.get_context("spawn")


@dataclass(frozen=True)
class BenchOptions:
    readings: int = 200_000
    records_per_message: int = 10
    devices: int = 100
    write_method: str = "copy"
    batch_rows: int = 5_000
    repeat: int = 3
    soak_s: float = 0.0
    notify: tuple[NotifyTopics, ...] = ("all", "off")


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
    notified: int | None = None  # notification messages written to the broker
    dropped: int | None = None  # and not written

    @property
    def readings_per_s(self) -> float:
        return self.readings / self.seconds

    @property
    def messages_per_s(self) -> float:
        return self.messages / self.seconds


@dataclass
class IngestBench:
    """What `bench ingest` measured."""

    runs: list[Run]
    ratios: dict[NotifyTopics, list[float]]  # by notification setting
    rss_samples_mb: list[tuple[float, float]]


async def bench_ingest(options: BenchOptions, install: Postgres, say: Any) -> IngestBench:
    """Measure the ceilings and the pipeline, `repeat` times each, on a fresh stack.

    Args:
        options: load and pipeline settings.
        install: the PostgreSQL installation to start the stack with.
        say: prints one progress line.

    Returns:
        The median broker ceiling, the database ceiling, the median pipeline run, the
        pipeline at half its sustained rate (for latency); the pipeline-to-ceiling ratio
        of each paired run; and ingest's memory over the soak, if one was asked for.
    """
    state = temporary_state_dir("stadspuls-bench-")
    # Benchmarks measure throughput: their brokers take anonymous clients.
    settings = StackSettings(state_dir=state, db_port=free_port(), mqtt_port=free_port(),
                             mqtt_auth=False,
                             ingest_metrics_port=free_port())
    stack = LocalStack(settings, install)
    await stack.start()
    try:
        conn = await connect(settings.database_url)
        await provision(conn, fleet("stockholm", scale=options.devices))
        devices = [f"syn-{n:05d}" for n in range(1, options.devices + 1)]
        plan = LoadPlan(devices, options.readings, options.records_per_message)
        say(f"load: {plan.readings:,} readings in {plan.messages:,} messages of "
            f"{plan.records_per_message}, from {len(devices)} devices; "
            f"{options.repeat} paired runs")
        database = await _database_only(conn, plan, say)
        brokers: list[Run] = []
        pipelines: dict[NotifyTopics, list[Run]] = {mode: [] for mode in options.notify}
        for n in range(1, options.repeat + 1):
            step = f"{n}/{options.repeat}"
            await conn.execute("TRUNCATE observations")
            brokers.append(await _broker_only(settings, plan, step, say))
            for mode in options.notify:
                pipelines[mode].append(await _pipeline(settings, conn, plan, options, mode,
                                                       None, step, say))
        ratios = {mode: [p.readings_per_s / b.readings_per_s
                         for b, p in zip(brokers, runs, strict=True)]
                  for mode, runs in pipelines.items()}
        broker = _median(brokers)
        full = {mode: _median(runs) for mode, runs in pipelines.items()}
        first = options.notify[0]
        await conn.execute("TRUNCATE observations")
        half = full[first].messages_per_s / 2
        latency = await _pipeline(settings, conn, plan, options, first, half, "latency", say)
        samples = await _soak(settings, conn, devices, options, half, say)
        await conn.close()
        return IngestBench([broker, database, *full.values(), latency], ratios, samples)
    finally:
        stack.stop()
        shutil.rmtree(state, ignore_errors=True)


def _median(runs: list[Run]) -> Run:
    """The run with the median throughput, named for the set it stands for."""
    ordered = sorted(runs, key=lambda r: r.readings_per_s)
    chosen = ordered[(len(ordered) - 1) // 2]
    chosen.name = f"{chosen.name} (median of {len(runs)})"
    return chosen


async def _broker_only(settings: StackSettings, plan: LoadPlan, step: str, say: Any) -> Run:
    say(f"broker only {step}: a subscriber that only counts")
    ready, result = SPAWN.Event(), SPAWN.Queue()
    counter = SPAWN.Process(target=_count_messages,
                            args=(settings.mqtt_port, "ceiling/#", plan.messages, ready, result))
    counter.start()
    ready.wait(30)
    plan = replace(plan, topic_prefix="ceiling/")
    published = await asyncio.to_thread(_publish_in_process, settings.mqtt_port, plan, None)
    last_received = await asyncio.to_thread(result.get, True, 600)
    counter.join(10)
    return Run("broker only (subscriber that counts)", last_received - published.first_publish,
               plan.readings, plan.messages)


async def _database_only(conn: Any, plan: LoadPlan, say: Any) -> Run:
    say("database only: COPY of the same rows into the hypertable")
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
                    notify: NotifyTopics, rate: float | None, step: str, say: Any) -> Run:
    name = (f"Stadspuls ingest, notify {notify}" if rate is None
            else f"Stadspuls at half that rate ({rate:,.0f} msg/s)")
    say(f"{name} {step}")
    tag = _fresh_tag()
    plan = replace(plan, topic_prefix=f"{tag}/")
    ingest = _start_ingest(settings, options, tag, notify)
    try:
        await _wait(lambda: http_ok(settings.ingest_metrics_port, "/healthz"), 60)
        published = await asyncio.to_thread(_publish_in_process, settings.mqtt_port, plan, rate)
        committed = await _wait_for_rows(conn, plan.readings)
        # The run ends when the last reading is stored and, with notifications, announced.
        notified, dropped, announced = await _notifications(
            settings.ingest_metrics_port, plan.readings * TOPICS_PER_READING[notify])
        finished = max(committed, announced)
        latencies = await conn.fetch(
            "SELECT (extract(epoch FROM pg_xact_commit_timestamp(xmin))"
            " - extract(epoch FROM phenomenon_time)) * 1000 AS ms FROM observations"
        ) if rate is not None else []
        stored = int(await conn.fetchval("SELECT count(*) FROM observations"))
        peak = _rss_mb(ingest.pid, "VmHWM:")
    finally:
        _stop(ingest)
    await conn.execute("TRUNCATE observations")
    run = Run(name, finished - published.first_publish, plan.readings, plan.messages,
              peak_rss_mb=peak, stored=stored, notified=notified, dropped=dropped)
    if latencies:
        ms = sorted(r["ms"] for r in latencies)
        run.p50_ms = statistics.median(ms)
        run.p99_ms = ms[int(len(ms) * 0.99) - 1]
    return run


async def _soak(settings: StackSettings, conn: Any, devices: list[str], options: BenchOptions,
                rate: float, say: Any) -> list[tuple[float, float]]:
    """Ingest's resident memory every ten seconds while it takes `rate` messages a second
    for `soak_s` seconds; empty when no soak was asked for."""
    if options.soak_s <= 0:
        return []
    plan = LoadPlan(devices, int(rate * options.soak_s) * options.records_per_message,
                    options.records_per_message, start=1.6e9, topic_prefix=f"{_fresh_tag()}/")
    say(f"soak: {plan.messages:,} messages at {rate:,.0f} msg/s for {options.soak_s:.0f} s")
    ingest = _start_ingest(settings, options, plan.topic_prefix.rstrip("/"), options.notify[0])
    samples: list[tuple[float, float]] = []
    try:
        await _wait(lambda: http_ok(settings.ingest_metrics_port, "/healthz"), 60)
        started = time.monotonic()
        publishing = asyncio.create_task(
            asyncio.to_thread(_publish_in_process, settings.mqtt_port, plan, rate))
        while not publishing.done():
            samples.append((time.monotonic() - started, _rss_mb(ingest.pid, "VmRSS:") or 0.0))
            await asyncio.wait([publishing], timeout=10)
        await _wait_for_rows(conn, plan.readings)
    finally:
        _stop(ingest)
    return samples


# Every device of the bench fleet has a FeatureOfInterest, so "all" is three topics each.
TOPICS_PER_READING = {"all": 3, "datastream": 1, "off": 0}


async def _notifications(port: int, expected: int) -> tuple[int, int, float]:
    """(written, dropped) notifications of the ingest process with metrics on `port`, and
    the wall time they first added up to `expected` (polled every 20 ms; the last batches'
    may still be on their way when the rows are in), or after 60 s."""
    if expected == 0:
        return 0, 0, 0.0
    names = ("stadspuls_ingest_notifications_published_total",
             "stadspuls_ingest_notifications_dropped_total")
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient() as client:
        while True:
            text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
            values = {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
                      if line.startswith(names)}
            written, dropped = int(values.get(names[0], 0)), int(values.get(names[1], 0))
            if written + dropped >= expected or time.monotonic() > deadline:
                return written, dropped, time.time()
            await asyncio.sleep(0.02)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _fresh_tag() -> str:
    """A topic prefix and client id of one run alone: the persistent session of a finished
    run stays at the broker, and must not be sent the load of the next."""
    return f"bench-{time.monotonic_ns()}"


def _start_ingest(settings: StackSettings, options: BenchOptions, tag: str,
                  notify: NotifyTopics) -> subprocess.Popen[bytes]:
    ingest = IngestSettings(
        database_url=settings.database_url, mqtt_port=settings.mqtt_port,
        mqtt_client_id=tag, topic_prefix=f"{tag}/",
        ingest_metrics_port=settings.ingest_metrics_port,
        write_method=options.write_method, batch_max_rows=options.batch_rows,
        notify_topics=notify,
    )
    log = settings.state_dir / "logs" / "bench-ingest.log"
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "deploy", *ingest.command()],
                                stdout=out, stderr=subprocess.STDOUT)


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


def _rss_mb(pid: int, field: str) -> float | None:
    """A memory field of /proc/{pid}/status (VmRSS: now, VmHWM: peak), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        return None
    return None


def report(bench: IngestBench) -> str:
    """The runs as a table, each as a share of the broker ceiling; then the paired ratios
    and the memory over the soak."""
    runs = bench.runs
    ceiling = runs[0].readings_per_s
    lines = [f"{'run':<50} {'readings/s':>11} {'msg/s':>9} {'of ceiling':>10} "
             f"{'p50 ms':>7} {'p99 ms':>7} {'RSS MB':>7} {'stored':>9} {'notified':>9} "
             f"{'dropped':>8}"]
    for r in runs:
        lines.append(
            f"{r.name:<50} {r.readings_per_s:>11,.0f} {r.messages_per_s:>9,.0f} "
            f"{r.readings_per_s / ceiling:>10.0%} {_opt(r.p50_ms)} {_opt(r.p99_ms)} "
            f"{_opt(r.peak_rss_mb)} {_count(r.stored, 9)} {_count(r.notified, 9)} "
            f"{_count(r.dropped, 8)}"
        )
    lines.append("")
    for mode, ratios in bench.ratios.items():
        listed = ", ".join(f"{x:.0%}" for x in ratios)
        lines.append(f"pipeline (notify {mode}) / broker ceiling, paired runs: {listed}; "
                     f"median {statistics.median(ratios):.0%}")
    if bench.rss_samples_mb:
        lines.append("ingest RSS during the soak: " + ", ".join(
            f"{t:.0f} s {mb:.0f} MB" for t, mb in bench.rss_samples_mb))
    return "\n".join(lines)


def _opt(value: float | None) -> str:
    return f"{value:>7.0f}" if value is not None else f"{'-':>7}"


def _count(value: int | None, width: int) -> str:
    return f"{value:>{width}}" if value is not None else f"{'-':>{width}}"


async def bench_write(
    install: Postgres, batches: int, rows: int, say: Any
) -> dict[str, tuple[float, float]]:
    """Median seconds per batch for each write method, alternating, on a fresh stack.

    Args:
        install: the PostgreSQL installation to start the stack with.
        batches: batches per method.
        rows: readings per batch.
        say: prints one progress line.

    Returns:
        By method name: median seconds per batch, and median CPU seconds the writing
        process itself spent per batch (encoding; the rest is the server's).
    """
    state = temporary_state_dir("stadspuls-bench-")
    settings = StackSettings(state_dir=state, db_port=free_port(), mqtt_port=free_port(),
                             mqtt_auth=False)
    stack = LocalStack(settings, install)
    await stack.start()
    try:
        conn = await connect(settings.database_url)
        await provision(conn, fleet("stockholm", scale=100))
        ids = [r["id"] for r in await conn.fetch(query("ingest", "registry_streams"))]
        writers = {m: BatchWriter(conn, m) for m in ("unnest", "copy")}
        timings: dict[str, list[float]] = {m: [] for m in writers}
        client_cpu: dict[str, list[float]] = {m: [] for m in writers}
        say(f"{batches} batches of {rows:,} readings per method, alternating")
        for n in range(batches * 2):
            method = ("unnest", "copy")[n % 2]
            mapped = _batch(ids, rows, start=1.7e9 + n * rows)
            started, cpu = time.perf_counter(), time.process_time()
            await writers[method].write(mapped)
            timings[method].append(time.perf_counter() - started)
            client_cpu[method].append(time.process_time() - cpu)
        await conn.close()
        return {m: (statistics.median(timings[m]), statistics.median(client_cpu[m]))
                for m in writers}
    finally:
        stack.stop()
        shutil.rmtree(state, ignore_errors=True)


def _batch(ids: list[int], rows: int, start: float) -> Mapped:
    mapped = Mapped()
    for k in range(rows):
        mapped.add(start + k // len(ids), ids[k % len(ids)], number=20.0 + k % 97 * 0.25)
    return mapped


API_QUERIES = [
    ("service root", "/v1.1"),
    ("newest 1,000 Observations of a Datastream",
     "/v1.1/Datastreams({ds})/Observations?$orderby=phenomenonTime desc&$top=1000"),
    ("a 24-hour window",
     "/v1.1/Datastreams({ds})/Observations?$top=10000&$filter=phenomenonTime ge {day} and "
     "phenomenonTime lt {next_day}"),
    ("the whole period downsampled to hourly",
     "/api/Datastreams({ds})/series?interval=1 hour&start={start}&end={end}"),
    ("the whole period downsampled to daily",
     "/api/Datastreams({ds})/series?interval=1 day&start={start}&end={end}"),
    ("latest value of every Datastream", "/api/latest"),
    ("$count on all Observations", "/v1.1/Observations?$count=true&$top=0"),
    ("$count on a filter matching most Observations",
     "/v1.1/Observations?$count=true&$top=0&$filter=result gt 20"),
    ("$count on one day of a Datastream (exact)",
     "/v1.1/Datastreams({ds})/Observations?$count=true&$top=0&$filter=phenomenonTime ge "
     "{day}"),
    ("a page of all Observations (default order)",
     "/v1.1/Observations?$top=100"),
    ("a page of all Observations in time order",
     "/v1.1/Observations?$top=100&$orderby=phenomenonTime"),
    ("Things with Datastreams and their newest Observation",
     "/v1.1/Things?$expand=Datastreams($expand=Observations($top=1;"
     "$orderby=phenomenonTime desc))"),
    ("a geo filter", "/v1.1/Locations?$filter=st_within(location, geography'POLYGON((18.0 "
     "59.31, 18.06 59.31, 18.06 59.35, 18.0 59.35, 18.0 59.31))')"),
    ("Things with a reading over 60 in the last day",
     "/v1.1/Things?$filter=Datastreams/Observations/any(o: o/phenomenonTime ge {day} and "
     "o/result gt 60)&$select=name"),
    ("page 1 of a Datastream's Observations, newest first",
     "/v1.1/Datastreams({ds})/Observations?$orderby=phenomenonTime desc"),
    ("page {page} of a Datastream's Observations by $skip",
     "/v1.1/Datastreams({ds})/Observations?$orderby=phenomenonTime desc&$skip={skip}"),
    ("page {page} of a Datastream's Observations by $skiptoken",
     "/v1.1/Datastreams({ds})/Observations?$orderby=phenomenonTime desc&$skiptoken={token}"),
]
# Pages of the default size (100) reach this deep, or to the last page of fewer days.
DEEP_PAGE = 500


async def bench_api(
    install: Postgres, days: int, repeat: int, say: Any, count_threshold: int | None = None
) -> list[tuple[str, float, float]]:
    """Seed `days` of one-minute data for the air-quality stations and time the API.

    Args:
        install: the PostgreSQL installation to start the stack with.
        days: how much data to seed, ending now.
        repeat: requests per query (medians and p99 over them).
        say: prints one progress line.
        count_threshold: the API's count_estimate_threshold, if not its default.

    Returns:
        (query name, median ms, p99 ms) for each query of API_QUERIES.
    """
    async with _seeded_api(install, days, say, count_threshold) as (client, values):
        results = []
        for name, template in API_QUERIES:
            url = template.format(**values)
            times = await _time_requests(client, url, repeat)
            results.append((name.format(**values), statistics.median(times), _p99(times)))
            say(f"  {results[-1][0]}: median {results[-1][1]:.1f} ms")
        return results


# The mix many clients send at once: what a live map, a chart and a filtered list ask.
LOAD_QUERIES = [
    ("latest value of every Datastream", "/api/latest"),
    ("newest 1,000 Observations of a Datastream",
     "/v1.1/Datastreams({ds})/Observations?$top=1000&$orderby=phenomenonTime desc"
     "&$select=phenomenonTime,result"),
    ("a filtered page", "/v1.1/Observations?$filter=result gt 20 and phenomenonTime ge {day}"
                        "&$top=100"),
]


@dataclass(frozen=True)
class LoadRow:
    """What `clients` concurrent clients got from one kind of request."""

    clients: int
    name: str
    requests: int
    errors: int
    per_s: float
    p50_ms: float
    p99_ms: float


async def bench_api_load(
    install: Postgres, days: int, clients: list[int], seconds: float, say: Any,
) -> list[LoadRow]:
    """Throughput and latency of the API under concurrent clients, against its ceiling.

    For each number of clients, every client sends the requests of LOAD_QUERIES in turn for
    `seconds`; then as many clients ask for the service root, which reads no data: the
    ceiling the server and this client process reach together on the same machine.

    Args:
        install: the PostgreSQL installation to start the stack with.
        days: how much data to seed, ending now.
        clients: the numbers of concurrent clients to try, in order.
        seconds: how long each round sends.
        say: prints one progress line.

    Returns:
        One row per number of clients and query, then the ceiling's row.
    """
    rows: list[LoadRow] = []
    async with _seeded_api(install, days, say) as (client, values):
        urls = [(name, template.format(**values)) for name, template in LOAD_QUERIES]
        for count in clients:
            for _name, url in urls:  # warm each once
                await client.get(url)
            rows += _load_rows(count, await _send_for(client, urls, count, seconds))
            rows += _load_rows(count, await _send_for(
                client, [("ceiling: the service root", "/v1.1")], count, seconds))
            say(f"  {count} clients: " + ", ".join(
                f"{r.name} p99 {r.p99_ms:.0f} ms" for r in rows if r.clients == count))
    return rows


async def _send_for(client: httpx.AsyncClient, urls: list[tuple[str, str]], clients: int,
                    seconds: float) -> tuple[float, dict[str, list[float | None]]]:
    """(seconds taken, the latencies in ms of each kind, None for an error)."""
    got: dict[str, list[float | None]] = {name: [] for name, _ in urls}
    stop = time.perf_counter() + seconds

    async def one_client(offset: int) -> None:
        turn = offset
        while time.perf_counter() < stop:
            name, url = urls[turn % len(urls)]
            turn += 1
            started = time.perf_counter()
            try:
                response = await client.get(url)
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            got[name].append((time.perf_counter() - started) * 1000 if ok else None)

    started = time.perf_counter()
    await asyncio.gather(*(one_client(n) for n in range(clients)))
    return time.perf_counter() - started, got


def _load_rows(clients: int, sent: tuple[float, dict[str, list[float | None]]]
               ) -> list[LoadRow]:
    took, got = sent
    rows = []
    for name, times in got.items():
        good = [t for t in times if t is not None]
        rows.append(LoadRow(clients, name, len(times), len(times) - len(good),
                            len(times) / took, statistics.median(good) if good else 0.0,
                            _p99(good) if good else 0.0))
    return rows


def load_report(rows: list[LoadRow]) -> str:
    """The load rounds as a table: each kind of request, the mix's total as a share of the
    ceiling (the service root at the same number of clients), and the ceiling."""
    lines = [f"{'clients':>7}  {'requests':<44} {'sent':>6} {'errors':>6} {'req/s':>7} "
             f"{'p50 ms':>7} {'p99 ms':>7}"]
    for count in dict.fromkeys(r.clients for r in rows):
        *mix, ceiling = [r for r in rows if r.clients == count]
        for r in mix:
            lines.append(f"{count:>7}  {r.name:<44} {r.requests:>6} {r.errors:>6} "
                         f"{r.per_s:>7.1f} {r.p50_ms:>7.1f} {r.p99_ms:>7.1f}")
        total = sum(r.per_s for r in mix)
        label = f"the mix, {total / ceiling.per_s:.0%} of the ceiling"
        lines.append(f"{count:>7}  {label:<44} "
                     f"{sum(r.requests for r in mix):>6} {sum(r.errors for r in mix):>6} "
                     f"{total:>7.1f}")
        lines.append(f"{count:>7}  {ceiling.name:<44} {ceiling.requests:>6} "
                     f"{ceiling.errors:>6} {ceiling.per_s:>7.1f} {ceiling.p50_ms:>7.1f} "
                     f"{ceiling.p99_ms:>7.1f}")
    return "\n".join(lines)


@asynccontextmanager
async def _seeded_api(
    install: Postgres, days: int, say: Any, count_threshold: int | None = None
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Any]]]:
    """A fresh stack with `days` of one-minute data for the air-quality stations and the
    API running on it: an HTTP client for it, and the values API_QUERIES are filled with."""
    state = temporary_state_dir("stadspuls-bench-")
    settings = StackSettings(state_dir=state, db_port=free_port(), mqtt_port=free_port(),
                             mqtt_auth=False,
                             api_port=free_port())
    stack = LocalStack(settings, install)
    await stack.start()
    try:
        conn = await connect(settings.database_url)
        await provision(conn, fleet("stockholm"))
        end = datetime.now(UTC).replace(second=0, microsecond=0)
        start = end - timedelta(days=days)
        streams = await conn.fetch(query("bench", "air_quality_streams"))
        say(f"seeding {days} days of one-minute data for {len(streams)} air-quality "
            f"datastreams ({len(streams) * days * 1440:,} observations)")
        seeded = time.perf_counter()
        for n, row in enumerate(streams, start=1):
            await conn.execute(query("bench", "seed_minutes"), row["id"], start, end)
            if n % 9 == 0:
                say(f"  {n}/{len(streams)} datastreams")
        await conn.execute("ANALYZE observations")
        await conn.close()
        say(f"seeded in {time.perf_counter() - seeded:.0f} s")
        if count_threshold is not None:
            # The API process takes its settings from the environment it inherits.
            os.environ["STADSPULS_COUNT_ESTIMATE_THRESHOLD"] = str(count_threshold)
        # The bench measures queries, not the rate limit its anonymous requests would meet.
        os.environ["STADSPULS_ANONYMOUS_RATE_LIMIT_PER_S"] = "1000000"
        stack.start_api()
        page = min(DEEP_PAGE, days * 1440 // 100)
        values: dict[str, Any] = {
            "ds": streams[0]["id"], "start": _iso(start), "end": _iso(end),
            "day": _iso(end - timedelta(days=1)), "next_day": _iso(end), "page": page,
            "skip": (page - 1) * 100}
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.api_port}",
                                     timeout=60, limits=limits) as client:
            values["token"] = await _skiptoken_before(client, values)
            yield client, values
    finally:
        stack.stop()
        shutil.rmtree(state, ignore_errors=True)


async def _skiptoken_before(client: httpx.AsyncClient, values: dict[str, Any]) -> str:
    """The $skiptoken that the page before the deep page links to."""
    response = await client.get(
        f"/v1.1/Datastreams({values['ds']})/Observations?$orderby=phenomenonTime desc"
        f"&$skip={values['skip'] - 100}&$select=id")
    link: str = response.json()["@iot.nextLink"]
    return parse_qs(urlsplit(link).query)["$skiptoken"][0]


async def _time_requests(client: httpx.AsyncClient, url: str, repeat: int) -> list[float]:
    started = time.perf_counter()
    await client.get(url)  # warm the caches once
    if time.perf_counter() - started > 2:
        repeat = min(repeat, 3)  # a slow query: a few runs tell as much
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = await client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}: {response.text}")
    return times


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * 0.99) - 1)]


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
