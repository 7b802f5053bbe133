"""The local PostgreSQL cluster: created once in the state directory, started in the
foreground of the stack, and reached over loopback only."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
from importlib import resources
from pathlib import Path

from deploy.errors import ServiceFailed
from deploy.process import ManagedProcess, as_user, read_pid
from deploy.settings import DB_USER
from deploy.system import Postgres

CONFIG_FILE = "stadspuls.conf"


class PostgresServer:
    """A PostgreSQL cluster in `datadir`, listening on 127.0.0.1:`port`."""

    def __init__(
        self, install: Postgres, datadir: Path, port: int, logfile: Path, run_as: str | None
    ) -> None:
        self.install = install
        self.datadir = datadir
        self.port = port
        self.run_as = run_as
        self.process = ManagedProcess(
            "database",
            [str(install.bindir / "postgres"), "-D", str(datadir), "-p", str(port)],
            logfile,
            run_as,
        )

    @property
    def initialised(self) -> bool:
        return (self.datadir / "PG_VERSION").exists()

    def initialise(self) -> bool:
        """Create the cluster unless it exists; whether it was created now."""
        created = False
        if not self.initialised:
            self.datadir.mkdir(parents=True, exist_ok=True)
            self._own(self.datadir)
            self.datadir.chmod(0o700)
            self._run([
                str(self.install.bindir / "initdb"), "-D", str(self.datadir), "-U", DB_USER,
                "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8",
            ])
            created = True
        self._write_config()
        return created

    def start(self, timeout: float = 60) -> None:
        """Start the server and wait until it accepts connections."""
        if read_pid(self.datadir / "postmaster.pid") is not None:
            raise ServiceFailed(
                f"a PostgreSQL server already runs on {self.datadir}; stop it with "
                "`stadspuls down`"
            )
        self.process.start()
        self.process.wait_until(self.ready, timeout)

    def ready(self) -> bool:
        result = subprocess.run(
            [str(self.install.bindir / "pg_isready"), "-q", "-h", "127.0.0.1",
             "-p", str(self.port), "-U", DB_USER, "-d", "postgres"],
            check=False,
        )
        return result.returncode == 0

    def stop(self) -> None:
        """Fast shutdown: roll back open transactions, then a clean checkpoint."""
        self.process.stop(signal.SIGINT, timeout=60)

    def _write_config(self) -> None:
        template = resources.files("deploy").joinpath("templates", "postgresql.conf")
        target = self.datadir / CONFIG_FILE
        target.write_text(template.read_text(encoding="utf-8"))
        self._own(target)
        main = self.datadir / "postgresql.conf"
        include = f"include_if_exists = '{CONFIG_FILE}'"
        if include not in main.read_text():
            with main.open("a") as out:
                out.write(f"\n{include}\n")

    def _own(self, path: Path) -> None:
        if self.run_as is not None:
            shutil.chown(path, self.run_as, pwd.getpwnam(self.run_as).pw_gid)

    def _run(self, args: list[str]) -> None:
        result = subprocess.run(
            args, capture_output=True, text=True, check=False, cwd="/",
            env={**os.environ, "LC_ALL": "C.UTF-8"}, **as_user(self.run_as),  # type: ignore[call-overload]
        )
        if result.returncode != 0:
            raise ServiceFailed(f"{Path(args[0]).name} failed:\n{result.stdout}{result.stderr}")


def stop_orphan(datadir: Path, install: Postgres, run_as: str | None) -> bool:
    """Stop a server left running on `datadir` by a stack that died; whether one ran."""
    if read_pid(datadir / "postmaster.pid") is None:
        return False
    subprocess.run(
        [str(install.bindir / "pg_ctl"), "stop", "-D", str(datadir), "-m", "fast", "-s"],
        check=False, cwd="/", **as_user(run_as),  # type: ignore[call-overload]
    )
    return True
