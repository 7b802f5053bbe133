"""The `stadspuls` command: set up, run and inspect the platform."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click
import uvicorn

from api.app import create_app
from api.settings import ApiSettings
from core.broker_login import read_login
from core.database import connect
from core.errors import CoreError
from core.migrations import migrate as apply_migrations
from deploy import access_cli
from deploy import stack as stacks
from deploy.access import LOAD as LOAD_ACCOUNT
from deploy.bench import (
    BenchOptions,
    bench_api,
    bench_api_load,
    bench_ingest,
    bench_write,
    load_report,
    report,
)
from deploy.device_commands import add_device_commands
from deploy.errors import DeployError
from deploy.process import read_pid
from deploy.running import on_database
from deploy.settings import StackSettings
from deploy.supervisor import supervise
from deploy.system import ensure_system, installed_postgres
from deploy.usage_cli import usage
from devices.errors import DeviceError
from devices.fleet import FLEETS, fleet
from devices.provision import list_devices, provision
from ingest.service import run as run_ingest
from ingest.settings import IngestSettings, NotifyTopics
from simulators.cli import simulate
from simulators.load import LoadPlan, publish

log = logging.getLogger("stadspuls")



def stack_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options that choose a local stack; each falls back to its STADSPULS_* variable."""

    @click.option("--state-dir", type=click.Path(path_type=Path),
                  help="Where the stack keeps data and logs [STADSPULS_STATE_DIR; .stadspuls]")
    @click.option("--db-port", type=int,
                  help="PostgreSQL port on 127.0.0.1 [STADSPULS_DB_PORT; 15432]")
    @click.option("--mqtt-port", type=int,
                  help="MQTT port on 127.0.0.1 [STADSPULS_MQTT_PORT; 11883]")
    @click.option("--ingest-metrics-port", type=int,
                  help="Ingest's /metrics and /healthz port [STADSPULS_INGEST_METRICS_PORT; 9108]")
    @click.option("--api-port", type=int, help="The API's port [STADSPULS_API_PORT; 8080]")
    @click.option("--mqtt-tls-port", type=int,
                  help="MQTT over TLS on 127.0.0.1 [STADSPULS_MQTT_TLS_PORT; 8883]")
    @click.option("--mqtt-mtls-port", type=int, help="MQTT over TLS with client "
                  "certificates on 127.0.0.1 [STADSPULS_MQTT_MTLS_PORT; 8884]")
    @wraps(command)
    def wrapper(state_dir: Path | None, db_port: int | None, mqtt_port: int | None,
                ingest_metrics_port: int | None, api_port: int | None,
                mqtt_tls_port: int | None, mqtt_mtls_port: int | None, **kwargs: Any) -> Any:
        given: dict[str, Any] = {"state_dir": state_dir, "db_port": db_port,
                                 "mqtt_port": mqtt_port,
                                 "ingest_metrics_port": ingest_metrics_port,
                                 "api_port": api_port, "mqtt_tls_port": mqtt_tls_port,
                                 "mqtt_mtls_port": mqtt_mtls_port}
        settings = StackSettings(**{k: v for k, v in given.items() if v is not None})
        return command(settings, **kwargs)

    return wrapper


def database_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """--database-url, defaulting to the local stack's database."""

    @click.option("--database-url", envvar="STADSPULS_DATABASE_URL",
                  help="PostgreSQL URL [STADSPULS_DATABASE_URL; the local stack's database]")
    @stack_options
    @wraps(command)
    def wrapper(settings: StackSettings, database_url: str | None, **kwargs: Any) -> Any:
        running = stacks.settings_of_running_stack(settings)
        return command(database_url or running.database_url, **kwargs)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
def cli(verbose: bool) -> None:
    """Stadspuls: the city's sensor-data platform.

    `stadspuls up` runs everything on this machine; `stadspuls status` tells what runs.
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s  %(message)s", datefmt="%H:%M:%S",
    )


@cli.command()
@click.option("--debian-mirror", envvar="STADSPULS_DEBIAN_MIRROR",
              help="Debian archive for the TimescaleDB source [default: from apt sources]")
def setup(debian_mirror: str | None) -> None:
    """Install what is missing: PostgreSQL, PostGIS, TimescaleDB, Mosquitto."""
    postgres = ensure_system(debian_mirror=debian_mirror)
    log.info("ready: PostgreSQL %d with PostGIS and TimescaleDB, and Mosquitto",
             postgres.major)


@cli.command()
@stack_options
@click.option("-d", "--detach", is_flag=True, help="Run in the background; stop with `down`.")
@click.option("--fleet", "fleet_name", default="stockholm", show_default=True,
              type=click.Choice(sorted(FLEETS)), help="The fleet to provision.")
@click.option("--scale", default=0, show_default=True,
              help="Synthetic devices to add to the fleet.")
@click.option("--skip-setup", is_flag=True, help="Do not check system packages first.")
@click.option("--no-simulator", is_flag=True, help="Run without the simulated fleet.")
def up(settings: StackSettings, detach: bool, fleet_name: str, scale: int,
       skip_setup: bool, no_simulator: bool) -> None:
    """Start the platform in the foreground; Ctrl-C stops everything.

    A service that exits is started again, after 1, 2, 4, 8 s (jittered); after its fifth
    crash within 120 s the whole stack stops. What a supervisor that died left running is
    stopped first.
    """
    # Held from before anything is stopped or started: a second `up` meanwhile finds it
    # taken rather than no supervisor, and stops nothing of this run.
    lock = stacks.supervisor_lock(settings)
    if not lock.acquire():
        supervisor = read_pid(settings.state_dir / stacks.SUPERVISOR_PID)
        raise click.ClickException(
            f"the stack in {settings.state_dir} already runs"
            f"{f' (pid {supervisor})' if supervisor else ' (it is starting)'}; "
            "see `stadspuls status`, stop it with `stadspuls down`"
        )
    try:
        postgres = ensure_system(debian_mirror=settings.debian_mirror) if not skip_setup else None
        stacks.stop_orphans(settings, postgres or installed_postgres())
        if detach:
            lock.release()  # the supervisor started next takes it before it starts anything
            _start_detached(settings, fleet_name, scale, no_simulator)
            return
        lock.write_own_pid()
        postgres = postgres or installed_postgres()
        if postgres is None:
            raise click.ClickException("PostgreSQL is not installed; run `stadspuls setup`")
        asyncio.run(_run_foreground(stacks.LocalStack(settings, postgres), fleet_name, scale,
                                    not no_simulator))
    finally:
        lock.release()


async def _run_foreground(stack: stacks.LocalStack, fleet_name: str, scale: int,
                          simulate: bool) -> None:
    settings = stack.settings
    started = time.monotonic()
    await stack.start()
    sync = (asyncio.create_task(stack.access_sync().run(connect), name="stack.access_sync")
            if settings.mqtt_auth else None)
    try:
        await stack.provision_fleet(fleet(fleet_name, scale))
        stack.start_ingest()
        stack.start_api()
        if simulate:
            stack.start_simulator(fleet_name, scale)
        _print_banner(settings, time.monotonic() - started)
        await supervise(stack, _stop_on_signal())
    finally:
        log.info("stopping", extra={"action": "stack_stopping"})
        if sync is not None:
            sync.cancel()
        stack.stop()
        log.info("stopped", extra={"action": "stack_stopped"})


def _stop_on_signal() -> asyncio.Event:
    """An event set by SIGINT (Ctrl-C) or SIGTERM (`stadspuls down`)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _print_banner(settings: StackSettings, seconds: float) -> None:
    state = settings.state_dir.resolve()
    click.echo(
        f"\nStadspuls is up ({seconds:.1f} s).\n"
        f"  database   {settings.database_url}\n"
        f"             psql -h 127.0.0.1 -p {settings.db_port} -U stadspuls {settings.db_name}\n"
        f"  broker     {settings.mqtt_url}"
        + (f", TLS on {settings.mqtt_tls_port} and {settings.mqtt_mtls_port} (client "
           f"certificates), CA {state / 'tls' / 'ca.crt'}\n"
           "             no anonymous clients: API keys log in as -u <key id> -P <key>, "
           "devices with `stadspuls devices credentials <id>`\n"
           if settings.mqtt_auth else "\n")
        + f"             mosquitto_sub -h 127.0.0.1 -p {settings.mqtt_port} "
        + ("-u <key id> -P <key> " if settings.mqtt_auth else "")
        + "-t 'v1.1/Observations' (readings as stored)\n"
        f"  ingest     http://127.0.0.1:{settings.ingest_metrics_port}/metrics\n"
        f"  api        http://127.0.0.1:{settings.api_port}/v1.1 (SensorThings; docs at /docs)\n"
        f"  logs       {state / 'logs'}\n"
        f"  devices    stadspuls devices list\n"
        f"  keys       stadspuls keys create --agency miljoforvaltningen --role reader "
        "--label 'my analysis'\n"
        "             (open data needs no key; restricted data and writes do; "
        "see stadspuls agencies)\n"
        "Press Ctrl-C to stop.\n"
    )


def _start_detached(settings: StackSettings, fleet_name: str, scale: int,
                    no_simulator: bool) -> None:
    logs = settings.state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    logfile = logs / "stadspuls.log"
    args = [
        sys.executable, "-m", "deploy", "up", "--skip-setup",
        "--state-dir", str(settings.state_dir), "--db-port", str(settings.db_port),
        "--mqtt-port", str(settings.mqtt_port),
        "--ingest-metrics-port", str(settings.ingest_metrics_port),
        "--api-port", str(settings.api_port),
        "--mqtt-tls-port", str(settings.mqtt_tls_port),
        "--mqtt-mtls-port", str(settings.mqtt_mtls_port),
        "--fleet", fleet_name, "--scale", str(scale),
    ] + (["--no-simulator"] if no_simulator else [])
    with logfile.open("ab") as out:
        offset = out.tell()
        child = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        # Only what this start wrote: the log also holds earlier runs, banners included.
        with logfile.open("rb") as log_now:
            log_now.seek(offset)
            written = log_now.read().decode(errors="replace")
        if child.poll() is not None:
            last = "\n".join(written.splitlines()[-15:])
            raise click.ClickException(f"the stack did not start:\n{last}")
        if "Stadspuls is up" in written:
            click.echo(stacks.describe(asyncio.run(stacks.status(settings))))
            click.echo(f"Running in the background (log: {logfile}); stop with `stadspuls down`.")
            return
        time.sleep(0.2)
    raise click.ClickException(f"the stack did not come up in 300 s; see {logfile}")


@cli.command()
@stack_options
def down(settings: StackSettings) -> None:
    """Stop a stack started with `up --detach` (or left behind by one that died)."""
    stopped = stacks.stop_detached(settings, installed_postgres())
    click.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@cli.command()
@stack_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def status(settings: StackSettings, as_json: bool) -> None:
    """Report each component of the local stack; exit status 3 if the supervisor, the
    database, the broker, ingest or the API is down."""
    found = asyncio.run(stacks.status(settings))
    click.echo(json.dumps(stacks.as_dict(found)) if as_json else stacks.describe(found))
    if not all(c.running for c in found if c.name in stacks.REQUIRED):
        sys.exit(3)


@cli.command()
@database_option
def migrate(database_url: str) -> None:
    """Bring the database schema up to date."""

    applied = on_database(database_url, apply_migrations)
    click.echo(f"{len(applied)} migrations applied; the schema is up to date")


@cli.command()
@click.option("--database-url", help="PostgreSQL URL [STADSPULS_DATABASE_URL]")
@click.option("--mqtt-host", help="Broker host [STADSPULS_MQTT_HOST; 127.0.0.1]")
@click.option("--mqtt-port", type=int, help="Broker port [STADSPULS_MQTT_PORT; 11883]")
@click.option("--client-id", help="MQTT client id; fixed, so the session survives restarts "
              "[STADSPULS_MQTT_CLIENT_ID; stadspuls-ingest]")
@click.option("--topic-prefix", help="Prefix of the device and gateway topics "
              "[STADSPULS_TOPIC_PREFIX; none]")
@click.option("--batch-rows", type=int, help="Flush at this many readings "
              "[STADSPULS_BATCH_MAX_ROWS; 5000]")
@click.option("--batch-age", type=float, help="Flush a batch this old, in seconds "
              "[STADSPULS_BATCH_MAX_AGE_S; 0.1]")
@click.option("--receive-maximum", type=int, help="Unacknowledged messages the broker may "
              "send [STADSPULS_RECEIVE_MAXIMUM; 10000]")
@click.option("--write-method", type=click.Choice(["unnest", "copy"]),
              help="How batches reach the hypertable [STADSPULS_WRITE_METHOD; copy]")
@click.option("--metrics-port", type=int, help="Port of /metrics and /healthz on 127.0.0.1 "
              "[STADSPULS_INGEST_METRICS_PORT; 9108]")
@click.option("--notify", type=click.Choice(["all", "datastream", "off"]),
              help="SensorThings MQTT topics each stored reading is announced on: the "
              "standard's collection topics, only its Datastream's, or none "
              "[STADSPULS_NOTIFY_TOPICS; all]")
@click.option("--api-url", help="The API's root, for the @iot.selfLink of announced "
              "Observations [STADSPULS_API_URL; http://127.0.0.1:8080/v1.1]")
@click.option("--notify-mqtt-host", help="Broker for notifications "
              "[STADSPULS_NOTIFY_MQTT_HOST; the --mqtt-host]")
@click.option("--notify-mqtt-port", type=int, help="Its port "
              "[STADSPULS_NOTIFY_MQTT_PORT; the --mqtt-port]")
@click.option("--mqtt-username", help="Broker account [STADSPULS_MQTT_USERNAME; anonymous]")
@click.option("--mqtt-password-file", type=click.Path(path_type=Path),
              help="File holding its password [STADSPULS_MQTT_PASSWORD_FILE]")
def ingest(**options: Any) -> None:
    """Consume SenML readings from MQTT into TimescaleDB (ack after commit) and announce
    them on the SensorThings MQTT topics."""
    names = {"client_id": "mqtt_client_id", "batch_rows": "batch_max_rows",
             "batch_age": "batch_max_age_s", "metrics_port": "ingest_metrics_port",
             "notify": "notify_topics"}
    given = {names.get(k, k): v for k, v in options.items() if v is not None}
    asyncio.run(run_ingest(IngestSettings(**given)))


@cli.command("api")
@click.option("--database-url", help="PostgreSQL URL [STADSPULS_DATABASE_URL]")
@click.option("--port", "api_port", type=int, help="Port on 127.0.0.1 [STADSPULS_API_PORT; 8080]")
@click.option("--mqtt-host", help="Broker of the SensorThings MQTT extension "
              "[STADSPULS_MQTT_HOST; 127.0.0.1]")
@click.option("--mqtt-port", type=int, help="Its port [STADSPULS_MQTT_PORT; 11883]")
@click.option("--topic-prefix", help="Put before every MQTT topic [STADSPULS_TOPIC_PREFIX; none]")
@click.option("--mqtt/--no-mqtt", "mqtt_enabled", default=None,
              help="Serve the MQTT extension [STADSPULS_MQTT_ENABLED; on]")
@click.option("--mqtt-username", help="Broker account [STADSPULS_MQTT_USERNAME; anonymous]")
@click.option("--mqtt-password-file", type=click.Path(path_type=Path),
              help="File holding its password [STADSPULS_MQTT_PASSWORD_FILE]")
@click.option("--mqtt-publisher-secret-file", type=click.Path(path_type=Path),
              help="File holding the secret the broker signs publishers with "
              "[STADSPULS_MQTT_PUBLISHER_SECRET_FILE; none: the broker names no publisher]")
def api_command(database_url: str | None, api_port: int | None, mqtt_host: str | None,
                mqtt_port: int | None, topic_prefix: str | None,
                mqtt_enabled: bool | None, mqtt_username: str | None,
                mqtt_password_file: Path | None,
                mqtt_publisher_secret_file: Path | None) -> None:
    """Serve the readings API (OGC SensorThings v1.1) over HTTP, and announce its changes
    on the SensorThings MQTT topics."""
    options = {"database_url": database_url, "api_port": api_port, "mqtt_host": mqtt_host,
               "mqtt_port": mqtt_port, "topic_prefix": topic_prefix,
               "mqtt_enabled": mqtt_enabled, "mqtt_username": mqtt_username,
               "mqtt_password_file": mqtt_password_file,
               "mqtt_publisher_secret_file": mqtt_publisher_secret_file}
    given: dict[str, Any] = {k: v for k, v in options.items() if v is not None}
    settings = ApiSettings(**given)
    uvicorn.run(create_app(settings), **settings.server_options(), log_level="info",
                access_log=False)


@cli.group()
def devices() -> None:
    """The device registry: provision a fleet, list devices."""


@devices.command("provision")
@database_option
@click.option("--fleet", "fleet_name", default="stockholm", show_default=True,
              type=click.Choice(sorted(FLEETS)))
@click.option("--scale", default=0, show_default=True, help="Synthetic devices to add.")
@click.option("--seed", default=0, show_default=True, help="Seed for synthetic placement.")
def devices_provision(database_url: str, fleet_name: str, scale: int, seed: int) -> None:
    """Create or update a fleet's agencies, gateways, devices and datastreams."""

    done = on_database(database_url, lambda conn: provision(conn, fleet(fleet_name, scale, seed)))
    click.echo(f"provisioned: {done.summary()}")


@devices.command("list")
@database_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def devices_list(database_url: str, as_json: bool) -> None:
    """Show the provisioned field devices."""

    rows = on_database(database_url, list_devices)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    click.echo(f"{'device':<26} {'model':<20} {'agency':<19} {'gateway':<14} "
               f"{'lat':>9} {'lon':>9} {'streams':>7}  name")
    for r in rows:
        click.echo(
            f"{r['device_id']:<26} {r['model']:<20} {r['agency']:<19} "
            f"{r['gateway_id'] or '-':<14} {r['latitude']:>9.5f} {r['longitude']:>9.5f} "
            f"{r['datastreams']:>7}  {r['name']}"
        )
    click.echo(f"{len(rows)} devices")


@cli.group()
def bench() -> None:
    """Benchmarks that print figures, measured against ceilings in the same run."""


@bench.command("ingest")
@click.option("--readings", default=200_000, show_default=True, help="Readings to publish.")
@click.option("--records-per-message", default=10, show_default=True,
              help="SenML records in each message (1 or 10 are the usual cases).")
@click.option("--devices", default=100, show_default=True, help="Devices publishing.")
@click.option("--write-method", type=click.Choice(["unnest", "copy"]), default="copy",
              show_default=True, help="How ingest moves a batch into the hypertable.")
@click.option("--batch-rows", default=5_000, show_default=True, help="Ingest batch size.")
@click.option("--repeat", default=3, show_default=True,
              help="Paired runs (ceiling, then pipeline); medians are reported.")
@click.option("--soak", default=0.0, show_default=True,
              help="Seconds of load at half the sustained rate, sampling ingest's memory.")
@click.option("--notify", multiple=True, default=("all", "off"), show_default=True,
              type=click.Choice(["all", "datastream", "off"]),
              help="Notification settings to run the pipeline with, each in every pair "
              "(repeat the option); the first also runs the latency and soak runs.")
def bench_ingest_command(readings: int, records_per_message: int, devices: int,
                         write_method: str, batch_rows: int, repeat: int, soak: float,
                         notify: tuple[NotifyTopics, ...]) -> None:
    """Ingest throughput and latency against the broker and database ceilings.

    Starts a fresh stack on free ports; takes a minute or two on two cores.
    """
    postgres = installed_postgres()
    if postgres is None:
        raise click.ClickException("PostgreSQL is not installed; run `stadspuls setup`")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # ingest's metrics are polled
    options = BenchOptions(readings, records_per_message, devices, write_method, batch_rows,
                           repeat, soak, notify)
    measured = asyncio.run(bench_ingest(options, postgres, lambda line: log.info("%s", line)))
    click.echo(report(measured))


@bench.command("api")
@click.option("--days", default=30, show_default=True,
              help="Days of one-minute data to seed for the air-quality stations (365: a year, "
              "23.7 million observations).")
@click.option("--repeat", default=30, show_default=True, help="Requests per query.")
@click.option("--count-threshold", type=int,
              help="Rows up to which $count is exact; above it the API answers the "
              "planner's estimate [STADSPULS_COUNT_ESTIMATE_THRESHOLD; 100000]")
@click.option("--clients", help="Instead of one request at a time: comma-separated numbers "
              "of concurrent clients (e.g. 5,50), each round sending the latest values, a "
              "Datastream's newest 1,000 and a filtered page, then the service root as the "
              "ceiling; throughput and p50/p99 per request.")
@click.option("--seconds", default=30.0, show_default=True,
              help="How long each --clients round sends.")
def bench_api_command(days: int, repeat: int, count_threshold: int | None,
                      clients: str | None, seconds: float) -> None:
    """Latency of the readings API on a seeded database, median and p99 per query.

    Among the queries: $count on all Observations (an estimate past the count threshold;
    give a larger --count-threshold to time the exact count), and a deep page of one
    Datastream's Observations reached by $skip and by the $skiptoken of a next link.
    With --clients, throughput and latency under concurrent clients instead.
    """
    postgres = installed_postgres()
    if postgres is None:
        raise click.ClickException("PostgreSQL is not installed; run `stadspuls setup`")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request

    def say(line: str) -> None:
        log.info("%s", line)

    if clients is not None:
        try:
            counts = [int(n) for n in clients.split(",")]
        except ValueError:
            raise click.BadParameter("numbers separated by commas, such as 5,50",
                                     param_hint="--clients") from None
        click.echo(load_report(asyncio.run(bench_api_load(postgres, days, counts, seconds,
                                                          say))))
        return
    results = asyncio.run(bench_api(postgres, days, repeat, say, count_threshold))
    click.echo(f"{'query':<56} {'median ms':>10} {'p99 ms':>8}")
    for name, median, p99 in results:
        click.echo(f"{name:<56} {median:>10.1f} {p99:>8.1f}")


@bench.command("write")
@click.option("--batches", default=30, show_default=True, help="Batches per method.")
@click.option("--rows", default=5_000, show_default=True, help="Readings per batch.")
def bench_write_command(batches: int, rows: int) -> None:
    """How fast each write method moves a batch into the hypertable (median per batch)."""
    postgres = installed_postgres()
    if postgres is None:
        raise click.ClickException("PostgreSQL is not installed; run `stadspuls setup`")
    medians = asyncio.run(bench_write(postgres, batches, rows, lambda line: log.info("%s", line)))
    for method, (seconds, cpu) in sorted(medians.items(), key=lambda item: item[1]):
        click.echo(f"{method:<7} {seconds * 1000:7.1f} ms per batch  "
                   f"{rows / seconds:>10,.0f} readings/s  "
                   f"{cpu * 1000:6.1f} ms of it in the writing process")


@cli.command("load")
@click.option("--readings", default=100_000, show_default=True, help="Exactly this many.")
@click.option("--rate", type=float, help="Messages per second to aim at [as fast as possible]")
@click.option("--records-per-message", default=10, show_default=True)
@click.option("--devices", default=100, show_default=True,
              help="Synthetic devices syn-00001… to publish as (provision them with "
              "`stadspuls devices provision --scale N`).")
@click.option("--mqtt-port", type=int, envvar="STADSPULS_MQTT_PORT", default=11883,
              show_default=True)
@click.option("--mqtt-username", envvar="STADSPULS_MQTT_USERNAME",
              help="Broker account [the local stack's stadspuls-load account, if any]")
@click.option("--mqtt-password-file", type=click.Path(path_type=Path),
              envvar="STADSPULS_MQTT_PASSWORD_FILE",
              help="File holding its password [<state>/secrets/stadspuls-load.secret]")
@click.option("--state-dir", type=click.Path(path_type=Path), envvar="STADSPULS_STATE_DIR",
              default=Path(".stadspuls"), show_default=True,
              help="The local stack whose load account to use.")
def load_command(readings: int, rate: float | None, records_per_message: int, devices: int,
                 mqtt_port: int, mqtt_username: str | None, mqtt_password_file: Path | None,
                 state_dir: Path) -> None:
    """Publish an exact number of readings at QoS 1 and report what was published.

    Against a stack with authentication on it logs in as the stack's `stadspuls-load`
    account (an operator's tool that may publish as any device); give another account
    with --mqtt-username and --mqtt-password-file.
    """
    plan = LoadPlan([f"syn-{n:05d}" for n in range(1, devices + 1)], readings,
                    records_per_message, start=time.time() - readings)
    load_secret = state_dir / "secrets" / f"{LOAD_ACCOUNT}.secret"
    if mqtt_username is None and load_secret.exists():
        mqtt_username, mqtt_password_file = LOAD_ACCOUNT, load_secret
    try:
        login = read_login(mqtt_username, mqtt_password_file)
    except OSError as exc:
        raise click.ClickException(f"cannot read the password file: {exc.strerror}") from None
    try:
        result = publish("127.0.0.1", mqtt_port, plan, rate=rate, login=login)
    except ConnectionRefusedError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"published {result.readings:,} readings in {result.messages:,} messages in "
               f"{result.seconds:.1f} s ({result.readings / result.seconds:,.0f} readings/s, "
               f"{result.messages / result.seconds:,.0f} messages/s); all acknowledged")


cli.add_command(simulate)
access_cli.register(cli, database_option, stack_options)
cli.add_command(usage)
add_device_commands(devices, stack_options)


def main() -> None:
    """Entry point of the `stadspuls` console script."""
    try:
        cli(standalone_mode=True)
    except (DeployError, CoreError, DeviceError) as exc:
        click.echo(f"stadspuls: {exc}", err=True)
        sys.exit(1)
