"""Who the local stack lets into its broker: the secrets of its service accounts, the
credentials of the simulated fleet, and the sync that renders the broker's access files.

Service secrets are made once into `<state>/secrets/<account>.secret` (mode 0600) and
reused at every start; their hashes use a salt derived from the secret, so the rendered
password file stays the same from one process to the next. The fleet's secrets live in
`<state>/secrets/fleet.json` (0600), as a device keeps its own in flash: reused while the
file holds the secret of an active account, issued anew otherwise; never for an account an
operator revoked, which stays revoked.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from core.queries import query
from core.secrets import hash_secret, new_secret, verify_secret
from devices.broker_access import (
    API_ACL,
    INGEST_ACL,
    SYNC_EVERY_S,
    AccessSync,
    BrokerFiles,
    ServiceAccount,
)
from devices.credentials import create, rotate
from devices.errors import NoAccount
from devices.fleet import Fleet

log = logging.getLogger(__name__)

INGEST, API, LOAD = "stadspuls-ingest", "stadspuls-api", "stadspuls-load"
# `stadspuls load` publishes as any device of the local stack: an operator's tool.
LOAD_ACL = ("topic write devices/+/senml",)
SERVICES = {INGEST: INGEST_ACL, API: API_ACL, LOAD: LOAD_ACL}


def publishers(fleet: Fleet) -> list[tuple[str, str]]:
    """(id, kind) of every MQTT publisher of a fleet: its gateways, and the devices that
    sit behind none."""
    return ([(g.gateway_id, "gateway") for g in fleet.gateways]
            + [(d.device_id, "device") for d in fleet.devices if d.gateway is None])


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    path.chmod(0o600)


class StackAccess:
    """The access files, service secrets and fleet credentials of one state directory."""

    def __init__(self, state_dir: Path, broker_dir: Path, broker_user: str | None) -> None:
        self.secrets_dir = state_dir / "secrets"
        self.fleet_file = self.secrets_dir / "fleet.json"
        self.target = BrokerFiles(broker_dir / "passwords", broker_dir / "acl",
                                  broker_dir / "acl-certificates",
                                  broker_dir / "mosquitto.pid", broker_user)

    def service_secret_file(self, account: str) -> Path:
        """The file holding a service account's secret, made now if missing."""
        path = self.secrets_dir / f"{account}.secret"
        if not path.exists():
            write_private(path, new_secret() + "\n")
        return path

    def services(self) -> list[ServiceAccount]:
        accounts = []
        for name, acl in SERVICES.items():
            secret = self.service_secret_file(name).read_text().strip()
            salt = hashlib.sha256(f"{name}:{secret}".encode()).digest()[:12]
            accounts.append(ServiceAccount(name, hash_secret(secret, salt), acl))
        return accounts

    def sync(self, database_url: str, every_s: float = SYNC_EVERY_S) -> AccessSync:
        return AccessSync(database_url, self.target, self.services(), every_s)

    async def fleet_credentials(self, conn: Any, fleet: Fleet) -> dict[str, str | None]:
        """Secrets of the fleet's publishers: those in the fleet file that still open an
        active account, and new ones (created or rotated) for the rest; written back.

        An account an operator revoked stays revoked: its publisher gets no secret (None in
        the file, so the simulator leaves it out) and a warning names it.
        """
        try:
            kept: dict[str, str | None] = json.loads(self.fleet_file.read_text())
        except (FileNotFoundError, ValueError):
            kept = {}
        names = [name for name, _ in publishers(fleet)]
        stored = {r["username"]: r for r in await conn.fetch(
            query("credentials", "secret_hashes"), names)}
        secrets: dict[str, str | None] = {}
        issued = 0
        async with conn.transaction():  # one change for the broker, not one per publisher
            for name in names:
                secret = kept.get(name)
                account = stored.get(name)
                if account is not None and account["revoked"]:
                    secret = None
                elif account is None:
                    secret = (await create(conn, name)).secret
                    issued += 1
                elif secret is None or not verify_secret(secret, account["secret_hash"]):
                    try:
                        secret = (await rotate(conn, name)).secret
                        issued += 1
                    except NoAccount:  # revoked meanwhile
                        secret = None
                secrets[name] = secret
        if issued or secrets != kept:
            write_private(self.fleet_file, json.dumps(secrets, indent=1) + "\n")
        revoked = [name for name, secret in secrets.items() if secret is None]
        if revoked:
            log.warning("fleet publishers with revoked broker credentials stay revoked and "
                        "are not simulated: %s (`stadspuls devices credentials <id>` issues "
                        "new ones)", ", ".join(revoked),
                        extra={"action": "fleet_credentials_revoked"})
        log.info("fleet credentials: %d publishers, %d issued now", len(names), issued,
                 extra={"action": "fleet_credentials"})
        return secrets
