"""The local stack of one state directory: PostgreSQL with TimescaleDB and PostGIS, and
Mosquitto, started by `stadspuls up`, by the test fixtures and by CI through this module,
and what a supervisor that died left running. Its supervision is in deploy/supervisor.py."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.database import connect, ensure_database
from core.errors import CoreError
from core.migrations import migrate
from core.queries import query
from core.secrets import new_secret
from deploy import ports
from deploy.access import StackAccess, write_private
from deploy.errors import ServiceFailed
from deploy.mosquitto import BrokerAuth, MosquittoBroker
from deploy.postgres import PostgresServer, stop_orphan
from deploy.process import (
    ManagedProcess,
    PidLock,
    as_user,
    read_pid,
    stop_pid,
)
from deploy.settings import StackSettings
from deploy.system import SERVICE_USER, Postgres
from deploy.tls import Authority, ensure_authority
from devices.broker_access import SYNC_EVERY_S, AccessSync
from devices.fleet import Fleet
from devices.provision import Provisioned, provision
from ingest.settings import IngestSettings

log = logging.getLogger(__name__)

RUNTIME_FILE = "runtime.json"
SUPERVISOR_PID = "stadspuls.pid"
# The secret the broker's plugin signs the publisher of each message with, and the API
# checks it by (deploy/mosquitto_publisher.c); made once, kept in the secrets directory.
SIGNING_FILE = "broker-publisher.secret"


def temporary_state_dir(prefix: str) -> Path:
    """A new temporary state directory that the services' unprivileged user can reach
    (for benchmarks and tests, which start stacks of their own)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def service_user() -> str | None:
    """The account services run as: the unprivileged service user when we are root."""
    return SERVICE_USER if os.geteuid() == 0 else None


class LocalStack:
    """Database and broker whose files live in one state directory."""

    def __init__(self, settings: StackSettings, install: Postgres) -> None:
        self.settings = settings
        self.state_dir = settings.state_dir.resolve()
        self.run_as = service_user()
        logs = self.state_dir / "logs"
        self.postgres = PostgresServer(
            install, self.state_dir / "postgres", settings.db_port, logs / "postgres.log",
            self.run_as,
        )
        broker_dir = self.state_dir / "mosquitto"
        self.access = StackAccess(self.state_dir, broker_dir, self.run_as)
        self.publisher_secret_file = self.access.secrets_dir / SIGNING_FILE
        auth = BrokerAuth(
            self.access.target.password_file, self.access.target.acl_file,
            self.access.target.certificate_acl_file,
            settings.mqtt_tls_port, settings.mqtt_mtls_port, Authority(self.state_dir / "tls"),
            self.publisher_secret_file,
        ) if settings.mqtt_auth else None
        self.broker = MosquittoBroker(broker_dir, settings.mqtt_port, logs / "mosquitto.log",
                                      self.run_as, auth)
        self.programs: list[ManagedProcess] = []
        # How each program shows it is ready, and how long it may take.
        self._readiness: dict[str, tuple[Callable[[], bool], float]] = {}

    @property
    def authority(self) -> Authority:
        """The stack's CA and the broker's server certificate (`<state>/tls`)."""
        return Authority(self.state_dir / "tls")

    async def start(self) -> None:
        """Start the database, bring its schema up to date, write the broker's access files
        (with authentication on) and start the broker."""
        ports.ensure_free(self.settings.db_port, "STADSPULS_DB_PORT or --db-port")
        ports.ensure_free(self.settings.mqtt_port, "STADSPULS_MQTT_PORT or --mqtt-port")
        if self.settings.mqtt_auth:
            ports.ensure_free(self.settings.mqtt_tls_port,
                              "STADSPULS_MQTT_TLS_PORT or --mqtt-tls-port")
            ports.ensure_free(self.settings.mqtt_mtls_port,
                              "STADSPULS_MQTT_MTLS_PORT or --mqtt-mtls-port")
        (self.state_dir / "logs").mkdir(parents=True, exist_ok=True)
        self._check_reachable()
        if self.postgres.initialise():
            log.info("created the database cluster in %s", self.postgres.datadir,
                     extra={"action": "cluster_created"})
        try:
            self.postgres.start()
            log.info("database listening on 127.0.0.1:%d", self.settings.db_port,
                     extra={"action": "database_started"})
            await ensure_database(self.settings.admin_database_url, self.settings.db_name)
            conn = await connect(self.settings.database_url)
            try:
                applied = await migrate(conn)
                log.info("schema up to date (%d migrations applied now)", len(applied),
                         extra={"action": "schema_ready"})
                if self.settings.mqtt_auth:
                    ensure_authority(self.state_dir / "tls", self.run_as)
                    if not self.publisher_secret_file.exists():
                        write_private(self.publisher_secret_file, new_secret() + "\n")
                    await self.access_sync().sync(conn)
            finally:
                await conn.close()
            self.broker.start()
            log.info("broker listening on 127.0.0.1:%d%s", self.settings.mqtt_port,
                     f" (TLS {self.settings.mqtt_tls_port}, mutual TLS "
                     f"{self.settings.mqtt_mtls_port}; no anonymous clients)"
                     if self.settings.mqtt_auth else " (anonymous clients allowed)",
                     extra={"action": "broker_started"})
        except BaseException:
            self.stop()
            raise
        self.write_runtime()

    def access_sync(self, every_s: float = SYNC_EVERY_S) -> AccessSync:
        """What keeps the broker's password and ACL files in step with the database; run
        `.run(connect)` while the stack runs (`up` does). It renders on every change and
        every `every_s` seconds (for keys that expire)."""
        return self.access.sync(self.settings.database_url, every_s)

    async def provision_fleet(self, fleet: Fleet) -> Provisioned:
        """Provision `fleet` and, with authentication on, give each of its publishers
        (gateways and devices that publish for themselves) broker credentials, kept for the
        simulator in `<state>/secrets/fleet.json`; the broker knows them on return."""
        conn = await connect(self.settings.database_url)
        try:
            provisioned = await provision(conn, fleet)
            if self.settings.mqtt_auth:
                await self.access.fleet_credentials(conn, fleet)
                await self.access_sync().sync(conn)
        finally:
            await conn.close()
        return provisioned

    def start_ingest(self) -> None:
        """Start `stadspuls ingest` against this stack; return once it is subscribed."""
        settings = self.settings
        ports.ensure_free(settings.ingest_metrics_port,
                          "STADSPULS_INGEST_METRICS_PORT or --ingest-metrics-port")
        self._program("ingest", IngestSettings(
            database_url=settings.database_url, mqtt_port=settings.mqtt_port,
            ingest_metrics_port=settings.ingest_metrics_port, api_url=settings.api_url,
            **self.service_login("stadspuls-ingest"),
        ).command(), lambda: ports.http_ok(settings.ingest_metrics_port, "/healthz"), 60)
        log.info("ingest consuming; metrics on http://127.0.0.1:%d/metrics",
                 settings.ingest_metrics_port, extra={"action": "ingest_started"})

    def start_api(self) -> None:
        """Start `stadspuls api` against this stack; return once it answers."""
        settings = self.settings
        ports.ensure_free(settings.api_port, "STADSPULS_API_PORT or --api-port")
        login = self.service_login("stadspuls-api") | self.publisher_signing()
        self._program("api", ["api", "--database-url", settings.database_url,
                              "--port", str(settings.api_port),
                              "--mqtt-port", str(settings.mqtt_port),
                              *_login_options(login)],
                      lambda: ports.http_ok(settings.api_port, "/v1.1"), 60)
        log.info("API on http://127.0.0.1:%d/v1.1", settings.api_port,
                 extra={"action": "api_started"})

    def start_simulator(self, fleet: str, scale: int) -> None:
        """Start the simulated fleet, publishing in real time to this stack's broker."""
        credentials = (["--credentials", str(self.access.fleet_file)]
                       if self.settings.mqtt_auth else [])
        # It publishes once a simulated minute; surviving its start-up is the readiness sign.
        self._program("simulator", [
            "simulate", "--fleet", fleet, "--scale", str(scale),
            "--mqtt-port", str(self.settings.mqtt_port), *credentials,
        ], lambda: self.service("simulator").running_for() > 1.0, 30)
        log.info("simulated fleet %s publishing in real time", fleet,
                 extra={"action": "simulator_started"})

    def service_login(self, account: str) -> dict[str, Any]:
        """mqtt_username and mqtt_password_file of a service account, for its settings;
        nothing with authentication off."""
        if not self.settings.mqtt_auth:
            return {}
        return {"mqtt_username": account,
                "mqtt_password_file": self.access.service_secret_file(account)}

    def publisher_signing(self) -> dict[str, Any]:
        """mqtt_publisher_secret_file for the API's settings: the secret the broker signs the
        publishers it names with; nothing with authentication off (no plugin names them)."""
        if not self.settings.mqtt_auth:
            return {}
        return {"mqtt_publisher_secret_file": self.publisher_secret_file}

    def _program(self, name: str, command: list[str], ready: Callable[[], bool],
                 timeout: float) -> None:
        program = ManagedProcess(
            name, [sys.executable, "-m", "deploy", *command],
            self.state_dir / "logs" / f"{name}.log", None, self.state_dir / f"{name}.pid",
        )
        program.start()
        self.programs.append(program)
        self._readiness[name] = (ready, timeout)
        program.wait_until(ready, timeout)

    def service(self, name: str) -> ManagedProcess:
        """The process of a service by name: database, broker, ingest, api or simulator."""
        services = {p.name: p for p in (self.postgres.process, self.broker.process,
                                        *self.programs)}
        return services[name]

    def restart(self, name: str, abandon: Callable[[], bool] = lambda: False) -> None:
        """Start a service that exited again, as it was started; return once it is ready.

        Args:
            abandon: polled while a program gets ready; true gives its start up.

        Raises:
            ServiceFailed: it exited again during start-up, was not ready in time or was
                abandoned (it is stopped then).
        """
        process = self.service(name)
        try:
            if name == "database":
                self.postgres.start()
            elif name == "broker":
                self.broker.start()
            else:
                ready, timeout = self._readiness[name]
                process.start()
                process.wait_until(ready, timeout, abandon)
        except ServiceFailed:
            process.stop(timeout=10)
            raise

    def stop(self) -> None:
        """Stop the platform's programs (last started first), the broker, the database."""
        for program in reversed(self.programs):
            program.stop()
        self.programs.clear()
        self.broker.stop()
        self.postgres.stop()
        (self.state_dir / RUNTIME_FILE).unlink(missing_ok=True)

    def exited(self) -> list[str]:
        """Names of the services whose process has exited, the database and broker first."""
        services = [self.postgres.process, self.broker.process, *self.programs]
        return [p.name for p in services if not p.alive()]

    def write_runtime(self) -> None:
        runtime = {
            "db_port": self.settings.db_port,
            "db_name": self.settings.db_name,
            "mqtt_port": self.settings.mqtt_port,
            "mqtt_auth": self.settings.mqtt_auth,
            "mqtt_tls_port": self.settings.mqtt_tls_port,
            "mqtt_mtls_port": self.settings.mqtt_mtls_port,
            "ingest_metrics_port": self.settings.ingest_metrics_port,
            "api_port": self.settings.api_port,
        }
        (self.state_dir / RUNTIME_FILE).write_text(json.dumps(runtime) + "\n")

    def _check_reachable(self) -> None:
        if self.run_as is None:
            return
        reachable = subprocess.run(
            ["test", "-x", str(self.state_dir)], check=False, **as_user(self.run_as),  # type: ignore[call-overload]
        )
        if reachable.returncode != 0:
            raise ServiceFailed(
                f"the service user {self.run_as!r} cannot reach the state directory "
                f"{self.state_dir}: a parent directory is not searchable by others; choose "
                "another with STADSPULS_STATE_DIR or --state-dir"
            )


def _login_options(login: dict[str, Any]) -> list[str]:
    if not login:
        return []
    signing = login.get("mqtt_publisher_secret_file")
    return ["--mqtt-username", login["mqtt_username"],
            "--mqtt-password-file", str(login["mqtt_password_file"]),
            *(["--mqtt-publisher-secret-file", str(signing)] if signing else [])]


def supervisor_lock(settings: StackSettings) -> PidLock:
    """The lock on the state directory's supervisor pid file, which `up` holds from before
    it stops or starts anything until the stack stopped."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    return PidLock(settings.state_dir / SUPERVISOR_PID)


def stop_orphans(settings: StackSettings, install: Postgres | None) -> list[str]:
    """Stop what a supervisor of this state directory that died (say by kill -9) left
    running, so that a new one can start; what was stopped. Call it only holding the
    `supervisor_lock`."""
    stopped = _stop_leftovers(settings.state_dir, install)
    if stopped:
        log.warning("stopped what an earlier run in %s left running after its supervisor "
                    "died: %s", settings.state_dir, ", ".join(stopped),
                    extra={"action": "orphans_stopped"})
    return stopped


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    running: bool
    detail: str


def settings_of_running_stack(settings: StackSettings) -> StackSettings:
    """The settings a running stack of this state directory was started with."""
    path = settings.state_dir / RUNTIME_FILE
    try:
        runtime = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return settings
    return settings.model_copy(update=runtime)


async def status(settings: StackSettings) -> list[ComponentStatus]:
    """What runs of the stack in this state directory, component by component."""
    settings = settings_of_running_stack(settings)
    state = settings.state_dir
    supervisor = read_pid(state / SUPERVISOR_PID)
    found = [ComponentStatus(
        "supervisor", supervisor is not None,
        f"pid {supervisor}" if supervisor else "not running",
    )]
    db_pid = read_pid(state / "postgres" / "postmaster.pid")
    db_detail = await _database_detail(settings) if db_pid else None
    found.append(ComponentStatus(
        "database", db_detail is not None,
        f"pid {db_pid}, 127.0.0.1:{settings.db_port}, {db_detail}" if db_detail
        else (f"pid {db_pid} but not answering" if db_pid else "not running"),
    ))
    mq_pid = read_pid(state / "mosquitto" / "mosquitto.pid")
    mq_up = mq_pid is not None and ports.accepts(settings.mqtt_port)
    found.append(ComponentStatus(
        "broker", mq_up,
        f"pid {mq_pid}, 127.0.0.1:{settings.mqtt_port}" if mq_up
        else (f"pid {mq_pid} but not accepting" if mq_pid else "not running"),
    ))
    ingest_pid = read_pid(state / "ingest.pid")
    ingest_up = ingest_pid is not None and ports.http_ok(settings.ingest_metrics_port,
                                                         "/healthz")
    found.append(ComponentStatus(
        "ingest", ingest_up,
        f"pid {ingest_pid}, metrics http://127.0.0.1:{settings.ingest_metrics_port}/metrics"
        if ingest_up else (f"pid {ingest_pid} but unhealthy" if ingest_pid else "not running"),
    ))
    api_pid = read_pid(state / "api.pid")
    api_up = api_pid is not None and ports.http_ok(settings.api_port, "/v1.1")
    found.append(ComponentStatus(
        "api", api_up,
        f"pid {api_pid}, http://127.0.0.1:{settings.api_port}/v1.1" if api_up
        else (f"pid {api_pid} but not answering" if api_pid else "not running"),
    ))
    simulator_pid = read_pid(state / "simulator.pid")
    found.append(ComponentStatus(
        "simulator", simulator_pid is not None,
        f"pid {simulator_pid}" if simulator_pid else "not running",
    ))
    if supervisor is None and any(c.running for c in found):
        found[0] = ComponentStatus(
            "supervisor", False, "not running: what runs below is left over from a "
            "supervisor that died and is neither restarted nor told of access changes; "
            "`stadspuls up` stops and starts it again, `stadspuls down` stops it")
    return found


# What `status` requires to be up for exit status 0: without the supervisor nothing is
# restarted and the broker's access files follow no change.
REQUIRED = ("supervisor", "database", "broker", "ingest", "api")


async def _database_detail(settings: StackSettings) -> str | None:
    try:
        conn = await connect(settings.database_url, wait=3)
    except CoreError:
        return None
    try:
        versions = {r["extname"]: r["extversion"] for r in await conn.fetch(
            query("admin", "extension_versions"))}
        counts = await conn.fetchrow(query("registry", "counts"))
    finally:
        await conn.close()
    return (
        f"TimescaleDB {versions.get('timescaledb', 'missing')}, "
        f"PostGIS {versions.get('postgis', 'missing')}, "
        f"{counts['things']} things, {counts['datastreams']} datastreams, "
        f"about {counts['observations']:,} observations"
    )


def stop_detached(settings: StackSettings, install: Postgres | None) -> list[str]:
    """Stop a stack of this state directory started in the background; what was stopped."""
    state = settings.state_dir
    stopped = []
    supervisor = read_pid(state / SUPERVISOR_PID)
    if supervisor is not None:
        stop_pid(supervisor, timeout=90)
        stopped.append("supervisor")
    return stopped + _stop_leftovers(state, install)


def _stop_leftovers(state: Path, install: Postgres | None) -> list[str]:
    """Stop the services of a state directory whose supervisor is gone; which ran."""
    stopped = []
    for program in ("simulator", "api", "ingest"):
        pid = read_pid(state / f"{program}.pid")
        if pid is not None:
            stop_pid(pid)
            stopped.append(program)
        (state / f"{program}.pid").unlink(missing_ok=True)
    broker = read_pid(state / "mosquitto" / "mosquitto.pid")
    if broker is not None:
        stop_pid(broker)
        stopped.append("broker")
    if install is not None and stop_orphan(state / "postgres", install, service_user()):
        stopped.append("database")
    (state / RUNTIME_FILE).unlink(missing_ok=True)
    return stopped


def describe(found: list[ComponentStatus]) -> str:
    width = max(len(c.name) for c in found)
    return "\n".join(
        f"{c.name:<{width}}  {'up  ' if c.running else 'down'}  {c.detail}" for c in found
    )


def as_dict(found: list[ComponentStatus]) -> list[dict[str, Any]]:
    return [{"name": c.name, "running": c.running, "detail": c.detail} for c in found]
