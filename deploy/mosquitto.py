"""The local Mosquitto broker, configured for consumers that acknowledge after commit.

The broker must hold everything an ingest process has not acknowledged yet, across a
restart of either side: persistence is on and saved every few seconds, and the in-flight and
queue limits are far above Mosquitto's defaults (20 in flight, 1000 queued per client), which
would otherwise throttle or drop a persistent session's backlog.

With authentication on, anonymous clients are refused; the password and ACL files are
rendered from the database (devices/broker_access.py), and two more loopback listeners
speak TLS with the stack's own CA (deploy/tls.py): one for username and password, one that
requires a client certificate of that CA and takes the username from its common name. That
one reads an ACL file of its own, which grants only the certificate identities of active
accounts (a password account's name has no grants there).
"""

from __future__ import annotations

import pwd
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

from deploy.ports import accepts
from deploy.process import ManagedProcess
from deploy.tls import Authority

MOSQUITTO = "/usr/sbin/mosquitto"


@dataclass(frozen=True)
class BrokerAuth:
    """Who may connect: the access files, and the TLS listeners with their certificates."""

    password_file: Path
    acl_file: Path
    certificate_acl_file: Path
    tls_port: int
    mtls_port: int
    authority: Authority

    def render(self) -> list[str]:
        """The access lines of the plain listener, then the two TLS listeners."""
        password = ["allow_anonymous false", f"password_file {self.password_file}",
                    f"acl_file {self.acl_file}"]
        tls = [f"cafile {self.authority.ca_cert}", f"certfile {self.authority.server_cert}",
               f"keyfile {self.authority.server_key}", "tls_version tlsv1.2"]
        return [
            *password,
            "",
            "# TLS, with username and password.",
            f"listener {self.tls_port} 127.0.0.1",
            *password,
            *tls,
            "",
            "# Mutual TLS: a client certificate of the stack's CA names the account. Its ACL",
            "# file holds the current certificates' names only: no password account's grants.",
            f"listener {self.mtls_port} 127.0.0.1",
            "allow_anonymous false",
            f"acl_file {self.certificate_acl_file}",
            *tls,
            "require_certificate true",
            "use_identity_as_username true",
        ]


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
    auth: BrokerAuth | None = None

    def render(self) -> str:
        access = self.auth.render() if self.auth else ["allow_anonymous true"]
        lines = [
            "# Written by stadspuls at each start; changes here are overwritten.",
            "# Each listener names who may connect to it and its ACL file.",
            "per_listener_settings true",
            f"listener {self.port} 127.0.0.1",
            *access,
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

    def __init__(self, directory: Path, port: int, logfile: Path, run_as: str | None,
                 auth: BrokerAuth | None = None) -> None:
        self.directory = directory
        self.config = BrokerConfig(
            port=port, data_dir=directory / "data", pid_file=directory / "mosquitto.pid",
            auth=auth,
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
        ports = [self.port]
        if self.config.auth is not None:
            ports += [self.config.auth.tls_port, self.config.auth.mtls_port]
        self.process.wait_until(lambda: all(accepts(p) for p in ports), timeout)

    def stop(self) -> None:
        # SIGTERM makes Mosquitto write its persistence file before it exits.
        self.process.stop(signal.SIGTERM, timeout=30)
