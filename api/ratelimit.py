"""Rate limits: a token bucket per API key, or per client address for anonymous requests.

A bucket holds up to `burst` requests and refills at `per_s` a second; a request that finds
it empty is answered 429 with Retry-After (whole seconds until a token is back). The
buckets live in the process: each API replica limits on its own.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import TooManyRequests, error_response
from api.principal import ANONYMOUS, SCOPE_KEY, Principal
from api.settings import ApiSettings

# Past this many buckets, the full ones (which hold no memory of use) are dropped.
MAX_BUCKETS = 10_000


@dataclass(frozen=True)
class Limit:
    per_s: float
    burst: int


@dataclass
class _Bucket:
    tokens: float
    at: float
    limit: Limit

    def refill(self, now: float) -> None:
        self.tokens = min(float(self.limit.burst),
                          self.tokens + (now - self.at) * self.limit.per_s)
        self.at = now

    def wait(self) -> float:
        """0 when a token is there, else the seconds until there is."""
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.limit.per_s


class Buckets:
    """Token buckets by name."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 max_buckets: int = MAX_BUCKETS) -> None:
        self.clock = clock
        self.max_buckets = max_buckets
        self._buckets: dict[str, _Bucket] = {}

    def take(self, name: str, limit: Limit) -> float:
        """Take one token from bucket `name`: 0 when there was one, else the seconds until
        there is."""
        now = self.clock()
        bucket = self._buckets.get(name)
        if bucket is None:
            if len(self._buckets) >= self.max_buckets:
                self._prune(now)
            bucket = self._buckets[name] = _Bucket(float(limit.burst), now, limit)
        bucket.limit = limit
        bucket.refill(now)
        wait = bucket.wait()
        if wait == 0:
            bucket.tokens -= 1
        return wait

    def wait(self, name: str) -> float:
        """The seconds until bucket `name` holds a token (0: it does), taking none."""
        bucket = self._buckets.get(name)
        if bucket is None:
            return 0.0
        bucket.refill(self.clock())
        return bucket.wait()

    def _prune(self, now: float) -> None:
        # Each bucket by its own limit: buckets of keys and of addresses refill differently.
        full = [name for name, b in self._buckets.items()
                if b.tokens + (now - b.at) * b.limit.per_s >= b.limit.burst]
        for name in full:
            del self._buckets[name]


def too_many(wait: float, what: str) -> TooManyRequests:
    """The answer to a request that finds its bucket empty for `wait` seconds."""
    seconds = max(1, math.ceil(wait))
    return TooManyRequests(seconds, f"{what}; retry in {seconds} s")


class RateLimit:
    """ASGI middleware, inside Authentication: limits each principal's requests."""

    def __init__(self, app: ASGIApp, settings: ApiSettings) -> None:
        self.app = app
        self.buckets = Buckets()
        self.keyed = Limit(settings.rate_limit_per_s, settings.rate_limit_burst)
        self.anonymous = Limit(settings.anonymous_rate_limit_per_s,
                               settings.anonymous_rate_limit_burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        who: Principal = scope.get(SCOPE_KEY, ANONYMOUS)
        if who.key_id is not None:
            wait = self.buckets.take(f"key:{who.key_id}", self.keyed)
        else:
            wait = self.buckets.take(f"addr:{client_address(scope)}", self.anonymous)
        if wait > 0:
            await error_response(too_many(wait, "rate limit reached"))(scope, receive, send)
            return
        await self.app(scope, receive, send)


def client_address(scope: Scope) -> str:
    """The address the request came from ('-' when the server does not say)."""
    client = scope.get("client")
    return str(client[0]) if client else "-"
