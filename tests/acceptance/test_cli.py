"""The platform as a user runs it: the `stadspuls` command in a subprocess."""

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from core.database import connect
from deploy.ports import free_port


def stadspuls(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "deploy", *args], capture_output=True,
                          text=True, check=check, timeout=300)


def _running_under(state_dir: Path) -> list[str]:
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
    return [line for line in ps.stdout.splitlines() if str(state_dir) in line]


def ports() -> list[str]:
    return ["--db-port", str(free_port()), "--mqtt-port", str(free_port()),
            "--ingest-metrics-port", str(free_port()), "--api-port", str(free_port()),
            "--mqtt-tls-port", str(free_port()), "--mqtt-mtls-port", str(free_port())]


def test_up_detached_then_status_devices_and_down(state_dir: Path) -> None:
    where = ["--state-dir", str(state_dir)]
    stadspuls("up", "--detach", *where, *ports())
    try:
        report = stadspuls("status", "--json", *where)
        assert {c["name"]: c["running"] for c in json.loads(report.stdout)} == {
            "supervisor": True, "database": True, "broker": True, "ingest": True,
            "api": True, "simulator": True,
        }
        listed = json.loads(stadspuls("devices", "list", "--json", *where).stdout)
        assert len(listed) == 15
        assert {d["agency"] for d in listed} == {"miljoforvaltningen", "trafikkontoret"}
    finally:
        stopped = stadspuls("down", *where)
    assert "supervisor" in stopped.stdout
    after = stadspuls("status", *where, check=False)
    assert after.returncode == 3
    assert _running_under(state_dir) == []


def test_a_second_detached_start_reuses_the_state_and_reports_it_running(
    state_dir: Path,
) -> None:
    where = ["--state-dir", str(state_dir), *ports()]
    stadspuls("up", "--detach", *where)
    stadspuls("down", *where)
    try:
        again = stadspuls("up", "--detach", *where)
        assert "database    up" in again.stdout
        assert stadspuls("status", *where).returncode == 0
    finally:
        stadspuls("down", *where)
    assert _running_under(state_dir) == []


def test_help_lists_the_commands() -> None:
    out = stadspuls("--help").stdout
    for command in ("up", "down", "status", "migrate", "devices", "setup", "ingest", "api",
                    "simulate", "bench", "load"):
        assert f"  {command}" in out


def test_devices_list_against_a_database_that_is_not_there_is_a_clear_error() -> None:
    result = stadspuls("devices", "list", "--database-url",
                       f"postgresql://stadspuls@127.0.0.1:{free_port()}/nothing", check=False)
    assert result.returncode == 1
    assert "no database answers" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_backfilled_simulated_day_lands_in_the_database_in_full(state_dir: Path) -> None:
    where = ["--state-dir", str(state_dir)]
    given = ports()
    stadspuls("up", "--detach", "--no-simulator", *where, *given)
    try:
        mqtt_port = given[given.index("--mqtt-port") + 1]
        done = stadspuls("simulate", "--from", "2026-10-01", "--to", "2026-10-02",
                         "--mqtt-port", mqtt_port,
                         "--credentials", str(state_dir / "secrets" / "fleet.json"))
        assert "223,200 readings" in done.stdout + done.stderr
        db_port = int(given[given.index("--db-port") + 1])
        assert asyncio.run(_settled_count(db_port)) == 155 * 1440
    finally:
        stadspuls("down", *where)


async def _settled_count(db_port: int) -> int:
    """The observation count once it has stopped growing for 10 s (a backlog is written in
    batches of tens of thousands of readings, each a second or more on two busy cores, and
    a busy machine stalls ingest for seconds at a time)."""
    conn = await connect(f"postgresql://stadspuls@127.0.0.1:{db_port}/stadspuls")
    try:
        last, same = -1, 0
        for _ in range(600):
            now = int(await conn.fetchval("SELECT count(*) FROM observations"))
            same = same + 1 if now == last else 0
            if same >= 50:
                return now
            last = now
            await asyncio.sleep(0.2)
        return last
    finally:
        await conn.close()
