"""Secrets given to devices, gateways, services and API users, and the hashes kept of them.

A secret is shown once, when it is made; only its hash is stored. The hash is Mosquitto's
own password-file format (`$7$<iterations>$<salt>$<digest>`, PBKDF2-HMAC-SHA512), so one
stored hash serves both the broker's password file and the API's key check. Secrets are 32
random bytes, so a low iteration count costs an attacker nothing he could use.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

ITERATIONS = 101
SALT_BYTES = 12


def new_secret() -> str:
    """A new random secret: 256 bits, URL-safe text."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    """The stored form of `secret`, in Mosquitto's `$7$` password-file format."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, ITERATIONS)
    return (f"$7${ITERATIONS}${base64.b64encode(salt).decode()}"
            f"${base64.b64encode(digest).decode()}")


def verify_secret(secret: str, hashed: str) -> bool:
    """Whether `secret` is the one `hashed` was made from (constant time)."""
    try:
        _, kind, iterations, salt, digest = hashed.split("$")
        if kind != "7":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.pbkdf2_hmac("sha512", secret.encode(), base64.b64decode(salt),
                                     int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(expected, actual)
