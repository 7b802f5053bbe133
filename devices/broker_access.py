"""The broker's password and ACL files, rendered from the database and kept current.

Who may connect, and what each may publish and read, follows from the database: active
device and gateway accounts (devices/credentials.py), API keys that are neither revoked nor
expired, and restricted Datastreams; plus the service accounts of the stack itself. The
rules (docs/mqtt.md):

- a device writes only `devices/{id}/senml`, a gateway only `gateways/{id}/senml`; so
  does the current client certificate of its account, whose common name
  ("<id>.<suffix>") is the username on the mutual-TLS listener. That listener reads an ACL
  file of its own holding only current certificate identities, so an earlier certificate,
  or one naming any other account, may do nothing there;
- an API key reads `v1.1/#` except the topics of another agency's restricted Datastreams
  (`topic deny` wins over a grant in Mosquitto); a writer key may also publish Observations
  on `v1.1/Datastreams({id})/Observations` of its agency's Datastreams, and on
  `v1.1/Observations`, where the Datastream is in the payload and the API checks the key's
  right to it (the broker names the publisher: deploy/mosquitto_publisher.c); an admin key
  reads and writes `v1.1/#`;
- a service account gets the lines it is given; only the API's reads the broker's log
  (`$SYS/broker/log/#`: who connects and subscribes to what).

`AccessSync` renders the three files, writes them atomically when they changed and sends
the broker SIGHUP, which makes it reload them and disconnect clients whose credentials went.
It renders on every NOTIFY of `broker_access_changed`, at the moment the next key expires
(which nothing in the database announces), and every `every_s` seconds besides.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pwd
import signal
import tempfile
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.queries import query
from devices.errors import BrokerAccessError

log = logging.getLogger(__name__)

HEADER = "# Written by stadspuls from its database; changes here are overwritten.\n"
CHANNEL = "broker_access_changed"
SYNC_EVERY_S = 30.0
# Past a key's expiry before the files are rendered again: the database must see it gone.
EXPIRY_MARGIN_S = 0.1

INGEST_ACL = ("topic read devices/+/senml", "topic read gateways/+/senml",
              "topic readwrite v1.1/#")
# The API learns from the broker's log which $select topics clients subscribe to.
API_ACL = ("topic readwrite v1.1/#", "topic read $SYS/broker/log/#")


@dataclass(frozen=True)
class ServiceAccount:
    """An account of the stack itself: its password hash and its ACL lines."""

    username: str
    secret_hash: str
    acl: tuple[str, ...]


@dataclass(frozen=True)
class AccessFiles:
    """The text of the password file, of its ACL file, and of the mutual-TLS listener's ACL
    file (certificate identities only)."""

    passwords: str
    acl: str
    certificate_acl: str
    next_expiry: datetime | None = None  # of the keys in them; not written


@dataclass(frozen=True)
class BrokerFiles:
    """Where the broker reads its access files, whose they are, and how to reach it."""

    password_file: Path
    acl_file: Path  # of the listeners that take a password
    certificate_acl_file: Path  # of the mutual-TLS listener
    pid_file: Path
    owner: str | None = None  # the broker's user, when it is not ours


def datastream_topics(datastream_id: int) -> tuple[str, str]:
    """The topic filters of everything published about one Datastream."""
    return f"v1.1/Datastreams({datastream_id})", f"v1.1/Datastreams({datastream_id})/#"


def key_acl(role: str, agency_id: int, restricted: list[tuple[int, int]],
            own: Iterable[int]) -> list[str]:
    """The ACL lines of an API key.

    Args:
        role: reader, writer or admin.
        agency_id: the key's agency.
        restricted: (Datastream id, agency id) of every restricted Datastream.
        own: ids of the Datastreams of the key's agency (used for writers).
    """
    if role == "admin":
        return ["topic readwrite v1.1/#"]
    lines = ["topic read v1.1/#"]
    lines += [f"topic deny {t}" for ds, agency in restricted if agency != agency_id
              for t in datastream_topics(ds)]
    if role == "writer":
        lines += [f"topic write v1.1/Datastreams({ds})/Observations" for ds in own]
        lines.append("topic write v1.1/Observations")
    return lines


def publisher_acl(kind: str, username: str) -> list[str]:
    """The one topic a device or gateway may publish on."""
    return [f"topic write {'devices' if kind == 'device' else 'gateways'}/{username}/senml"]


async def render(conn: Any, services: Iterable[ServiceAccount]) -> AccessFiles:
    """The files from the database's current state and the stack's service accounts.

    A name is given once: a service account wins over a device or key of the same name.
    Certificate identities go to an ACL file of their own, which only the mutual-TLS
    listener reads, and never to the password file.
    """
    accounts = await conn.fetch(query("credentials", "active_accounts"))
    keys = await conn.fetch(query("credentials", "active_keys"))
    restricted = [(r["id"], r["agency_id"])
                  for r in await conn.fetch(query("credentials", "restricted_datastreams"))]
    writer_agencies = sorted({k["agency_id"] for k in keys if k["role"] == "writer"})
    own: dict[int, list[int]] = {}
    if writer_agencies:
        for r in await conn.fetch(query("credentials", "agency_datastreams"), writer_agencies):
            own.setdefault(r["agency_id"], []).append(r["id"])
    entries: dict[str, tuple[str, list[str]]] = {}
    certificates: dict[str, list[str]] = {}
    for service in services:
        entries[service.username] = (service.secret_hash, list(service.acl))
    for a in accounts:
        grants = publisher_acl(a["kind"], a["username"])
        entries.setdefault(a["username"], (a["secret_hash"], grants))
        if a["cert_identity"] is not None:
            certificates[a["cert_identity"]] = grants
    for k in keys:
        entries.setdefault(k["key_id"], (k["secret_hash"], key_acl(
            k["role"], k["agency_id"], restricted, own.get(k["agency_id"], []))))
    passwords = HEADER + "".join(f"{name}:{hashed}\n" for name, (hashed, _) in entries.items())
    return AccessFiles(passwords, _acl({name: lines for name, (_, lines) in entries.items()}),
                       _acl(certificates), min((k["expires_at"] for k in keys), default=None))


def _acl(grants: dict[str, list[str]]) -> str:
    return HEADER + "".join(f"\nuser {name}\n" + "".join(f"{line}\n" for line in lines)
                            for name, lines in grants.items())


def write_atomically(path: Path, text: str, owner: str | None) -> bool:
    """Replace `path` by `text` (mode 0600, owned by `owner` if given) with one rename;
    whether it changed."""
    try:
        if path.read_text() == text:
            return False
    except FileNotFoundError:
        pass
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        Path(temporary).chmod(0o600)
        if owner is not None:
            account = pwd.getpwnam(owner)
            os.chown(temporary, account.pw_uid, account.pw_gid)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return True


def write(files: AccessFiles, target: BrokerFiles) -> bool:
    """Write the files where the broker reads them; whether any changed."""
    try:
        target.password_file.parent.mkdir(parents=True, exist_ok=True)
        changed = write_atomically(target.password_file, files.passwords, target.owner)
        changed = write_atomically(target.acl_file, files.acl, target.owner) or changed
        return write_atomically(target.certificate_acl_file, files.certificate_acl,
                                target.owner) or changed
    except OSError as exc:
        raise BrokerAccessError(f"cannot write the broker's access files: {exc}") from exc


def reload_broker(pid_file: Path) -> bool:
    """SIGHUP to the broker of `pid_file`: it reloads its password and ACL files. Whether a
    broker was there to signal."""
    try:
        pid = int(pid_file.read_text().split()[0])
        # A pid file left by a broker that died may name another process by now.
        if Path(f"/proc/{pid}/comm").read_text().strip() != "mosquitto":
            return False
        os.kill(pid, signal.SIGHUP)
    except (FileNotFoundError, IndexError, ValueError, ProcessLookupError):
        return False
    return True


class AccessSync:
    """Keeps the broker's access files in step with the database; see the module docstring."""

    def __init__(self, database_url: str, target: BrokerFiles,
                 services: Iterable[ServiceAccount], every_s: float = SYNC_EVERY_S) -> None:
        self.database_url = database_url
        self.target = target
        self.services = tuple(services)
        self.every_s = every_s
        self.renders = 0  # times the files were rendered; tests wait on it
        self.next_expiry: datetime | None = None  # of a key in the files rendered last
        self._changed = asyncio.Event()

    async def sync(self, conn: Any) -> bool:
        """Render, write if changed and reload the broker; whether anything changed."""
        files = await render(conn, self.services)
        self.next_expiry = files.next_expiry
        changed = await asyncio.to_thread(write, files, self.target)
        if changed:
            reloaded = reload_broker(self.target.pid_file)
            log.info("broker access files written%s", "; broker reloaded" if reloaded else "",
                     extra={"action": "broker_access_written"})
        self.renders += 1
        return changed

    async def run(self, connect: Callable[[str], Awaitable[Any]]) -> None:
        """Listen and render until cancelled; reconnects when the connection drops."""
        while True:
            try:
                conn = await connect(self.database_url)
            except Exception as exc:  # noqa: BLE001 - the database may be restarting
                log.warning("broker access sync cannot reach the database: %s", exc,
                            extra={"action": "broker_access_unreachable"})
                await asyncio.sleep(1)
                continue
            try:
                await conn.add_listener(CHANNEL, self._notified)
                await self._follow(conn)
            except Exception as exc:  # noqa: BLE001 - start over on a fresh connection
                log.warning("broker access sync failed: %s", exc,
                            extra={"action": "broker_access_failed"})
            finally:
                await conn.close()
            await asyncio.sleep(1)

    async def _follow(self, conn: Any) -> None:
        while not conn.is_closed():
            self._changed.clear()
            await self.sync(conn)
            try:
                async with asyncio.timeout(self._until_next_render()):
                    await self._changed.wait()
            except TimeoutError:
                pass

    def _until_next_render(self) -> float:
        """Seconds until the next key expires (and a margin), at most `every_s`."""
        if self.next_expiry is None:
            return self.every_s
        left = (self.next_expiry - datetime.now(UTC)).total_seconds()
        return min(self.every_s, max(0.0, left) + EXPIRY_MARGIN_S)

    def _notified(self, *args: Any) -> None:
        self._changed.set()
