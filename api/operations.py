"""One write: POST to a collection, PATCH, PUT or DELETE of an entity, carried out with a
Writer inside the caller's transaction. HTTP requests, $batch parts and MQTT messages all
come through `execute`, so they behave alike.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
import jsonpatch
import jsonpointer
from fastapi import Request
from fastapi.responses import JSONResponse, Response

from api import audit, paths, permissions, principal
from api.bodies import INVERSE, SCHEMAS, Aliases, Ref, draft
from api.changes import render
from api.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    NotAllowed,
    NotFound,
    TooSlow,
    Unavailable,
    UnsupportedMediaType,
)
from api.paths import Resource
from api.store import Sql, scope
from api.writer import Writer
from core.notify import VERSION, Change

log = logging.getLogger(__name__)

JSON = "application/json"
JSON_PATCH = "application/json-patch+json"
FORBIDDEN_BY_POLICY = ("the API key may not make this change: it touches an entity of "
                       "another agency, or changes a catalogue entity, which only an "
                       "admin's key does")


ATTEMPTS = 3  # of a write the database aborted to break a deadlock

T = TypeVar("T")


class Contended(Conflict):
    """A concurrent change got in the way; send the request again."""


class Busy(Unavailable):
    """The database is busy with other writes just now; send the request again after
    Retry-After seconds."""

    code = "busy"


@dataclass
class Outcome:
    """What a write answers, and the changes to announce once it is committed."""

    status: int
    body: Any = None
    location: str | None = None
    changes: list[Change] = field(default_factory=list)

    def response(self) -> Response:
        headers = {"Location": self.location} if self.location else None
        if self.body is None:
            return Response(status_code=self.status, headers=headers)
        return JSONResponse(self.body, status_code=self.status, headers=headers)


def base_url(request: Request) -> str:
    """The service root the request came to, for selfLinks."""
    return f"{str(request.base_url).rstrip('/')}/{VERSION}"


async def announce(request: Request, changes: Sequence[Change]) -> None:
    """Hand committed changes to the notifier (which never raises)."""
    if changes:
        await request.app.state.notifier.notify(changes)


async def in_transaction(pool: Any, work: Callable[[Any], Awaitable[T]],
                         lock_timeout_s: float | None = None) -> T:
    """`work` on a connection of `pool`, in a transaction; run again when the database
    aborted it to break a deadlock with a concurrent write (a new hypertable chunk takes
    locks that concurrent writes may hold), up to ATTEMPTS times in all. With
    `lock_timeout_s`, a lock the transaction waits for longer is a 503 (`Busy`): a write
    that queues for a lock makes every later one, ingest's batches included, queue behind it.

    Raises:
        Contended: the last attempt was aborted too.
    """
    attempt = 1
    while True:
        try:
            async with pool.acquire() as conn, conn.transaction():
                if lock_timeout_s is not None:
                    await set_lock_timeout(conn, lock_timeout_s)
                return await work(conn)
        except asyncpg.LockNotAvailableError:
            # Outside `database_errors`: the audit row, a Datastream's summary.
            raise Busy() from None
        except Contended:
            if attempt == ATTEMPTS:
                raise
            log.info("write aborted by a deadlock, attempt %d of %d", attempt, ATTEMPTS,
                     extra={"action": "write_retried"})
            attempt += 1


async def set_lock_timeout(conn: Any, seconds: float) -> None:
    """Locks the current transaction waits for longer than `seconds` fail it."""
    await conn.execute(f"SET LOCAL lock_timeout = {max(1, int(seconds * 1000))}")


async def write_audited(pool: Any, base: str, channel: str, action: str, target: str,
                        work: Callable[[Writer], Awaitable[Outcome]],
                        lock_timeout_s: float | None = None) -> Outcome:
    """`work` with a Writer of its own, in a transaction run again after a deadlock
    (`in_transaction`), and its audit row in that transaction.

    Args:
        pool: the pool to take the connection from.
        base: the service root, for selfLinks.
        channel, action, target: what the audit row says of the request.
        work: carries out the request; called once per attempt, with a new Writer.
        lock_timeout_s: how long the transaction may wait for a lock (`in_transaction`).

    Returns:
        The outcome of the attempt that committed.
    """
    who = principal.current.get()

    async def attempt(conn: Any) -> Outcome:
        writer = Writer(conn, base)
        outcome = await work(writer)
        await audit.record(conn, who, channel, action, target,
                           audit.entities([*writer.touched, *writer.deleted]),
                           outcome.status)
        return outcome

    return await in_transaction(pool, attempt, lock_timeout_s)


def media_type(headers: Any) -> str:
    """The media type of a request body, without parameters; JSON when none is named."""
    raw = headers.get("content-type") or JSON
    return str(raw).split(";")[0].strip().lower()


async def execute(writer: Writer, method: str, path: str, payload: Any,
                  content_type: str = JSON, aliases: Aliases | None = None) -> Outcome:
    """Carry out one write on `path` (below /v1.1) with the decoded JSON `payload`;
    `aliases` resolves the batch's links to what its earlier requests made.

    Raises:
        ApiError: the write cannot be done; the caller's transaction must roll back.
    """
    permissions.require_writer(principal.current.get())
    resource = paths.parse(path)
    if resource.member is not None or resource.ref:
        raise NotAllowed(f"{method} of /{path} is not offered; write whole entities")
    async with database_errors():
        if method == "POST":
            return await _create(writer, resource, payload, content_type, path, aliases)
        if method in ("PATCH", "PUT"):
            return await _update(writer, resource, payload, method, content_type, path,
                                 aliases)
        if method == "DELETE":
            return await _delete(writer, resource, path)
    raise NotAllowed(f"{method} is not a write; use POST, PATCH, PUT or DELETE")


async def _create(writer: Writer, resource: Resource, payload: Any, content_type: str,
                  path: str, aliases: Aliases | None) -> Outcome:
    if content_type != JSON:
        raise UnsupportedMediaType(f"POST takes {JSON}, not {content_type}")
    last = resource.steps[-1]
    if resource.single:
        raise NotAllowed(f"POST creates an entity in a collection; /{path} is one entity "
                         "(PATCH, PUT or DELETE it)")
    parent, implied = None, None
    if len(resource.steps) > 1:
        owner = resource.steps[-2]
        parent_id = await _find(writer, Resource(resource.steps[:-1]), path)
        if owner.entity.set_name not in permissions.CATALOGUE:
            # Adding to a Thing's or Datastream's collection is changing it.
            await permissions.check_change(writer.conn, principal.current.get(),
                                           owner.entity.set_name, parent_id)
        parent = Ref(owner.entity.set_name, parent_id)
        implied = INVERSE[(owner.entity.set_name, str(last.via))]
    entity_set = last.entity.set_name
    new_id = await writer.create(draft(entity_set, payload, last.entity.name, "create",
                                       implied, aliases=aliases), parent)
    changes = await writer.finish()
    body = next(c.body for c in changes if (c.entity_set, c.id) == (entity_set, new_id))
    return Outcome(201, body, body["@iot.selfLink"], changes)


async def _update(writer: Writer, resource: Resource, payload: Any, method: str,
                  content_type: str, path: str, aliases: Aliases | None) -> Outcome:
    entity = resource.steps[-1].entity
    entity_set = entity.set_name
    entity_id = await _address(writer, resource, path, entity_set)
    current = await current_document(writer, entity_set, entity_id)
    if method == "PATCH" and content_type == JSON_PATCH:
        document = apply_json_patch(current, payload)
    elif content_type != JSON:
        raise UnsupportedMediaType(
            f"{method} takes {JSON}" + (f" or {JSON_PATCH}" if method == "PATCH" else "")
            + f", not {content_type}")
    elif not isinstance(payload, dict):
        raise BadRequest(f"the body of {method} must be a JSON object")
    else:
        document = payload if method == "PUT" else {**current, **payload}
    new = draft(entity_set, document, entity.name, "update", aliases=aliases)
    before = draft(entity_set, current, entity.name, "update")
    fields = SCHEMAS[entity_set].fields
    changed = tuple(name for name, value in new.values.items()
                    if not _same(fields[name].kind, value, before.values.get(name))
                    ) + tuple(new.links)
    await writer.update(entity_set, entity_id, new, changed)
    changes = await writer.finish()
    body = next(c.body for c in changes if (c.entity_set, c.id) == (entity_set, entity_id))
    return Outcome(200, body, changes=[c for c in changes if c.changed != ()])


async def _delete(writer: Writer, resource: Resource, path: str) -> Outcome:
    entity_set = resource.steps[-1].entity.set_name
    entity_id = await _address(writer, resource, path, entity_set)
    if not await writer.delete(entity_set, entity_id):
        raise NotFound(f"nothing at /{path}")
    return Outcome(200, changes=await writer.finish())


async def _address(writer: Writer, resource: Resource, path: str, changing: str) -> int:
    """The id of the one entity `resource` addresses, locked until the commit; 404 when
    there is none, 403 when it is of `changing` (an entity set) and the request's key may
    not change it."""
    # Found as a read finds it: the lock below sees only what the key may change.
    await permissions.check_change(writer.conn, principal.current.get(), changing,
                                   await _find(writer, resource, path))
    # Locked: a concurrent update waits instead of writing back what this one read, and a
    # concurrent delete cannot remove it under us.
    return await _find(writer, resource, path, lock=True)


async def _find(writer: Writer, resource: Resource, path: str, lock: bool = False) -> int:
    """The id of the one entity `resource` addresses, as a read sees it; 404 when none."""
    last = resource.steps[-1]
    if not resource.single:
        raise NotAllowed(f"/{path} is a collection; address one entity, as "
                         f"{last.entity.set_name}(1)")
    sql = Sql()
    found = await writer.conn.fetchval(
        f"SELECT e.id FROM {last.entity.table} e WHERE {scope(resource, sql)} LIMIT 1"
        + (" FOR NO KEY UPDATE" if lock else ""), *sql.params)
    if found is None:
        raise NotFound(f"no {last.entity.name} at /{path}")
    return int(found)


async def current_document(writer: Writer, entity_set: str, entity_id: int) -> dict[str, Any]:
    """The writable properties of an entity as a GET shows them."""
    body = (await render(writer.conn, writer.base, entity_set, [entity_id]))[entity_id]
    return {name: body[name] for name in SCHEMAS[entity_set].fields if name in body}


def apply_json_patch(document: dict[str, Any], operations: Any) -> Any:
    """`document` changed by a JSON Patch (RFC 6902); a failed `test` is a conflict."""
    if not isinstance(operations, list) or not all(isinstance(o, dict) for o in operations):
        raise BadRequest("a JSON Patch is a list of operation objects")
    try:
        return jsonpatch.JsonPatch(operations).apply(document)
    except jsonpatch.JsonPatchTestFailed as exc:
        raise Conflict(f"JSON Patch test failed: {exc}") from None
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError,
            KeyError, ValueError, AttributeError) as exc:
        raise BadRequest(f"the JSON Patch cannot be applied: {exc}") from None


def _same(kind: str, a: Any, b: Any) -> bool:
    # Geometries are compared as structures: 18 and 18.0 are one coordinate.
    if kind == "geometry" and a is not None and b is not None:
        return bool(json.loads(a) == json.loads(b))
    return bool(a == b and type(a) is type(b))


@asynccontextmanager
async def database_errors() -> AsyncIterator[None]:
    """Refusals of the database as API errors that say why in the API's own words. The
    database's text names tables, constraints and stored values: it goes to the log only."""
    try:
        yield
    except asyncpg.LockNotAvailableError:
        raise Busy() from None
    except asyncpg.InsufficientPrivilegeError:
        # Row-level security (migration 0008): a row of another agency, or a catalogue
        # entity changed without an admin's key.
        raise Forbidden(FORBIDDEN_BY_POLICY) from None
    except asyncpg.QueryCanceledError:
        raise TooSlow() from None
    except asyncpg.PostgresError as exc:
        refusal = _refusal(exc)
        if refusal is None:
            raise
        log.info("write refused by the database (%s): %s", exc.sqlstate, exc,
                 extra={"action": "write_refused"})
        raise refusal from None


# By class, most specific first: what the API answers for a database refusal.
_REFUSALS: tuple[tuple[tuple[type[asyncpg.PostgresError], ...], type[ApiError], str], ...] = (
    ((asyncpg.UniqueViolationError,), Conflict, "an entity like this exists already"),
    ((asyncpg.ForeignKeyViolationError,), Conflict,
     "an entity this one links to was deleted meanwhile"),
    ((asyncpg.TransactionRollbackError,), Contended,
     "a concurrent change got in the way; send the request again"),
    ((asyncpg.CheckViolationError,), BadRequest, "a value breaks a rule of the data model"),
    ((asyncpg.NotNullViolationError,), BadRequest, "a mandatory value is missing"),
    ((asyncpg.DatetimeFieldOverflowError,), BadRequest,
     "a time lies outside the range the database keeps"),
    ((asyncpg.NumericValueOutOfRangeError,), BadRequest, "a number is out of range"),
    ((asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError),
     BadRequest, "a text holds a character the database cannot store (NUL)"),
    # PostGIS reports a geometry it cannot use as an internal error (XX000).
    ((asyncpg.DataError, asyncpg.InternalServerError), BadRequest,
     "the database cannot use a value of the request (a geometry, say)"),
)


def _refusal(exc: asyncpg.PostgresError) -> ApiError | None:
    for kinds, error, why in _REFUSALS:
        if isinstance(exc, kinds):
            return error(why)
    return None


def error_body(exc: ApiError) -> dict[str, Any]:
    """An error as the API's JSON error body."""
    return {"code": exc.code, "message": str(exc)}

