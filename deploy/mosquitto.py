"""The local Mosquitto broker, configured for consumers that acknowledge after commit.

The broker must hold everything an ingest process has not acknowledged yet, across a
restart of either side: persistence is on and saved every few seconds, and the in-flight and
queue limits are far above Mosquitto's defaults (20 in flight, 1000 queued per client), which
would otherwise throttle or drop a persistent session's backlog.
"""

from __future__ import annotations

import pwd
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

from deploy.ports import accepts
from deploy.process import ManagedProcess

MOSQUITTO = "/usr/sbin/mosquitto"


@dataclass(frozen=True)
class BrokerConfig:
    """What the generated mosquitto.conf says; the one place the broker is configured."""

    port: int
    data_dir: Path
    pid_file: Path
    autosave_interval_s: int = 5
    max_inflight_messages: int = 1_000
    max_queued_messages: int = 1_000_000
    max_queued_bytes: int = 0
    max_packet_size: int = 256 * 1024
    allow_anonymous: bool = True

    def render(self) -> str:
        lines = [
            "# Written by stadspuls at each start; changes here are overwritten.",
            "per_listener_settings false",
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
            "",
            "# Persistent sessions survive a broker restart.",
            "persistence true",
            f"persistence_location {self.data_dir}/",
            f"autosave_interval {self.autosave_interval_s}",
            f"pid_file {self.pid_file}",
            "",
            "# Room for the backlog of consumers that acknowledge only after commit.",
            f"max_inflight_messages {self.max_inflight_messages}",
            f"max_queued_messages {self.max_queued_messages}",
            f"max_queued_bytes {self.max_queued_bytes}",
            "# A bound on every message, so the backlog's size has one too.",
            f"max_packet_size {self.max_packet_size}",
            "",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
            "connection_messages true",
        ]
        return "\n".join(lines) + "\n"


class MosquittoBroker:
    """A Mosquitto process with its configuration and persistence in `directory`."""

    def __init__(self, directory: Path, port: int, logfile: Path, run_as: str | None) -> None:
        self.directory = directory
        self.config = BrokerConfig(
            port=port, data_dir=directory / "data", pid_file=directory / "mosquitto.pid"
        )
        self.config_file = directory / "mosquitto.conf"
        self.run_as = run_as
        self.process = ManagedProcess(
            "broker", [MOSQUITTO, "-c", str(self.config_file)], logfile, run_as
        )

    @property
    def port(self) -> int:
        return self.config.port

    def prepare(self) -> None:
        """Write the configuration and create the directories the broker writes to."""
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(self.config.render())
        if self.run_as is not None:
            group = pwd.getpwnam(self.run_as).pw_gid
            for path in (self.directory, self.config.data_dir):
                shutil.chown(path, self.run_as, group)

    def start(self, timeout: float = 20) -> None:
        self.prepare()
        self.process.start()
        self.process.wait_until(lambda: accepts(self.port), timeout)

    def stop(self) -> None:
        # SIGTERM makes Mosquitto write its persistence file before it exits.
        self.process.stop(signal.SIGTERM, timeout=30)
