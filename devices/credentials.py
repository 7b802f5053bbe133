"""Broker credentials of field devices and gateways: create, rotate, revoke.

A device's or gateway's MQTT username is its id; its password is a secret made here and
returned once to the caller, who hands it to the device (which keeps it in flash). Only the
secret's hash is stored (core/secrets.py), in `mqtt_accounts`; the broker's password file
is rendered from that table (devices/broker_access.py), and the table's trigger tells the
process that keeps the file to render it again.

A client certificate for the mutual-TLS listener names an identity of its own,
"<id>.<suffix>", made new at each issue; the account keeps only the current one, and the
broker's ACL grants only it. Rotating or revoking thus cuts off every earlier certificate.
"""

from __future__ import annotations

import logging
import secrets
import string
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.queries import query
from core.secrets import hash_secret, new_secret
from devices.errors import AccountExists, CertificateNameTooLong, NoAccount, UnknownPublisher

log = logging.getLogger(__name__)

SUFFIX_ALPHABET = string.ascii_lowercase + string.digits
SUFFIX_LENGTH = 10
MAX_CERT_USERNAME = 64 - 1 - SUFFIX_LENGTH  # a common name has at most 64 characters


@dataclass(frozen=True)
class Account:
    """A broker account as stored (without its secret)."""

    username: str
    kind: str
    created_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None
    cert_identity: str | None = None  # common name of its current client certificate


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


async def create(conn: Any, username: str, *, certificate: bool = False) -> Credentials:
    """New broker credentials for a device or gateway without active ones (a revoked
    account becomes active again).

    Args:
        conn: an asyncpg connection.
        username: a device_id or gateway_id.
        certificate: also give it a new certificate identity (`Account.cert_identity`), the
            common name of the client certificate to issue; without it, none.

    Returns:
        The account and its new secret, which is kept nowhere else.

    Raises:
        UnknownPublisher: no such device or gateway.
        AccountExists: it has active credentials.
        CertificateNameTooLong: a certificate is asked for and the id leaves it no room.
    """
    async with conn.transaction():
        kind = await publisher_kind(conn, username)
        secret = new_secret()
        row = await conn.fetchrow(query("credentials", "create_account"), username, kind,
                                  hash_secret(secret), _identity(username, certificate))
    if row is None:
        raise AccountExists(f"{username} has broker credentials already; "
                            f"`stadspuls devices rotate {username}` replaces them")
    log.info("broker credentials created for %s %s", kind, username,
             extra={"action": "credentials_issued"})
    return Credentials(Account(**dict(row)), secret)


async def rotate(conn: Any, username: str, *, certificate: bool = False) -> Credentials:
    """A new secret for a device or gateway with active credentials; the old secret, and
    every client certificate issued before, stop working when the broker's files are next
    rendered (within seconds).

    Args:
        conn: an asyncpg connection.
        username: a device_id or gateway_id.
        certificate: give it a new certificate identity too; without it, none.

    Raises:
        UnknownPublisher: no such device or gateway.
        NoAccount: it has no active credentials to rotate (revoked ones stay revoked).
        CertificateNameTooLong: a certificate is asked for and the id leaves it no room.
    """
    kind = await publisher_kind(conn, username)
    secret = new_secret()
    row = await conn.fetchrow(query("credentials", "rotate_account"), username,
                              hash_secret(secret), _identity(username, certificate))
    if row is None:
        raise NoAccount(f"{username} has no active broker credentials; "
                        f"`stadspuls devices credentials {username}` creates them")
    log.info("broker credentials rotated for %s %s", kind, username,
             extra={"action": "credentials_issued"})
    return Credentials(Account(**dict(row)), secret)


async def revoke(conn: Any, username: str) -> Account:
    """Revoke a device's or gateway's credentials, its certificate identity with them: the
    broker disconnects and refuses its password login, and its certificates may do nothing.

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


def _identity(username: str, certificate: bool) -> str | None:
    """A new certificate identity, "<username>.<10 random characters>", or None."""
    if not certificate:
        return None
    if len(username) > MAX_CERT_USERNAME:
        raise CertificateNameTooLong(
            f"{username} is longer than {MAX_CERT_USERNAME} characters: a certificate's "
            "common name holds at most 64")
    suffix = "".join(secrets.choice(SUFFIX_ALPHABET) for _ in range(SUFFIX_LENGTH))
    return f"{username}.{suffix}"
