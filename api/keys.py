"""API keys of agencies: their text, and making, listing and revoking them.

A key reads `sp_<key_id>_<secret>`: `key_id` is "k" and 11 lower-case letters or digits, and
is public (it names the key in lists and audit rows, and is its MQTT username); the secret
is 256 random bits. Only a hash of the whole text is stored, so a key is shown once, when
it is made. The same text is the key's MQTT password.
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from api.errors import BadRequest
from api.principal import ROLES
from core.queries import query
from core.secrets import hash_secret, new_secret

PREFIX = "sp_"
DEFAULT_DAYS = 90
_KEY = re.compile(r"^sp_(k[a-z0-9]{11})_([A-Za-z0-9_-]{16,128})$")
_KEY_ID = re.compile(r"k[a-z0-9]{11}")
_ID_ALPHABET = string.ascii_lowercase + string.digits


class KeyRefused(BadRequest):
    """The key cannot be made or changed."""


@dataclass(frozen=True)
class NewKey:
    """A key just made: its text (shown once) and what it is for."""

    key_id: str
    text: str = field(repr=False)  # kept out of logs and tracebacks
    agency: str
    role: str
    label: str
    expires_at: datetime


def is_key_id(name: str) -> bool:
    """Whether `name` is shaped like a key_id (as a key's MQTT username is)."""
    return _KEY_ID.fullmatch(name) is not None


def key_id_of(text: str) -> str | None:
    """The key_id of a key's text, or None when the text is not shaped like a key."""
    match = _KEY.match(text)
    return match[1] if match else None


def new_key_text() -> tuple[str, str]:
    """A fresh (key_id, key text)."""
    key_id = "k" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(11))
    return key_id, f"{PREFIX}{key_id}_{new_secret()}"


def expiry(days: int | None = None, until: datetime | None = None,
           now: datetime | None = None) -> datetime:
    """When a new key expires: at `until`, or after `days` (90 when neither is given)."""
    now = now or datetime.now(UTC)
    if until is not None:
        until = until if until.tzinfo else until.replace(tzinfo=UTC)
        if until <= now:
            raise KeyRefused(f"the expiry {until.isoformat()} is not in the future")
        return until
    days = DEFAULT_DAYS if days is None else days
    if days < 1:
        raise KeyRefused("a key lives at least one day (--days 1)")
    return now + timedelta(days=days)


async def create_key(conn: Any, agency: str, role: str, label: str,
                     expires_at: datetime) -> NewKey:
    """Make a key of `agency` (its code) with `role`.

    Raises:
        KeyRefused: the role or the label is not usable, or there is no such agency.
    """
    if role not in ROLES:
        raise KeyRefused(f"role {role!r} is none of {', '.join(ROLES)}")
    if not label.strip():
        raise KeyRefused("a key needs a label that says what it is for")
    key_id, text = new_key_text()
    row = await conn.fetchrow(query("api_access", "insert_key"), key_id, agency, role,
                              label.strip(), hash_secret(text), expires_at)
    if row is None:
        raise KeyRefused(f"there is no agency {agency!r}; `stadspuls agencies` lists them")
    return NewKey(key_id, text, agency, role, label.strip(), row["expires_at"])


async def list_keys(conn: Any, agency: str | None = None) -> list[dict[str, Any]]:
    """Every key (of one agency), newest first, without secrets or hashes."""
    return [dict(r) for r in await conn.fetch(query("api_access", "list_keys"), agency)]


async def revoke_key(conn: Any, key_id: str) -> datetime:
    """Revoke a key; when it was revoked (the first time, if it was already).

    Raises:
        KeyRefused: there is no such key.
    """
    row = await conn.fetchrow(query("api_access", "revoke_key"), key_id)
    if row is None:
        raise KeyRefused(f"there is no key {key_id!r}; `stadspuls keys list` shows them")
    revoked: datetime = row["revoked_at"]
    return revoked
