"""The stack heals itself: a service that dies is started again by the supervisor, a
supervisor that died leaves nothing that blocks the next `up`, and an access change made
while it is away still reaches the broker (or the command says it did not)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from core.database import connect
from deploy.process import as_user, pid_alive
from deploy.stack import service_user
from deploy.system import installed_postgres
from tests.acceptance.test_cli import _running_under, ports, stadspuls
from tests.security.conftest import no2, results

DEVICE = "aq-hornsgatan-108"
PATIENCE_S = 120  # two busy cores stall a start for seconds; a restart takes about 2 s

# A first start in a new state directory (initdb, migrations) takes 15-25 s on two busy
# cores, and the crash loop another 35.
pytestmark = pytest.mark.timeout(360)


class Detached:
    """A stack started with `stadspuls up --detach --no-simulator` in a state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.given = ports()
        self.where = ["--state-dir", str(state_dir), *self.given]

    def port(self, option: str) -> int:
        return int(self.given[self.given.index(option) + 1])

    @property
    def database_url(self) -> str:
        return f"postgresql://stadspuls@127.0.0.1:{self.port('--db-port')}/stadspuls"

    def up(self) -> subprocess.CompletedProcess[str]:
        return stadspuls("up", "--detach", "--skip-setup", "--no-simulator", *self.where)

    def status(self) -> tuple[int, dict[str, Any]]:
        done = stadspuls("status", "--json", *self.where, check=False)
        return done.returncode, {c["name"]: c for c in json.loads(done.stdout)}

    def pid(self, name: str) -> int:
        files = {"supervisor": "stadspuls.pid", "database": "postgres/postmaster.pid",
                 "broker": "mosquitto/mosquitto.pid"}
        text = (self.state_dir / files.get(name, f"{name}.pid")).read_text()
        return int(text.split()[0])

    def secret(self, publisher: str) -> str:
        fleet = json.loads((self.state_dir / "secrets" / "fleet.json").read_text())
        return str(fleet[publisher])

    def supervisor_log(self) -> str:
        return (self.state_dir / "logs" / "stadspuls.log").read_text()

    def wait_until_back(self, name: str, old_pid: int) -> float:
        """Wait until `status` shows `name` up under a pid other than `old_pid` and the
        whole stack up; the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < PATIENCE_S:
            code, found = self.status()
            if code == 0 and found[name]["running"] and f"pid {old_pid}," not in (
                    found[name]["detail"] + ","):
                return time.monotonic() - started
            time.sleep(0.5)
        raise AssertionError(f"{name} not back within {PATIENCE_S} s:\n"
                             f"{self.supervisor_log()[-3000:]}")


@pytest.fixture
def detached(state_dir: Path) -> Iterator[Detached]:
    stack = Detached(state_dir)
    stack.up()
    yield stack
    stadspuls("down", *stack.where, check=False)
    assert _running_under(state_dir) == []


async def admitted(port: int, username: str, password: str) -> bool:
    """Whether the broker lets `username` log in with `password`."""
    try:
        async with aiomqtt.Client("127.0.0.1", port, username=username, password=password,
                                  identifier=f"test-{uuid.uuid4().hex[:8]}"):
            return True
    except aiomqtt.MqttError:
        return False


async def publish_reading(stack: Detached, value: float) -> None:
    """One no2 reading of DEVICE at QoS 1, with its own secret, acknowledged by the broker
    (which keeps it for ingest's persistent session until ingest has stored it)."""
    async with aiomqtt.Client("127.0.0.1", stack.port("--mqtt-port"), username=DEVICE,
                              password=stack.secret(DEVICE),
                              identifier=f"test-{uuid.uuid4().hex[:8]}") as client:
        await client.publish(f"devices/{DEVICE}/senml", no2(DEVICE, value, time.time()), qos=1)


async def stored(stack: Detached, *values: float) -> list[float]:
    """DEVICE's stored no2 results once all `values` are among them (or the patience is
    spent)."""
    conn = await connect(stack.database_url, wait=30)
    try:
        deadline = time.monotonic() + PATIENCE_S
        while True:
            found = await results(conn, DEVICE)
            if set(values) <= set(found) or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


def test_services_killed_or_stopped_are_started_again_and_readings_keep_landing(
    detached: Detached,
) -> None:
    asyncio.run(publish_reading(detached, 11.5))
    assert 11.5 in asyncio.run(stored(detached, 11.5))

    ingest = detached.pid("ingest")
    os.kill(ingest, signal.SIGKILL)
    asyncio.run(publish_reading(detached, 12.5))  # while ingest is down
    detached.wait_until_back("ingest", ingest)
    assert {11.5, 12.5} <= set(asyncio.run(stored(detached, 12.5)))

    database = detached.pid("database")
    install = installed_postgres()
    assert install is not None
    subprocess.run([str(install.bindir / "pg_ctl"), "stop", "-D",  # as its own user
                    str(detached.state_dir / "postgres"), "-m", "fast", "-s"],
                   check=True, cwd="/", **as_user(service_user()))  # type: ignore[call-overload]
    detached.wait_until_back("database", database)
    asyncio.run(publish_reading(detached, 13.5))
    assert 13.5 in asyncio.run(stored(detached, 13.5))

    broker = detached.pid("broker")
    os.kill(broker, signal.SIGKILL)
    detached.wait_until_back("broker", broker)
    asyncio.run(publish_reading(detached, 14.5))
    assert 14.5 in asyncio.run(stored(detached, 14.5))

    log = detached.supervisor_log()
    assert re.search(r"ingest exited \(killed by SIGKILL\); restarting in \d+\.\d s", log)
    assert re.search(r"database exited \(exit code 0\); restarting in", log)
    assert re.search(r"broker restarted \(pid \d+\), \d+\.\d s after it exited", log)
    assert detached.status()[0] == 0


def test_a_service_that_keeps_crashing_stops_the_whole_stack(detached: Detached) -> None:
    supervisor = detached.pid("supervisor")
    metrics_port = detached.port("--ingest-metrics-port")
    os.kill(detached.pid("ingest"), signal.SIGKILL)
    # Ingest cannot start while its metrics port is taken: every restart fails.
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        _bind_when_free(squatter, metrics_port)
        squatter.listen()
        deadline = time.monotonic() + 3 * PATIENCE_S
        while pid_alive(supervisor) and time.monotonic() < deadline:
            time.sleep(0.5)
    assert not pid_alive(supervisor)
    code, found = detached.status()
    assert code == 3
    assert not any(c["running"] for c in found.values())
    assert re.search(r"ingest (exited|did not come back) \(.*\), 5 crashes within 120 s; "
                     r"stopping the stack",
                     detached.supervisor_log())
    assert _running_under(detached.state_dir) == []


def test_status_fails_and_up_detach_starts_again_after_the_supervisor_is_killed(
    detached: Detached,
) -> None:
    orphans = [detached.pid(name) for name in ("database", "broker", "ingest", "api")]
    os.kill(detached.pid("supervisor"), signal.SIGKILL)

    code, found = detached.status()
    assert code == 3
    assert not found["supervisor"]["running"]
    assert "left over from a supervisor that died" in found["supervisor"]["detail"]
    assert all(found[name]["running"] for name in ("database", "broker", "ingest", "api"))

    again = detached.up()
    assert "stopped what an earlier run" in again.stderr
    assert "api, ingest, broker, database" in again.stderr
    assert not any(pid_alive(pid) for pid in orphans)
    code, found = detached.status()
    assert code == 0
    assert all(c["running"] for name, c in found.items() if name != "simulator")


def test_with_the_supervisor_dead_revoke_rotate_and_key_revoke_reach_the_broker(
    detached: Detached,
) -> None:
    mqtt = detached.port("--mqtt-port")
    old = detached.secret(DEVICE)
    gateway_secret = detached.secret("gw-norrmalm")
    assert asyncio.run(admitted(mqtt, DEVICE, old))
    os.kill(detached.pid("supervisor"), signal.SIGKILL)

    revoked = stadspuls("devices", "revoke", DEVICE, *detached.where)
    assert "the broker reloaded them" in revoked.stderr
    assert not asyncio.run(admitted(mqtt, DEVICE, old))

    rotated = json.loads(stadspuls("devices", "rotate", "gw-norrmalm", "--json",
                                   *detached.where).stdout)
    assert not asyncio.run(admitted(mqtt, "gw-norrmalm", gateway_secret))
    assert asyncio.run(admitted(mqtt, "gw-norrmalm", rotated["password"]))

    made = stadspuls("keys", "create", "--agency", "trafikkontoret", "--role", "reader",
                     "--label", "healing test", *detached.where).stdout
    key_id = re.search(r"key (\w+) ", made)
    key_text = re.search(r"^  (sp_\S+)$", made, re.MULTILINE)
    assert key_id and key_text
    assert asyncio.run(admitted(mqtt, key_id.group(1), key_text.group(1)))
    stadspuls("keys", "revoke", key_id.group(1), *detached.where)
    assert not asyncio.run(admitted(mqtt, key_id.group(1), key_text.group(1)))


def test_a_revocation_the_broker_did_not_get_fails_loudly(detached: Detached) -> None:
    os.kill(detached.pid("supervisor"), signal.SIGKILL)
    passwords = detached.state_dir / "mosquitto" / "passwords"
    passwords.unlink()
    passwords.mkdir()  # the access files cannot be written any more

    refused = stadspuls("devices", "revoke", DEVICE, *detached.where, check=False)
    assert refused.returncode == 1
    assert "broker credentials revoked" in refused.stdout  # the database has it
    assert "the broker's access files could not be written" in refused.stderr
    assert "the broker may still admit" in refused.stderr
    passwords.rmdir()


def _bind_when_free(sock: socket.socket, port: int) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            sock.bind(("127.0.0.1", port))
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def test_a_detached_start_that_fails_shows_its_own_error_not_an_earlier_banner(
    state_dir: Path,
) -> None:
    stack = Detached(state_dir)
    stack.up()
    stadspuls("down", *stack.where)
    assert "Press Ctrl-C to stop" in stack.supervisor_log()  # the earlier run's banner
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", stack.port("--db-port")))
        squatter.listen()
        failed = stadspuls("up", "--detach", "--skip-setup", "--no-simulator", *stack.where,
                           check=False)
    assert failed.returncode == 1
    assert f"port {stack.port('--db-port')} on 127.0.0.1 is already in use" in failed.stderr
    for banner_line in ("Stadspuls is up", "Press Ctrl-C to stop", "  api        http://"):
        assert banner_line not in failed.stderr
    assert _running_under(state_dir) == []
