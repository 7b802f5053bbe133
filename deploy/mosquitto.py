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
accounts (a password account's name has no grants there). Each listener then loads a
plugin of the stack's own (deploy/mosquitto_publisher.c, compiled at start), which names
the publisher of each message in an MQTT 5 user property, signed with the stack's publisher
secret, so that the API can check the rights of a key that publishes an Observation. The
secret is in the configuration, which is therefore readable by the broker's user alone.
The plugin also reserves the service accounts' client ids for those accounts (ingest's
persistent session is worth taking over) and refuses retained messages on the device,
gateway and SensorThings topics.

The broker publishes its log, subscriptions included, on `$SYS/broker/log/...`, which the
ACL lets only the API's account read: the API publishes `$select` notification topics
only while someone is subscribed to them (core/subscriptions.py).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from deploy.access import SERVICES
from deploy.errors import SystemSetupError
from deploy.ports import accepts
from deploy.process import ManagedProcess
from deploy.tls import Authority

MOSQUITTO = "/usr/sbin/mosquitto"
PLUGIN_SOURCE = Path(__file__).with_name("mosquitto_publisher.c")
PLUGIN_NAME = "stadspuls_publisher.so"


def build_plugin(target: Path) -> Path:
    """Compile the publisher plugin to `target`, unless it is there and newer than its
    source (about 0.2 s with gcc); `target`.

    Raises:
        SystemSetupError: it does not compile (gcc, Mosquitto's plugin headers from the
            package mosquitto-dev, or OpenSSL's from libssl-dev are missing).
    """
    if target.exists() and target.stat().st_mtime >= PLUGIN_SOURCE.stat().st_mtime:
        return target
    building = target.with_name(f".{target.name}.building")
    try:
        subprocess.run(["gcc", "-O2", "-Wall", "-shared", "-fPIC", "-o", str(building),
                        str(PLUGIN_SOURCE), "-lcrypto"],
                       check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", None) or str(exc)
        raise SystemSetupError(f"the broker's publisher plugin does not compile (are gcc, "
                               f"mosquitto-dev and libssl-dev installed?): {detail}") from exc
    building.chmod(0o755)
    building.replace(target)
    return target


@dataclass(frozen=True)
class BrokerAuth:
    """Who may connect: the access files, the TLS listeners with their certificates, and
    the file holding the secret the publisher plugin signs with."""

    password_file: Path
    acl_file: Path
    certificate_acl_file: Path
    tls_port: int
    mtls_port: int
    authority: Authority
    publisher_secret_file: Path
    # Whose client ids the plugin reserves: a service's name, and its name and `-...`.
    services: tuple[str, ...] = tuple(SERVICES)

    @property
    def plugin(self) -> Path:
        """The compiled publisher plugin, beside the access files."""
        return self.password_file.parent / PLUGIN_NAME

    def render(self) -> list[str]:
        """The access lines of the plain listener, then the two TLS listeners."""
        plugin = [f"plugin {self.plugin}",
                  f"plugin_opt_secret {self.publisher_secret_file.read_text().strip()}",
                  f"plugin_opt_services {' '.join(self.services)}"]
        password = ["allow_anonymous false", f"password_file {self.password_file}",
                    f"acl_file {self.acl_file}", *plugin]
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
            "# The plugin does not see these logins, so the certificate's name is the client",
            "# id too: no certificate can take a service's session.",
            f"listener {self.mtls_port} 127.0.0.1",
            "allow_anonymous false",
            f"acl_file {self.certificate_acl_file}",
            *plugin,
            *tls,
            "require_certificate true",
            "use_identity_as_username true",
            "use_username_as_clientid true",
        ]


@dataclass(frozen=True)
class BrokerConfig:
    """What the generated mosquitto.conf says; the one place the broker is configured."""

    port: int
    data_dir: Path
    pid_file: Path
    # Write the persistence file after this many changes (messages queued or taken,
    # subscriptions, retained messages); seconds when autosave_on_changes is off.
    autosave_on_changes: bool = True
    autosave_interval: int = 1_000
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
            f"autosave_on_changes {'true' if self.autosave_on_changes else 'false'}",
            f"autosave_interval {self.autosave_interval}",
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
            "# The log on $SYS/broker/log/...: the API learns from it which $select topics",
            "# clients subscribe to (who connects, subscribes, unsubscribes, goes).",
            "log_dest topic",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "log_type subscribe",
            "log_type unsubscribe",
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
        """Write the configuration (mode 0600: it may hold the publisher secret), build
        the plugin it names, and create the directories the broker writes to."""
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        if self.config.auth is not None:
            build_plugin(self.config.auth.plugin)
        text = self.config.render()
        fd = os.open(self.config_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # one written before by an older version may be wider
        with os.fdopen(fd, "w") as out:
            out.write(text)
        if self.run_as is not None:
            group = pwd.getpwnam(self.run_as).pw_gid
            for path in (self.directory, self.config.data_dir, self.config_file):
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
