"""One write: POST to a collection, PATCH, PUT or DELETE of an entity, carried out with a
Writer inside the caller's transaction. HTTP requests, $batch parts and MQTT messages all
come through `execute`, so they behave alike.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg
import jsonpatch
import jsonpointer
from fastapi import Request
from fastapi.responses import JSONResponse, Response

from api import audit, paths, permissions, principal
from api.bodies import INVERSE, SCHEMAS, Aliases, Draft, Ref, draft
from api.changes import render
from api.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    NotAllowed,
    NotFound,
    PayloadTooLarge,
    TooSlow,
    Unavailable,
    UnsupportedMediaType,
)
from api.paths import Resource
from api.store import Sql, scope
from api.writer import Writer
from core.notify import VERSION, Change
from core.queries import query

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


class TooManyObservations(PayloadTooLarge):
    """The request holds more Observations than one request may; split it."""


class Busy(Unavailable):
    """The database is busy with other writes just now; send the request again after
    Retry-After seconds."""

    code = "busy"


def check_observation_count(count: int, limit: int, what: str) -> None:
    """413 when `count` Observations are more than `limit`, saying how to split them."""
    if count > limit:
        raise TooManyObservations(
            f"{what} holds {count} Observations; at most {limit} are taken in one request: "
            f"split it into requests of at most {limit}")


Planned = list[tuple[int | None, datetime | None]]


def planned_observations(path: str, payload: Any, aliases: Aliases | None = None,
                         owner: str | None = None) -> Planned:
    """(Datastream, phenomenon time) of every Observation a POST of `payload` to `path`
    (below /v1.1) creates, itself and inline at any depth; None where it is not known
    ahead: a Datastream made in the same request, an Observation without phenomenonTime.

    Args:
        path: the collection posted to, as `Datastreams(5)/Observations`; with `owner`,
            a navigation of an entity made earlier in a batch, as `Observations`.
        payload: the decoded body.
        aliases: in a batch, resolves links to entities made earlier in it (to id 0,
            not known yet).
        owner: the entity set of the entity `path` navigates from, not known yet.

    A body that is no valid entity (answered when the write runs) or a path that takes
    no POST is counted by its "Observations" members, times not known.
    """
    target = _post_target(path, owner)
    if target is not None:
        entity_set, implied, stream = target
        try:
            made = draft(entity_set, payload, entity_set, "create", implied, aliases=aliases)
        except ApiError:
            pass
        else:
            return list(_observations_of(made, stream))
    posted = 1 if path.rsplit("/", 1)[-1] == "Observations" else 0
    return [(None, None)] * (posted + count_inline(payload))


def count_inline(body: Any) -> int:
    """How many Observations a JSON body holds inline, by its "Observations" members."""
    if isinstance(body, list):
        return sum(count_inline(item) for item in body)
    if not isinstance(body, dict):
        return 0
    return sum((len(v) if k == "Observations" and isinstance(v, list) else 0)
               + count_inline(v) for k, v in body.items())


def _post_target(path: str, owner: str | None) -> tuple[str, str | None, int | None] | None:
    """The entity set a POST to `path` creates in, the link its place implies and the
    Datastream it is in when known; None for a path that takes no POST."""
    if owner is not None:
        return (path, INVERSE.get((owner, path)), None) if path in SCHEMAS else None
    try:
        resource = paths.parse(path)
    except ApiError:
        return None
    if resource.single or resource.member is not None or resource.ref:
        return None
    last = resource.steps[-1]
    if len(resource.steps) == 1:
        return last.entity.set_name, None, None
    parent = resource.steps[-2]
    stream = parent.entity_id if parent.entity.set_name == "Datastreams" else None
    return (last.entity.set_name, INVERSE.get((parent.entity.set_name, str(last.via))),
            stream)


def _observations_of(d: Draft, stream: int | None) -> Iterator[tuple[int | None,
                                                                     datetime | None]]:
    """Of `d` and the drafts inline in it; `stream` is the Datastream `d` is in, if known."""
    if d.entity_set == "Observations":
        link = d.links.get("Datastream", [None])[0]
        if link is not None:
            stream = link.id if isinstance(link, Ref) and link.id else None
        time = d.values.get("phenomenonTime")
        yield stream, time[0] if time else None
    inner = stream if d.entity_set == "Datastreams" else None  # a new one's is None
    for items in d.links.values():
        for item in items:
            if isinstance(item, Draft):
                yield from _observations_of(item, inner)


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


async def make_chunks(pool: Any, times: Sequence[tuple[int | None, datetime | None]],
                      lock_timeout_s: float, max_chunks: int) -> None:
    """Create the chunks of the observations hypertable that the (Datastream, phenomenon
    time) pairs `times` fall in and that do not exist yet, each in a short transaction of
    its own, ahead of the write that fills them.

    A chunk is made by its first row, and the transaction that makes it holds a lock on
    datastreams and features_of_interest (the chunk's foreign keys) that every writer of
    a Datastream's summary, ingest included, waits for until it commits: made inside a
    large write, that lock would stop ingest for the whole write. A probe row makes the
    chunk and is deleted in the same transaction. A time without a Datastream (one made in
    the same request) cannot be probed, nor can one the database refuses the probe of (a
    Datastream the key may not write): their chunks are left to the write itself. A time
    of None (the time the Observation arrives) is in the current chunk.

    The write then holds a few locks on each chunk it fills until it commits, and the
    server's lock table is shared by every session: more than `max_chunks` chunks is a 413.

    Raises:
        TooManyObservations: the times fall in more than `max_chunks` chunks.
        Busy: the lock was not had within `lock_timeout_s`.
    """
    stream_at: dict[datetime, int | None] = {}
    for stream, at in times:
        if at is not None and stream_at.get(at) is None:
            stream_at[at] = stream
    if not stream_at:
        return
    async with pool.acquire() as conn:
        span = await conn.fetchval(_sql("chunk_interval"))
        chunks = len({(t - _EPOCH) // span for t in stream_at})
        if chunks > max_chunks:
            raise TooManyObservations(
                f"the Observations fall in {chunks} chunks of storage ({span.days} days "
                f"each); at most {max_chunks} are taken in one request: split it by "
                "phenomenonTime")
        probed = {t: s for t, s in stream_at.items() if s is not None}
        if probed:
            await _make_missing(conn, probed, span, lock_timeout_s)


async def _make_missing(conn: Any, stream_at: dict[datetime, int], span: timedelta,
                        lock_timeout_s: float) -> None:
    """Probe a time of each chunk `stream_at`'s times need and no chunk covers, in rounds,
    until they are all covered or a round covers no more of them."""
    refused: set[tuple[int, int]] = set()  # (chunk, Datastream) whose probe was refused
    missing = await _without_chunk(conn, sorted(stream_at))
    while missing:
        made: set[int] = set()
        for at in missing:
            chunk = (at - _EPOCH) // span
            if chunk in made or (chunk, stream_at[at]) in refused:
                continue  # covered by the chunk made for an earlier time, or refused
            if await _probe(conn, at, stream_at[at], lock_timeout_s):
                made.add(chunk)
            else:
                refused.add((chunk, stream_at[at]))
        # Once more for times that chunks of another size (made before the interval
        # changed) left out; a round that covers none of them is the last.
        still = await _without_chunk(conn, missing)
        if not made or len(still) >= len(missing):
            return
        missing = still


async def _without_chunk(conn: Any, times: list[datetime]) -> list[datetime]:
    return [r["t"] for r in await conn.fetch(_sql("times_without_chunk"), times)]


async def _probe(conn: Any, at: datetime, datastream: int, lock_timeout_s: float) -> bool:
    """Make the chunk `at` falls in, in a transaction of its own; False when the database
    refuses the probe row."""
    try:
        async with conn.transaction():
            await set_lock_timeout(conn, lock_timeout_s)
            probe = await conn.fetchval(_sql("insert_chunk_probe"), at, datastream)
            if probe is not None:
                await conn.execute(_sql("delete_chunk_probe"), probe, at)
    except asyncpg.LockNotAvailableError:
        raise Busy("a new chunk of Observations waits for the writes in progress; send "
                   "the request again") from None
    except asyncpg.PostgresError as exc:
        log.info("no chunk made ahead of a write (%s): %s", exc.sqlstate, exc,
                 extra={"action": "chunk_not_made"})
        return False
    log.info("chunk made ahead of a write at %s", at, extra={"action": "chunk_made"})
    return True


def _sql(name: str) -> str:
    return query("api_write", name)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # TimescaleDB aligns chunks to it


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

