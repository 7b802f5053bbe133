import logging
import os
import socket
from pathlib import Path

import pytest

from deploy import system
from deploy.errors import PortBusy
from deploy.ports import free_port
from deploy.settings import StackSettings
from deploy.stack import LocalStack, service_user, status
from deploy.system import Postgres, ensure_system


def _actions(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [getattr(r, "action", "") for r in caplog.records]


def _uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


async def test_second_start_reuses_cluster_and_schema(
    state_dir: Path, postgres_install: Postgres, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = StackSettings(state_dir=state_dir, db_port=free_port(), mqtt_port=free_port(),
                             mqtt_tls_port=free_port(), mqtt_mtls_port=free_port())
    first = LocalStack(settings, postgres_install)
    await first.start()
    first.stop()
    assert "cluster_created" in _actions(caplog)
    assert "migration_applied" in _actions(caplog)

    caplog.clear()
    second = LocalStack(settings, postgres_install)
    await second.start()
    try:
        assert "cluster_created" not in _actions(caplog)
        assert "database_created" not in _actions(caplog)
        assert "migration_applied" not in _actions(caplog)
        found = {c.name: c for c in await status(settings)}
        assert found["database"].running and "TimescaleDB" in found["database"].detail
        assert found["broker"].running
    finally:
        second.stop()
    assert not any(c.running for c in await status(settings))


async def test_services_run_as_an_unprivileged_user_when_started_by_root(
    state_dir: Path, postgres_install: Postgres
) -> None:
    settings = StackSettings(state_dir=state_dir, db_port=free_port(), mqtt_port=free_port(),
                             mqtt_tls_port=free_port(), mqtt_mtls_port=free_port())
    local = LocalStack(settings, postgres_install)
    await local.start()
    try:
        expected = os.geteuid() if service_user() is None else system.pwd.getpwnam(
            system.SERVICE_USER).pw_uid
        assert local.postgres.process.pid is not None
        assert local.broker.process.pid is not None
        assert _uid(local.postgres.process.pid) == expected
        assert _uid(local.broker.process.pid) == expected
        assert expected != 0
    finally:
        local.stop()


async def test_a_busy_port_stops_start_up_before_anything_is_created(
    state_dir: Path, postgres_install: Postgres
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        busy = squatter.getsockname()[1]
        settings = StackSettings(state_dir=state_dir, db_port=free_port(), mqtt_port=busy)
        with pytest.raises(PortBusy, match="STADSPULS_MQTT_PORT"):
            await LocalStack(settings, postgres_install).start()
    assert not (state_dir / "postgres").exists()


def test_system_setup_a_second_time_runs_no_command(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    ensure_system()

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"setup ran a command although nothing was missing: {args}")

    monkeypatch.setattr(system, "_run", refuse)
    monkeypatch.setattr(system, "_apt_install", refuse)
    ensure_system()
    assert {"packages_present", "timescaledb_present"} <= set(_actions(caplog))
