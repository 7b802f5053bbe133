"""Authentication: who a request acts for, from its `Authorization` header.

The key goes as `Bearer <key>`, or as HTTP Basic with the key id as username and the whole
key as password (what clients with only a username and password to give, such as the
frost-sta-client's auth handler, send). Both are checked alike.

A pure ASGI middleware (so that the principal, a context variable, reaches the handlers and
the database pool): without the header a request is anonymous and may read open data; a
key that is malformed, unknown, wrong, revoked or expired is answered 401 at once, with a
`WWW-Authenticate` challenge. Keys are taken only from the header, never from the URL, and
no message or log line holds one.

Checked keys are remembered for `ApiSettings.key_cache_s` seconds, so a request does not pay
a database round trip, and a revoked key stops working within that time. Checking a key
that is not remembered costs a round trip and a hash: once a client address has had
`refused_key_limit_burst` keys refused (refilled at `refused_key_limit_per_s`), its
requests are answered 429 unless their key is remembered as valid.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from starlette.datastructures import Headers, QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from api import principal
from api.errors import ApiError, BadRequest, TooSlow, Unauthorized, error_response
from api.keys import key_id_of
from api.principal import ANONYMOUS, SCOPE_KEY, Principal
from api.ratelimit import Buckets, Limit, client_address, too_many
from core.queries import query
from core.secrets import verify_secret

log = logging.getLogger(__name__)

MAX_CACHED = 10_000
# Query parameters a client might put a key in by mistake; refused, so the key is not
# passed around in URLs (and logs of proxies) by habit.
KEY_PARAMETERS = ("access_token", "api_key", "apikey")
HEADER_FORM = ("the Authorization header must read 'Bearer <API key>', or be HTTP Basic "
               "with the key id as username and the whole key as password")


@dataclass(frozen=True)
class _Checked:
    """A key as checked: its principal and expiry, or why it is refused."""

    principal: Principal | None
    expires_at: datetime | None
    refusal: str | None
    at: float


class KeyChecker:
    """Checks keys against the api_keys table, remembering each answer for `ttl` seconds
    (the `max_cached` most recently used), and limiting the keys refused per client
    address to `refusals`."""

    def __init__(self, ttl: float, refusals: Limit, max_cached: int = MAX_CACHED) -> None:
        self.ttl = ttl
        self.refusals = refusals
        self.max_cached = max_cached
        self._refused = Buckets()
        self._cache: OrderedDict[bytes, _Checked] = OrderedDict()

    async def principal(self, pool: Any, authorization: str | None,
                        address: str = "-") -> Principal:
        """The principal of a request with this Authorization header value, sent from
        `address`.

        Raises:
            Unauthorized: the header does not hold a valid key.
            TooManyRequests: so many keys from `address` were refused lately that only
                keys known to be valid are checked.
        """
        if authorization is None:
            return ANONYMOUS
        try:
            return await self._principal(pool, authorization, address)
        except Unauthorized:
            self._refused.take(address, self.refusals)
            raise

    async def _principal(self, pool: Any, authorization: str, address: str) -> Principal:
        text, username = credentials(authorization)
        digest = hashlib.sha256(text.encode()).digest()
        checked = self._remembered(digest) if text else None
        if checked is None or checked.refusal is not None:
            # Guessing keys costs a database round trip and a hash each: not without end.
            wait = self._refused.wait(address)
            if wait > 0:
                raise too_many(wait, "too many refused API keys from this address")
        if not text:
            raise Unauthorized(HEADER_FORM)
        key_id = key_id_of(text)
        if key_id is None:
            raise self._refusal(None, "the credentials are not an API key of this service")
        if username is not None and username != key_id:
            raise self._refusal(None, "the Basic username is not the id of the API key "
                                      "given as password")
        if checked is None:
            checked = await self._check(pool, key_id, text)
            self._remember(digest, checked)
        if checked.refusal is not None:
            raise self._refusal(key_id, checked.refusal)
        assert checked.principal is not None and checked.expires_at is not None
        expired = _expired(key_id, checked.expires_at)
        if expired is not None:
            raise self._refusal(key_id, expired)
        return checked.principal

    def _remembered(self, digest: bytes) -> _Checked | None:
        checked = self._cache.get(digest)
        if checked is None or time.monotonic() - checked.at > self.ttl:
            return None
        self._cache.move_to_end(digest)
        return checked

    def _remember(self, digest: bytes, checked: _Checked) -> None:
        self._cache[digest] = checked
        self._cache.move_to_end(digest)
        while len(self._cache) > self.max_cached:
            self._cache.popitem(last=False)  # the least recently used

    async def _check(self, pool: Any, key_id: str, text: str) -> _Checked:
        async with pool.acquire() as conn:
            row = await conn.fetchrow(query("api_access", "key_for_check"), key_id)
        now = time.monotonic()
        if row is not None and not verify_secret(text, row["secret_hash"]):
            row = None
        refusal = _refusal_of(key_id, row)
        if refusal is not None or row is None:
            return _Checked(None, None, refusal, now)
        return _Checked(_principal_of(key_id, row), row["expires_at"], None, now)

    @staticmethod
    def _refusal(key_id: str | None, reason: str) -> Unauthorized:
        log.info("API key refused: %s", reason,
                 extra={"action": "api_key_refused", "key_id": key_id})
        return Unauthorized(reason)


async def key_principal(conn: Any, key_id: str) -> Principal:
    """The principal of key `key_id`, which the broker has let in (it checked the secret):
    for an Observation a key published over MQTT.

    Raises:
        Unauthorized: there is no such key, or it was revoked or has expired since.
    """
    row = await conn.fetchrow(query("api_access", "key_for_check"), key_id)
    refusal = _refusal_of(key_id, row) or _expired(key_id, row["expires_at"])
    if refusal is not None:
        raise Unauthorized(refusal)
    return _principal_of(key_id, row)


def _refusal_of(key_id: str, row: Any) -> str | None:
    """Why the key of `row` (None: no such key, or a wrong secret) is refused, expiry
    aside, which a cached check must look at again."""
    if row is None:
        return "the API key is not valid"
    if row["revoked_at"] is not None:
        return f"API key {key_id} was revoked"
    return None


def _expired(key_id: str, expires_at: datetime) -> str | None:
    """Why a key that expires at `expires_at` is refused now; None while it holds."""
    if expires_at > datetime.now(UTC):
        return None
    return f"API key {key_id} expired at {expires_at.isoformat()}"


def _principal_of(key_id: str, row: Any) -> Principal:
    return Principal(key_id=key_id, agency_id=row["agency_id"],
                     agency_code=row["agency_code"], role=row["role"])


def credentials(authorization: str) -> tuple[str, str | None]:
    """(key text, Basic username) sent in an Authorization header value; the username is
    None for Bearer, and the text empty when the header is neither form."""
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer":
        return token, None
    if scheme.lower() != "basic":
        return "", None
    try:
        decoded = base64.b64decode(token, validate=True).decode()
    except ValueError:  # not base64 (binascii.Error), not ASCII, or not UTF-8
        return "", None
    username, colon, password = decoded.partition(":")
    return (password, username) if colon else ("", None)


class Authentication:
    """ASGI middleware: resolves the principal of each HTTP request, sets
    `api.principal.current` and `scope[SCOPE_KEY]`, and answers 401 for a bad key (429
    when its address had too many refused)."""

    def __init__(self, app: ASGIApp, checker: KeyChecker) -> None:
        self.app = app
        self.checker = checker

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope[SCOPE_KEY] = ANONYMOUS
        try:
            if any(name in KEY_PARAMETERS for name in
                   QueryParams(scope.get("query_string", b"").decode("latin-1"))):
                raise BadRequest("API keys are taken only in the Authorization header "
                                 "(Bearer <key>, or Basic with the key id and the key), "
                                 "never in the URL")
            pool = scope["app"].state.store.pool
            try:
                who = await self.checker.principal(
                    pool, Headers(scope=scope).get("authorization"), client_address(scope))
            except asyncpg.QueryCanceledError:
                raise TooSlow() from None
        except ApiError as exc:
            await error_response(exc)(scope, receive, send)
            return
        scope[SCOPE_KEY] = who
        token = principal.current.set(who)
        try:
            await self.app(scope, receive, send)
        finally:
            principal.current.reset(token)
