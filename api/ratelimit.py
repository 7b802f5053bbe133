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

from api.auth import error_response
from api.errors import TooManyRequests
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


class Buckets:
    """Token buckets by name."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, name: str, limit: Limit) -> float:
        """Take one token from bucket `name`: 0 when there was one, else the seconds until
        there is."""
        now = self.clock()
        bucket = self._buckets.get(name)
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._prune(now, limit)
            bucket = self._buckets[name] = _Bucket(float(limit.burst), now)
        bucket.tokens = min(float(limit.burst), bucket.tokens + (now - bucket.at) * limit.per_s)
        bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / limit.per_s

    def _prune(self, now: float, limit: Limit) -> None:
        full = [name for name, b in self._buckets.items()
                if b.tokens + (now - b.at) * limit.per_s >= limit.burst]
        for name in full:
            del self._buckets[name]


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
            client = scope.get("client")
            wait = self.buckets.take(f"addr:{client[0] if client else '-'}", self.anonymous)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            exc = TooManyRequests(seconds, f"rate limit reached; retry in {seconds} s")
            response = error_response(exc)
            response.headers["Retry-After"] = str(seconds)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
