"""Child processes of the local stack: started detached from the terminal, as the service
user when run by root, with their output in a log file, stopped by signal, and restarted
after a crash by the pace a `RestartPolicy` sets."""

from __future__ import annotations

import fcntl
import os
import pwd
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.pacing import jittered
from deploy.errors import ServiceFailed


class ManagedProcess:
    """One long-running program of the stack."""

    def __init__(self, name: str, args: list[str], logfile: Path, run_as: str | None,
                 pid_file: Path | None = None) -> None:
        self.name = name
        self.args = args
        self.logfile = logfile
        self.run_as = run_as
        self.pid_file = pid_file
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self, env: dict[str, str] | None = None) -> None:
        """Start the program; its own session keeps the terminal's Ctrl-C away from it."""
        with self.logfile.open("ab") as out:
            try:
                self.proc = subprocess.Popen(
                    self.args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True, env=env, **as_user(self.run_as),  # type: ignore[call-overload]
                )
            except OSError as exc:
                raise ServiceFailed(f"{self.name} could not be started: {exc}") from exc
        self.started_at = time.monotonic()
        if self.pid_file is not None:
            self.pid_file.write_text(f"{self.proc.pid}\n")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def running_for(self) -> float:
        """Seconds since start, if it still runs; 0 otherwise."""
        return time.monotonic() - self.started_at if self.alive() else 0.0

    def wait_until(self, ready: Callable[[], bool], timeout: float,
                   abandon: Callable[[], bool] = lambda: False) -> None:
        """Wait for `ready()`; raise ServiceFailed with the log's tail if the program exits,
        is not ready in `timeout` seconds, or `abandon()` turns true (the stack stops)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            if not self.alive():
                raise ServiceFailed(f"{self.name} exited during start-up:\n{self.log_tail()}")
            if abandon():
                raise ServiceFailed(f"{self.name}'s start abandoned: the stack stops")
            time.sleep(0.05)
        raise ServiceFailed(f"{self.name} not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30) -> None:
        """Ask the program to stop, wait, and kill it if it does not."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)

    def log_tail(self, lines: int = 15) -> str:
        return tail(self.logfile, lines)

    def exit_status(self) -> str:
        """How the program ended: "exit code N" or "killed by SIGNAME"."""
        code = self.proc.poll() if self.proc is not None else None
        if code is None:
            return "still running"
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit code {code}"


@dataclass
class RestartPolicy:
    """When a crashed service is started again: after a jittered exponential delay
    (`first_delay_s` doubling up to `max_delay_s` with each crash still in the window),
    and not at all once it has crashed `max_crashes` times within `window_s` seconds, or
    `max_crashes` times in a row without a restart that came back (a start that hangs
    until its readiness timeout crashes too seldom to fill the window)."""

    max_crashes: int = 5
    window_s: float = 120.0
    first_delay_s: float = 1.0
    max_delay_s: float = 30.0
    crashes: deque[float] = field(default_factory=deque)
    in_a_row: int = 0

    def crashed(self, now: float | None = None) -> float | None:
        """Record a crash (an exit, or a restart that failed); the seconds to wait before
        the restart, or None: give up."""
        now = time.monotonic() if now is None else now
        self.crashes.append(now)
        self.in_a_row += 1
        while self.crashes and self.crashes[0] <= now - self.window_s:
            self.crashes.popleft()
        if self.recent >= self.max_crashes or self.in_a_row >= self.max_crashes:
            return None
        return jittered(min(self.first_delay_s * 2 ** (len(self.crashes) - 1),
                            self.max_delay_s))

    def came_back(self) -> None:
        """Record a restart that succeeded: the crashes in a row start again from none."""
        self.in_a_row = 0

    @property
    def recent(self) -> int:
        """Crashes in the current window."""
        return len(self.crashes)

    def describe(self) -> str:
        """The crash count that matters now, in words."""
        if self.recent >= self.in_a_row:
            return f"{self.recent} crashes within {self.window_s:.0f} s"
        return f"{self.in_a_row} crashes in a row without coming back"


def as_user(run_as: str | None) -> dict[str, object]:
    """subprocess arguments that run a child as `run_as` with only that account's group."""
    if run_as is None:
        return {}
    account = pwd.getpwnam(run_as)
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file, or an empty string if there is none."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_pid(pid: int, sig: signal.Signals = signal.SIGTERM, timeout: float = 30) -> bool:
    """Signal a process that is not our child and wait for it to go, killing it if it
    outstays `timeout`; whether it had to be killed."""
    if not _signal_and_wait(pid, sig, timeout):
        _signal_and_wait(pid, signal.SIGKILL, 5)
        return False
    return True


def _signal_and_wait(pid: int, sig: signal.Signals, timeout: float) -> bool:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    return False


def read_pid(path: Path) -> int | None:
    """The pid on the first line of a pid file, if the file exists and the process it names
    is still the one that wrote it (see `_written_by`)."""
    try:
        first = path.read_text().split("\n", 1)[0].strip()
        written = path.stat().st_mtime
    except FileNotFoundError:
        return None
    if not first.isdigit():
        return None
    pid = int(first)
    return pid if pid_alive(pid) and _written_by(pid, written) else None


# Programs a pid file of the stack can name. A pid left in a stale file may since have been
# given to an unrelated process (after a reboot, the system's PostgreSQL or another stack's
# service), which must be neither reported nor signalled.
OUR_PROGRAMS = (b"stadspuls", b"deploy", b"postgres", b"mosquitto")
# /proc/stat's boot time is whole seconds and the wall clock may be stepped: a margin.
START_MARGIN_S = 2.0


def _written_by(pid: int, written: float) -> bool:
    """Whether `pid` runs one of our programs and started before its pid file was last
    written: every pid file of the stack is written by or just after the start of the
    process it names, while a pid given again to another process started after that."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no /proc to ask: trust the pid file
    except PermissionError:
        return False
    if not any(name in cmdline for name in OUR_PROGRAMS):
        return False
    started = process_started_at(pid)
    return started is None or started <= written + START_MARGIN_S


def process_started_at(pid: int) -> float | None:
    """When `pid` started, in seconds since the epoch (from /proc), or None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(line for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
    except (OSError, StopIteration):
        return None
    # Field 22, counted after the command name in parentheses (which may hold spaces).
    ticks = int(stat.rsplit(")", 1)[1].split()[19])
    return int(boot.split()[1]) + ticks / os.sysconf("SC_CLK_TCK")


class PidLock:
    """The supervisor's pid file, held under an exclusive flock from before the first
    service starts until the last one stopped: whoever holds it alone may start the
    services of its state directory or stop what an earlier run left running."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock without waiting; whether it was free."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            try:
                same = os.fstat(fd).st_ino == self.path.stat().st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                return True
            os.close(fd)  # locked a file its holder removed as it let go: try the new one

    def write_own_pid(self) -> None:
        """Name this process in the file, for `status` and `down`."""
        assert self._fd is not None, "write_own_pid without the lock"
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        """Remove the file and let go of the lock."""
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None
