"""Pid files are believed only about the processes that wrote them: `up` and `down` leave
alone a process that got a stale file's pid, and `up` holds the supervisor's pid file
from before it stops or starts anything, so that a second `up` stops nothing of the first."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy import stack as stacks
from deploy.process import PidLock, pid_alive, read_pid
from deploy.settings import StackSettings
from tests.acceptance.test_cli import ports, stadspuls

PID_FILES = ("stadspuls.pid", "ingest.pid", "api.pid", "simulator.pid",
             "mosquitto/mosquitto.pid", "postgres/postmaster.pid")


@pytest.fixture
def decoy() -> Iterator[subprocess.Popen[bytes]]:
    """A process whose command line names stadspuls, as one of ours would."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)",
                             "stadspuls-decoy"])
    time.sleep(0.1)
    yield proc
    proc.kill()
    proc.wait()


def name_in_pid_files(state_dir: Path, pid: int, written: float | None = None) -> None:
    for name in PID_FILES:
        path = state_dir / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"{pid}\n")
        if written is not None:
            os.utime(path, (written, written))


def test_a_stale_pid_file_given_to_another_process_is_not_believed(
    tmp_path: Path, decoy: subprocess.Popen[bytes],
) -> None:
    name_in_pid_files(tmp_path, decoy.pid, written=time.time() - 3600)  # before a reboot
    assert read_pid(tmp_path / "ingest.pid") is None
    name_in_pid_files(tmp_path, decoy.pid)  # written after its start, as ours are
    assert read_pid(tmp_path / "ingest.pid") == decoy.pid


def test_down_and_up_leave_alone_a_process_that_got_a_stale_pid(
    tmp_path: Path, decoy: subprocess.Popen[bytes],
) -> None:
    name_in_pid_files(tmp_path, decoy.pid, written=time.time() - 3600)
    down = stadspuls("down", "--state-dir", str(tmp_path), *ports())
    assert "nothing was running" in down.stdout
    assert stacks.stop_orphans(StackSettings(state_dir=tmp_path), None) == []  # what up does
    assert pid_alive(decoy.pid) and decoy.poll() is None


def test_a_second_up_while_the_first_starts_stops_nothing(
    tmp_path: Path, decoy: subprocess.Popen[bytes],
) -> None:
    first = PidLock(tmp_path / stacks.SUPERVISOR_PID)
    assert first.acquire()  # as `up` does before it stops or starts anything
    try:
        name_in_pid_files(tmp_path, decoy.pid)  # the first run's services, believed
        (tmp_path / stacks.SUPERVISOR_PID).write_text("")  # its pid not written yet
        second = stadspuls("up", "--skip-setup", "--no-simulator", "--state-dir",
                           str(tmp_path), *ports(), check=False)
        assert second.returncode == 1
        assert "already runs (it is starting)" in second.stderr
        assert decoy.poll() is None
        assert not PidLock(tmp_path / stacks.SUPERVISOR_PID).acquire()
    finally:
        first.release()
    assert not (tmp_path / stacks.SUPERVISOR_PID).exists()
    again = PidLock(tmp_path / stacks.SUPERVISOR_PID)
    assert again.acquire()
    again.release()
