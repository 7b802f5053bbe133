"""POST /$batch in the OData JSON batch format (OData 4.01 JSON Format, section 19).

    {"requests": [
        {"id": "1", "method": "post", "url": "Things", "body": {...},
         "atomicityGroup": "g1"},
        {"id": "2", "method": "post", "url": "$1/Datastreams", "body": {...},
         "atomicityGroup": "g1"},
        {"id": "3", "method": "get", "url": "Things?$top=1"}]}

Requests run in order. A request outside an atomicity group commits or fails alone; the
requests of one group (they must be adjacent) commit together or not at all: when one
fails, it answers its own error and the others of the group 424 Failed Dependency. `$id` at
the start of a url, and a link `{"@iot.id": "$id"}` in a body, stand for the entity request
`id` created; a request that depends on one that failed is not run (424). GET requests are
answered by the read API, with the batch's own Authorization header. Each write is
authorized on its own (401, 403 in its response); the batch is one row of the audit log,
naming every entity its committed writes touched.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from fastapi import Request
from fastapi.responses import JSONResponse

from api import audit, expand, principal
from api.bodies import Aliases, Ref, parse_json
from api.bounds import (
    Planned,
    check_observation_count,
    count_inline,
    is_bulk,
    make_chunks,
    planned_observations,
)
from api.errors import ApiError, BadRequest, FailedDependency, PayloadTooLarge
from api.operations import (
    Outcome,
    announce,
    base_url,
    error_body,
    execute,
    in_transaction,
    media_type,
)
from api.usage import sub_requests
from api.writer import Writer
from core.notify import VERSION, Change

MAX_REQUESTS = 1000
METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")


class TooManyRequestsInBatch(PayloadTooLarge):
    """The batch holds more requests than one batch may; split it."""


@dataclass
class Part:
    """One request of the batch."""

    id: str
    method: str
    url: str
    headers: dict[str, str]
    body: Any
    group: str | None
    depends_on: list[str]


@dataclass
class Run:
    """State of one batch: what each request made, and what failed."""

    request: Request
    made: dict[str, str] = field(default_factory=dict)  # request id → created entity path
    failed: set[str] = field(default_factory=set)  # request ids and group names
    responses: list[dict[str, Any]] = field(default_factory=list)
    touched: list[tuple[str, int]] = field(default_factory=list)  # by committed writes
    writes: int = 0
    bulk: set[str] = field(default_factory=set)  # ids of requests creating Observations inline

    @property
    def settings(self) -> Any:
        return self.request.app.state.settings


async def handle(request: Request) -> JSONResponse:
    """Carry out the requests of a JSON batch; 200 with one response per request. A batch
    of more than MAX_REQUESTS requests, or creating more than `max_observations_per_request`
    Observations, is a 413."""
    run = Run(request)
    parts = _parts(parse_json(await request.body()))
    planned = _planned(parts)
    check_observation_count(sum(len(p) for p in planned.values()),
                            run.settings.max_observations_per_request, "the $batch")
    await make_chunks(request.app.state.store.pool,
                      [o for p in planned.values() for o in p],
                      run.settings.write_lock_timeout_s, run.settings.max_chunks_per_request)
    run.bulk = {p.id for p in parts if is_bulk(_plain_path(p.url), planned.get(p.id, []))}
    with expand.reading_together(run.settings):  # its GETs share one request's limits
        for group, members_of in itertools.groupby(parts,
                                                   key=lambda p: p.group or f"\0{p.id}"):
            members = list(members_of)
            if members[0].group is None:
                await _alone(run, members[0])
            else:
                await _atomic(run, group, members)
    if run.writes:
        async with request.app.state.store.pool.acquire() as conn:
            await audit.record(conn, principal.current.get(), "http", "batch",
                               f"POST {request.url.path}", audit.entities(run.touched), 200)
    return JSONResponse({"responses": run.responses})


async def _alone(run: Run, part: Part) -> None:
    try:
        _check_dependencies(run, part)
        if part.method == "GET":
            run.responses.append(await _read(run, part))
            return
        pending: list[tuple[str, int]] = []

        async def attempt(conn: Any) -> Outcome:
            pending.clear()
            return await _write(run, conn, part, pending)

        outcome = await in_transaction(
            run.request.app.state.store.pool, attempt,
            run.settings.write_lock_timeout_s if part.id in run.bulk else None)
        run.touched += pending
    except ApiError as exc:
        run.failed.add(part.id)
        run.responses.append(_error(part, exc))
        return
    await announce(run.request, outcome.changes)
    _done(run, part, outcome)


async def _atomic(run: Run, group: str, parts: list[Part]) -> None:
    outcomes: list[Outcome] = []
    made = dict(run.made)
    failure: tuple[Part, ApiError] | None = None
    pending: list[tuple[str, int]] = []

    async def attempt(conn: Any) -> None:
        nonlocal failure
        failure = None
        outcomes.clear()
        pending.clear()
        run.made = dict(made)
        for part in parts:
            try:
                _check_dependencies(run, part)
                if part.method == "GET":
                    raise BadRequest("a GET cannot be part of an atomicity group")
                outcomes.append(await _write(run, conn, part, pending))
            except ApiError as exc:
                failure = (part, exc)
                raise
            if outcomes[-1].location:
                run.made[part.id] = _entity_path(outcomes[-1].location)

    try:
        await in_transaction(run.request.app.state.store.pool, attempt,
                             run.settings.write_lock_timeout_s)
    except ApiError as exc:
        # No part failed when the commit itself did (a lock it waited for): the last.
        culprit, error = failure or (parts[-1], exc)
        run.made = made
        run.failed |= {group, *(p.id for p in parts)}
        for part in parts:
            run.responses.append(_error(part, error) if part is culprit else _error(
                part, FailedDependency(f"rolled back: request {culprit.id!r} of "
                                       f"atomicity group {group!r} failed")))
        return
    run.touched += pending
    changes: list[Change] = [c for o in outcomes for c in o.changes]
    await announce(run.request, changes)
    for part, outcome in zip(parts, outcomes, strict=True):
        _done(run, part, outcome)


async def _write(run: Run, conn: Any, part: Part, touched: list[tuple[str, int]]) -> Outcome:
    """One write part; what it touched is added to `touched`."""
    run.writes += 1
    path = _path(run, part)
    if "?" in path:
        path = path.split("?", 1)[0]
    writer = Writer(conn, base_url(run.request))
    outcome = await execute(writer, part.method, path, part.body, media_type(part.headers),
                            _aliases(run))
    touched += [*writer.touched, *writer.deleted]
    return outcome


async def _read(run: Run, part: Part) -> dict[str, Any]:
    """A GET answered by the read API of this very application."""
    # As the batch's own client, so that its rate limit is the one that applies.
    client_address = run.request.client
    transport = httpx.ASGITransport(
        app=sub_requests(run.request.app),
        client=(client_address.host, client_address.port) if client_address else ("-", 0))
    authorization = run.request.headers.get("authorization")
    headers = {"Authorization": authorization} if authorization else {}
    async with httpx.AsyncClient(transport=transport,
                                 base_url=str(run.request.base_url)) as client:
        answer = await client.get(f"/{VERSION}/{_path(run, part)}", headers=headers)
    is_json = answer.headers.get("content-type", "").startswith("application/json")
    return {"id": part.id, "status": answer.status_code,
            "body": answer.json() if is_json else answer.text}


def _check_dependencies(run: Run, part: Part) -> None:
    for name in part.depends_on:
        if name in run.failed:
            raise FailedDependency(f"request {part.id!r} depends on {name!r}, which failed")


def _path(run: Run, part: Part) -> str:
    """The request's url as a path below /v1.1, with a leading `$id` resolved."""
    url = part.url
    if url.startswith("$"):
        head, _, rest = url[1:].partition("/")
        if head not in run.made:
            raise BadRequest(f"request {part.id!r}: ${head} names no entity created before "
                             "it in this batch")
        return f"{run.made[head]}/{rest}" if rest else run.made[head]
    split, path = urlsplit(url), _plain_path(url)
    return f"{path}?{split.query}" if split.query else path


def _aliases(run: Run) -> Aliases:
    """Resolves a body's link `{"@iot.id": "$name"}` to the entity request `name` of this
    batch created."""
    def resolve(name: str, where: str) -> Ref:
        if name in run.failed:
            raise FailedDependency(f"{where}: ${name} names request {name!r}, which failed")
        made = _ENTITY.fullmatch(run.made.get(name, ""))
        if made is None:
            raise BadRequest(f"{where}: ${name} names no entity created before it in this "
                             "batch")
        return Ref(made[1], int(made[2]), where)
    return resolve


_ENTITY = re.compile(r"(\w+)\((\d+)\)")


def _entity_path(location: str) -> str:
    return location.rsplit(f"/{VERSION}/", 1)[-1]


def _done(run: Run, part: Part, outcome: Outcome) -> None:
    response: dict[str, Any] = {"id": part.id, "status": outcome.status}
    if part.group is not None:
        response["atomicityGroup"] = part.group
    if outcome.location:
        response["headers"] = {"location": outcome.location}
        run.made[part.id] = _entity_path(outcome.location)
    if outcome.body is not None:
        response["body"] = outcome.body
    run.responses.append(response)


def _error(part: Part, exc: ApiError) -> dict[str, Any]:
    response: dict[str, Any] = {"id": part.id, "status": exc.status, "body": error_body(exc)}
    if part.group is not None:
        response["atomicityGroup"] = part.group
    return response


def _planned(parts: list[Part]) -> dict[str, Planned]:
    """The Observations each write of the batch creates (api.bounds.planned_observations),
    by request id; those in an entity an earlier request of the batch made, in no Datastream
    known yet. A PATCH or PUT is counted by its "Observations" members (it is refused)."""
    made: dict[str, str] = {}  # request id → entity set it creates in

    def resolve(name: str, where: str) -> Ref:
        if name not in made:
            raise BadRequest(f"{where}: ${name} names no entity made before it")
        return Ref(made[name], 0, where)

    planned: dict[str, Planned] = {}
    for part in parts:
        if part.method == "POST":
            path, owner = _plain_path(part.url), None
            if path.startswith("$"):
                head, _, path = path[1:].partition("/")
                owner = made.get(head, "")
            planned[part.id] = planned_observations(path, part.body, resolve, owner)
            made[part.id] = path.rsplit("/", 1)[-1].split("(")[0]
        elif part.method != "GET":
            planned[part.id] = [(None, None)] * count_inline(part.body)
    return planned


def _plain_path(url: str) -> str:
    """A url of the batch as a path below /v1.1, without its query."""
    path = urlsplit(url).path.lstrip("/")
    if path.startswith(f"{VERSION}/") or path == VERSION:
        path = path[len(VERSION):].lstrip("/")
    return path


def _parts(body: Any) -> list[Part]:
    """The requests of a batch body, checked; 400 for the whole batch when one is malformed."""
    if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
        raise BadRequest('a JSON batch is an object {"requests": [...]}')
    if set(body) - {"requests"}:
        raise BadRequest(f"unknown member {sorted(set(body) - {'requests'})[0]!r} of the batch")
    if len(body["requests"]) > MAX_REQUESTS:
        raise TooManyRequestsInBatch(f"a batch holds at most {MAX_REQUESTS} requests; this one "
                                  f"holds {len(body['requests'])}: split it")
    parts: list[Part] = []
    for i, raw in enumerate(body["requests"]):
        parts.append(_part(raw, f"requests[{i}]", parts))
    return parts


def _part(raw: Any, where: str, before: list[Part]) -> Part:
    if not isinstance(raw, dict):
        raise BadRequest(f"{where} must be an object")
    unknown = set(raw) - {"id", "method", "url", "headers", "body", "atomicityGroup",
                          "dependsOn"}
    if unknown:
        raise BadRequest(f"{where}: unknown member {sorted(unknown)[0]!r}")
    part_id, method, url = raw.get("id"), raw.get("method"), raw.get("url")
    group, depends, headers = (raw.get("atomicityGroup"), raw.get("dependsOn", []),
                               raw.get("headers", {}))
    if not isinstance(part_id, str) or not part_id:
        raise BadRequest(f"{where}.id must be a non-empty string")
    if part_id in {p.id for p in before} or part_id in {p.group for p in before}:
        raise BadRequest(f"{where}.id {part_id!r} is used before in the batch")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise BadRequest(f"{where}.method must be one of {', '.join(METHODS)}")
    if not isinstance(url, str) or not url:
        raise BadRequest(f"{where}.url must be a non-empty string")
    if group is not None and not isinstance(group, str):
        raise BadRequest(f"{where}.atomicityGroup must be a string")
    if group is not None and any(p.group == group for p in before) \
            and before[-1].group != group:
        raise BadRequest(f"{where}: the requests of atomicity group {group!r} must be adjacent")
    known = {p.id for p in before} | {p.group for p in before if p.group}
    if not isinstance(depends, list) or not all(isinstance(d, str) and d in known
                                                for d in depends):
        raise BadRequest(f"{where}.dependsOn must list ids of requests or groups before it")
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise BadRequest(f"{where}.headers must be an object of strings")
    if url.startswith("$") and url[1:].partition("/")[0] not in {p.id for p in before}:
        raise BadRequest(f"{where}.url names ${url[1:].partition('/')[0]}, which is no "
                         "request before it")
    return Part(part_id, method.upper(), url, {k.lower(): v for k, v in headers.items()},
                raw.get("body"), group, [*depends, *([url[1:].partition("/")[0]]
                                                     if url.startswith("$") else [])])
