"""Bounds of one write's Observations, checked before it runs: how many it creates
(`check_observation_count`, from `planned_observations`), and the chunks of the
observations hypertable they fall in, made ahead of the write (`make_chunks`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from api import paths
from api.bodies import INVERSE, SCHEMAS, Aliases, Draft, Ref, draft
from api.errors import ApiError, PayloadTooLarge
from api.operations import Busy, set_lock_timeout
from core.queries import query

log = logging.getLogger(__name__)


class TooManyObservations(PayloadTooLarge):
    """The request holds more Observations than one request may; split it."""


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
            return list(observations_of(made, stream))
    return [(None, None)] * (_posted(path) + count_inline(payload))


def is_bulk(path: str, planned: Planned) -> bool:
    """Whether a POST to `path` creating the Observations `planned` creates more than the
    one Observation it posts itself: a bulk write, bounded and made chunks ahead for."""
    return len(planned) > _posted(path)


def _posted(path: str) -> int:
    """1 for a POST to a collection of Observations: the one it creates itself."""
    return 1 if path.rsplit("/", 1)[-1] == "Observations" else 0


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


def observations_of(d: Draft, stream: int | None = None) -> Iterator[tuple[int | None,
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
                yield from observations_of(item, inner)


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
