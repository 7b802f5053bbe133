"""The readings API: OGC SensorThings API v1.1 (Part 1: Sensing) under /v1.1.

The pool is built in the lifespan and reaches handlers through `StoreDep`; one exception
handler turns every ApiError into a JSON body with a stable code.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Annotated, Any
from urllib.parse import urlencode

import asyncpg
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import expand, extras, formats, mqtt_create, notifications, openapi, paths, query, write
from api.admin import router as admin_router
from api.auth import Authentication, KeyChecker
from api.bodies import BodyLimit
from api.entities import ENTITY_SETS
from api.errors import ApiError, BadRequest, TooSlow, Unavailable, error_response
from api.operations import base_url
from api.ratelimit import Limit, RateLimit
from api.serialize import entity_json, value_json
from api.settings import ApiSettings
from api.store import Store, create_pool
from api.usage import UsageMiddleware, metering
from core.notify import VERSION, NullNotifier
from core.usage import OwnerTally, UsageMeter

log = logging.getLogger(__name__)

_CLASS = "http://www.opengis.net/spec/iot_sensing/1.1/req/"
MQTT_CLASSES = [
    f"{_CLASS}create-observations-via-mqtt/observations-creation",
    f"{_CLASS}receive-updates-via-mqtt/receive-updates",
]
# Each is walked by its own module of the conformance suite in tests/conformance.
CONFORMANCE = [
    f"{_CLASS}datamodel",
    f"{_CLASS}resource-path/resource-path-to-entities",
    f"{_CLASS}request-data",
    f"{_CLASS}create-update-delete",
    f"{_CLASS}batch-request/batch-request",
    f"{_CLASS}data-array/data-array",
    *MQTT_CLASSES,
]
# What asyncpg raises when the database cannot be reached: a connect refused or reset, a
# connection lost under a query, a server starting, stopping or out of connection slots. A
# connection not had in time is the store's Unavailable (api/store.py), where it is waited
# for; any other timeout or OSError is a fault of ours, a 500.
UNREACHABLE: tuple[type[Exception], ...] = (
    ConnectionError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError, asyncpg.TooManyConnectionsError)


def create_app(settings: ApiSettings) -> FastAPI:
    """The API application, reading the database `settings` name."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await create_pool(settings)
        app.state.store = Store(pool)
        try:
            async with notifications.notifier(settings, app.state.published) as notifier, \
                    metering(pool, app.state.usage, app.state.published, settings.usage_flush_s):
                app.state.notifier = notifier
                async with mqtt_create.listening(app):
                    yield
        finally:
            await pool.close()

    app = FastAPI(title="Stadspuls readings API", version="0.1.0", lifespan=lifespan,
                  openapi_url="/openapi.json")
    app.state.settings = settings
    app.state.notifier = NullNotifier()
    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(asyncpg.QueryCanceledError, _too_slow)
    app.add_exception_handler(asyncpg.DataError, _unusable_value)
    app.add_exception_handler(asyncpg.InvalidParameterValueError, _unusable_value)
    app.add_exception_handler(asyncpg.PostgresError, _database_failed)
    for kind in UNREACHABLE:
        app.add_exception_handler(kind, _unreachable)
    app.include_router(extras.router)
    app.add_api_route(f"/{VERSION}", service_root, methods=["GET"])
    # Clients that join paths to a base URL ending in a slash ask for the root so too.
    app.add_api_route(f"/{VERSION}/", service_root, methods=["GET"], include_in_schema=False)
    app.add_api_route(f"/{VERSION}/{{path:path}}", read, methods=["GET"],
                      include_in_schema=False)
    app.include_router(write.router, prefix=f"/{VERSION}")
    app.include_router(admin_router)
    app.openapi = lambda: openapi.document(app)  # type: ignore[method-assign]
    # Access (docs/api.md): the key's principal first, then its rate limit.
    app.add_middleware(RateLimit, settings=settings)
    app.add_middleware(Authentication, checker=KeyChecker(
        settings.key_cache_s,
        Limit(settings.refused_key_limit_per_s, settings.refused_key_limit_burst)))
    # Usage per agency (api/usage.py): added last, so outermost, reading the principal the
    # authentication middleware leaves in the scope.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes,
                       max_text=settings.max_text_bytes, max_json=settings.max_json_bytes)
    app.add_middleware(Unreachable)
    app.state.usage, app.state.published = UsageMeter(), OwnerTally()
    app.add_middleware(UsageMiddleware, meter=app.state.usage)
    return app


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(_store)]


async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc)


async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's own parameter checks answer 400 in the API's error format, not 422."""
    problems = "; ".join(f"{'.'.join(str(x) for x in e['loc'][1:])}: {e['msg']}"
                         for e in exc.errors())
    return JSONResponse({"code": "bad_request", "message": problems}, status_code=400)


async def _unusable_value(request: Request, exc: asyncpg.PostgresError) -> JSONResponse:
    """A value the parser took but the database cannot use (an id past 64 bits, a date
    out of range, a negative substring length). The database's own text, which may name
    its internals, goes to the log only."""
    log.info("value refused by the database (%s): %s", exc.sqlstate, exc,
             extra={"action": "value_refused"})
    return await _api_error(request, BadRequest(
        "the database cannot use a value of the request (a number, time or length out of "
        "range, say)"))


async def _database_failed(request: Request, exc: asyncpg.PostgresError) -> JSONResponse:
    """Any other error of the database: a 500 in the API's words; the database's text,
    which names its tables and values, goes to the log only."""
    log.error("the database failed a request (%s): %s", exc.sqlstate, exc,
              extra={"action": "database_failed"})
    return error_response(ApiError("the request failed in the database; it is logged"))


async def _unreachable(request: Request, exc: Exception) -> JSONResponse:
    _log_unreachable(exc)
    return error_response(Unavailable())


def _log_unreachable(exc: BaseException) -> None:
    log.warning("database unreachable: %s: %s", type(exc).__name__, exc,
                extra={"action": "database_unreachable"})


class Unreachable:
    """ASGI middleware: a request that finds the database unreachable outside the
    handlers (checking its key, say) is answered 503 with Retry-After, not a 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Unavailable as exc:  # a connection not had in time
            if started:
                raise
            await error_response(exc)(scope, receive, send)
        except UNREACHABLE as exc:
            if started:
                raise
            _log_unreachable(exc)
            await error_response(Unavailable())(scope, receive, send)


async def _too_slow(request: Request, exc: asyncpg.QueryCanceledError) -> JSONResponse:
    return await _api_error(request, TooSlow())


async def service_root(request: Request) -> dict[str, Any]:
    """The service root: the entity sets, the conformance classes implemented, and where
    the MQTT extension's broker is."""
    base = base_url(request)
    settings: ApiSettings = request.app.state.settings
    claimed = CONFORMANCE if settings.mqtt_enabled else [
        c for c in CONFORMANCE if c not in MQTT_CLASSES]
    server: dict[str, Any] = {"conformance": claimed}
    if settings.mqtt_enabled:
        endpoint = {"endpoints": [f"mqtt://{settings.mqtt_host}:{settings.mqtt_port}"]}
        server.update(dict.fromkeys(MQTT_CLASSES, endpoint))
    return {
        "value": [{"name": name, "url": f"{base}/{name}"} for name in ENTITY_SETS],
        "serverSettings": server,
    }


async def read(path: str, request: Request, store: StoreDep) -> Response:
    """GET of any resource path below /v1.1, refused if its answer is larger than
    `max_response_bytes` (which the GET requests of a $batch share).

    Raises:
        BadRequest: the request is malformed, or its answer too large.
    """
    response = await _answer(path, request, store)
    limit = request.app.state.settings.max_response_bytes
    if len(response.body) > limit:
        log.info("answer of %d bytes refused", len(response.body),
                 extra={"action": "answer_too_large"})
        raise BadRequest(f"the answer would be {len(response.body)} bytes, more than the "
                         f"{limit} one request may have; ask for fewer entities ($top) or "
                         "fewer properties ($select) and follow @iot.nextLink")
    shared = expand.together.get()
    if shared is not None:
        shared.send(len(response.body))
    return response


async def _answer(path: str, request: Request, store: Store) -> Response:
    resource = paths.parse(path)
    entity = resource.steps[-1].entity
    settings: ApiSettings = request.app.state.settings
    opts = query.options(request.query_params, entity, settings.page_size,
                         settings.max_page_size)
    expansions = expand.parse(request.query_params.get("$expand"))
    base = base_url(request)
    shape = formats.requested(request.query_params.get("$resultFormat"), resource,
                              opts.select, expansions, base, settings)
    if not resource.single:
        read_opts = replace(opts, select=formats.needed_columns(shape, opts.select))
        page = await store.collection(resource, read_opts, settings.count_estimate_threshold)
        rows = page.rows
        body: dict[str, Any] = {}
        if page.total is not None:
            body["@iot.count"] = page.total
        if page.more and opts.top > 0:
            body["@iot.nextLink"] = _next_link(request, opts.skip + opts.top, page.next_token)
        if shape is not None:
            return await formats.render(shape, store.pool, rows, body)
        if resource.ref:
            body["value"] = [{"@iot.selfLink": f"{base}/{entity.set_name}({r['id']})"}
                             for r in rows]
        else:
            body["value"] = [entity_json(r, entity, base, opts.select) for r in rows]
            await _expand(store, entity, rows, body["value"], expansions, base, settings)
        return JSONResponse(body)
    row = await store.entity(
        resource, [resource.member] if resource.member is not None
        else formats.needed_columns(shape, opts.select))
    if shape is not None:
        return await formats.render_one(shape, store.pool, row)
    if resource.ref:
        return JSONResponse({"@iot.selfLink": f"{base}/{entity.set_name}({row['id']})"})
    if resource.member is not None:
        value = value_json(row[resource.member])
        if value is None:
            # OData: a property that is null, or its raw $value, is 204 No Content.
            return Response(status_code=204)
        if resource.value:
            return PlainTextResponse(value if isinstance(value, str) else json.dumps(value))
        return JSONResponse({resource.member: value})
    single = entity_json(row, entity, base, opts.select)
    await _expand(store, entity, [row], [single], expansions, base, settings)
    return JSONResponse(single)


async def _expand(store: Store, entity: Any, rows: list[dict[str, Any]],
                  out: list[dict[str, Any]], expansions: Any, base: str,
                  settings: ApiSettings) -> None:
    if expansions:
        async with store.pool.acquire() as conn:
            await expand.expand(conn, entity, rows, out, expansions, base, settings)


def _next_link(request: Request, skip: int, token: str | None = None) -> str:
    """The request with the next $skip, or with the $skiptoken after the page's last row
    (and no $skip) where keyset paging serves the order."""
    params = dict(request.query_params)
    if token is None:
        params["$skip"] = str(skip)
    else:
        params.pop("$skip", None)
        params["$skiptoken"] = token
    return f"{str(request.url).split('?')[0]}?{urlencode(params)}"
