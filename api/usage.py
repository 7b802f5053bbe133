"""Metering the API's use per agency: requests answered and the bytes of their bodies.

`UsageMiddleware` is a pure ASGI middleware installed outermost, so it sees every request
and every byte of every body, and reads after the response whose request it was: the
principal the authentication middleware put in the scope (no principal: an anonymous
reader, metered to the agency `public`). The GETs of a `$batch`, which the API answers by
calling itself, are not metered on their own: the batch's response holds them. `metering`
flushes the amounts to `usage_daily` every `usage_flush_s` seconds and once more at
shutdown, together with the notifications the API published (their agencies looked up at
the flush). docs/costs.md tells what each metric counts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from api import principal
from api.principal import ANONYMOUS, SCOPE_KEY, Principal
from core import usage

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]

# In the scope of a request the API makes of itself (the GETs of a $batch): its bytes are
# in the response of the request that made it, which is the one metered.
SUB_REQUEST = "stadspuls.sub_request"



class UsageMiddleware:
    """Counts HTTP requests and response body bytes per agency into `meter`."""

    def __init__(self, app: Any, meter: usage.UsageMeter) -> None:
        self.app = app
        self.meter = meter

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get(SUB_REQUEST):
            await self.app(scope, receive, send)
            return
        served = 0

        async def counting(message: Message) -> None:
            nonlocal served
            if message["type"] == "http.response.body":
                served += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting)
        finally:
            principal: Principal = scope.get(SCOPE_KEY, ANONYMOUS)
            day = usage.today()
            self.meter.add(principal.agency_code, usage.API_REQUESTS, 1, day)
            self.meter.add(principal.agency_code, usage.API_BYTES, served, day)


def sub_requests(app: Any) -> Any:
    """`app` as the API calls it for a request of its own, which is not metered again."""

    async def call(scope: Scope, receive: Any, send: Any) -> None:
        scope[SUB_REQUEST] = True
        await app(scope, receive, send)

    return call


async def flush(pool: Any, meter: usage.UsageMeter, published: usage.OwnerTally) -> None:
    """Write what was metered since the last flush: requests, bytes and the notifications
    published, under their owners' agencies."""
    if not meter.pending() and not published.pending():
        return
    # As the platform, which sees every Datastream's owner through row-level security (a
    # restricted one's notifications are its agency's too).
    acting = principal.current.set(principal.PLATFORM)
    try:
        async with pool.acquire() as conn:
            owned = published.take()
            try:
                await usage.add_owned(conn, meter, usage.MQTT_MESSAGES, owned)
            except BaseException:
                published.restore(owned)
                raise
            await meter.flush(conn)
    finally:
        principal.current.reset(acting)


@contextlib.asynccontextmanager
async def metering(pool: Any, meter: usage.UsageMeter, published: usage.OwnerTally,
                   every_s: float) -> AsyncIterator[None]:
    """Flush usage every `every_s` seconds while the context lasts, and at its end."""

    async def flush_forever() -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                await flush(pool, meter, published)
            except Exception as exc:  # noqa: BLE001 - kept in the meter for the next try
                log.warning("usage not written (%s); trying again in %.0f s", exc, every_s,
                            extra={"action": "usage_flush_failed"})

    task = asyncio.create_task(flush_forever(), name="api.usage")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        try:
            await flush(pool, meter, published)
        except Exception as exc:  # noqa: BLE001 - a shutdown goes on without it
            log.warning("usage of the last %.0f s not written at shutdown: %s", every_s, exc,
                        extra={"action": "usage_abandoned"})
