"""Broker credentials of field devices and gateways: create, rotate, revoke.

A device's or gateway's MQTT username is its id; its password is a secret made here and
returned once to the caller, who hands it to the device (which keeps it in flash). Only the
secret's hash is stored (core/secrets.py), in `mqtt_accounts`; the broker's password file
is rendered from that table (devices/broker_access.py), and the table's trigger tells the
process that keeps the file to render it again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.queries import query
from core.secrets import hash_secret, new_secret
from devices.errors import AccountExists, NoAccount, UnknownPublisher

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Account:
    """A broker account as stored (without its secret)."""

    username: str
    kind: str
    created_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class Credentials:
    """A new secret for a device or gateway: shown once, never stored."""

    account: Account
    secret: str = ""

    @property
    def username(self) -> str:
        return self.account.username

    def __repr__(self) -> str:  # the secret stays out of logs and tracebacks
        return f"Credentials(username={self.username!r}, kind={self.account.kind!r})"


async def publisher_kind(conn: Any, username: str) -> str:
    """'device' or 'gateway'.

    Raises:
        UnknownPublisher: `username` is neither a registered device nor a gateway.
    """
    kinds = [r["kind"] for r in await conn.fetch(query("credentials", "publisher_kind"),
                                                 username)]
    if not kinds:
        raise UnknownPublisher(f"no device or gateway {username!r} is registered "
                               "(see `stadspuls devices list`)")
    return str(kinds[0])


async def account(conn: Any, username: str) -> Account | None:
    """The stored account of a device or gateway, if it has one."""
    row = await conn.fetchrow(query("credentials", "account"), username)
    return Account(**dict(row)) if row else None


async def create(conn: Any, username: str, *, rotate: bool = False) -> Credentials:
    """New broker credentials for the device or gateway `username`.

    Args:
        conn: an asyncpg connection.
        username: a device_id or gateway_id.
        rotate: replace active credentials (the old secret stops working) rather than fail.

    Returns:
        The account and its new secret, which is kept nowhere else.

    Raises:
        UnknownPublisher: no such device or gateway.
        AccountExists: it has active credentials and `rotate` is false.
    """
    async with conn.transaction():
        kind = await publisher_kind(conn, username)
        current = await account(conn, username)
        if current is not None and current.active and not rotate:
            raise AccountExists(f"{username} has broker credentials already; "
                                f"`stadspuls devices rotate {username}` replaces them")
        secret = new_secret()
        row = await conn.fetchrow(query("credentials", "store_account"), username, kind,
                                  hash_secret(secret))
    stored = Account(**dict(row))
    log.info("broker credentials %s for %s %s", "rotated" if current else "created", kind,
             username, extra={"action": "credentials_issued"})
    return Credentials(stored, secret)


async def rotate(conn: Any, username: str) -> Credentials:
    """A new secret for a device or gateway with active credentials; the old one stops
    working when the broker's files are next rendered (within seconds).

    Raises:
        UnknownPublisher: no such device or gateway.
        NoAccount: it has no active credentials to rotate.
    """
    await publisher_kind(conn, username)
    current = await account(conn, username)
    if current is None or not current.active:
        raise NoAccount(f"{username} has no active broker credentials; "
                        f"`stadspuls devices credentials {username}` creates them")
    return await create(conn, username, rotate=True)


async def revoke(conn: Any, username: str) -> Account:
    """Revoke a device's or gateway's credentials: the broker disconnects it and refuses it.

    Raises:
        UnknownPublisher: no such device or gateway.
        NoAccount: it has no active credentials.
    """
    await publisher_kind(conn, username)
    row = await conn.fetchrow(query("credentials", "revoke_account"), username)
    if row is None:
        raise NoAccount(f"{username} has no active broker credentials to revoke")
    log.info("broker credentials of %s revoked", username,
             extra={"action": "credentials_revoked"})
    return Account(**dict(row))
