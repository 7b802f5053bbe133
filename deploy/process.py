"""Child processes of the local stack: started detached from the terminal, as the service
user when run by root, with their output in a log file, stopped by signal, and restarted
after a crash by the pace a `RestartPolicy` sets."""

from __future__ import annotations

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

    def wait_until(self, ready: Callable[[], bool], timeout: float) -> None:
        """Wait for `ready()`; raise ServiceFailed with the log's tail if the program exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            if not self.alive():
                raise ServiceFailed(f"{self.name} exited during start-up:\n{self.log_tail()}")
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
    and not at all once it has crashed `max_crashes` times within `window_s` seconds."""

    max_crashes: int = 5
    window_s: float = 120.0
    first_delay_s: float = 1.0
    max_delay_s: float = 30.0
    crashes: deque[float] = field(default_factory=deque)

    def crashed(self, now: float | None = None) -> float | None:
        """Record a crash; the seconds to wait before the restart, or None: give up."""
        now = time.monotonic() if now is None else now
        self.crashes.append(now)
        while self.crashes and self.crashes[0] <= now - self.window_s:
            self.crashes.popleft()
        if len(self.crashes) >= self.max_crashes:
            return None
        return jittered(min(self.first_delay_s * 2 ** (len(self.crashes) - 1),
                            self.max_delay_s))

    @property
    def recent(self) -> int:
        """Crashes in the current window."""
        return len(self.crashes)


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
    """The pid on the first line of a pid file, if the file exists and the process lives."""
    try:
        first = path.read_text().split("\n", 1)[0].strip()
    except FileNotFoundError:
        return None
    if not first.isdigit():
        return None
    pid = int(first)
    return pid if pid_alive(pid) and _ours(pid) else None


# Programs a pid file of the stack can name. A pid left in a stale file may since have been
# given to an unrelated process, which must be neither reported nor signalled.
OUR_PROGRAMS = (b"stadspuls", b"deploy", b"postgres", b"mosquitto")


def _ours(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no /proc to ask: trust the pid file
    except PermissionError:
        return False
    return any(name in cmdline for name in OUR_PROGRAMS)
