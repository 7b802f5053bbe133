"""POST /CreateObservations: many Observations in the dataArray form, each row on its own.

The body is a list, one element per Datastream::

    [{"Datastream": {"@iot.id": 5},
      "components": ["phenomenonTime", "result", "FeatureOfInterest/id"],
      "dataArray": [["2026-09-21T10:00:00Z", 23.4, 7], ...]}]

The answer lists, row by row and in order, the selfLink of the Observation made or "error"
for a row that could not be stored; the rows that could are committed. A row the database
aborts to break a deadlock is no "error": the whole request runs again, as every write does.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from fastapi import Request
from fastapi.responses import JSONResponse

from api import audit, permissions, principal
from api.bodies import Draft, draft, parse_json
from api.bounds import check_observation_count, make_chunks, observations_of
from api.errors import ApiError, BadRequest
from api.operations import (
    Busy,
    Contended,
    Outcome,
    announce,
    base_url,
    database_errors,
    write_audited,
)
from api.writer import Writer

log = logging.getLogger(__name__)

COMPONENTS = ("phenomenonTime", "result", "resultTime", "resultQuality", "validTime",
              "parameters", "FeatureOfInterest/id")
# Rows written under one savepoint. A savepoint per row would cost the server a
# subtransaction each; a slice the database refuses a row of is written again row by row.
SLICE = 500


async def handle(request: Request) -> JSONResponse:
    """Create the Observations of a dataArray body; 201 and a selfLink or "error" per row.
    A row in a Datastream the key may not write to is an "error" too; more rows than
    `max_observations_per_request` are a 413."""
    who, target = principal.current.get(), f"POST {request.url.path}"
    pool, settings = request.app.state.store.pool, request.app.state.settings
    try:
        permissions.require_writer(who)
        groups = _groups(parse_json(await request.body()))
        check_observation_count(sum(len(rows) for _, _, rows in groups),
                                settings.max_observations_per_request, "CreateObservations")
        drafts = [_draft(datastream, components, row, f"[{g}].dataArray[{r}]")
                  for g, (datastream, components, rows) in enumerate(groups)
                  for r, row in enumerate(rows)]
        times = [o for d in drafts if d is not None for o in observations_of(d)]
        await make_chunks(pool, times, settings.write_lock_timeout_s,
                          settings.max_chunks_per_request)

        async def work(writer: Writer) -> Outcome:
            results: list[str] = []
            for start in range(0, len(drafts), SLICE):
                results += await _slice(writer, drafts[start:start + SLICE])
            return Outcome(201, results, changes=await writer.finish())

        outcome = await write_audited(pool, base_url(request), "http", "create_observations",
                                      target, work, settings.write_lock_timeout_s)
    except ApiError as exc:
        await audit.record_refusal(pool, who, "http", "create_observations", target,
                                   exc.status)
        raise
    await announce(request, outcome.changes)
    return JSONResponse(outcome.body, status_code=201)


def _draft(datastream: Any, components: list[str], row: Any, where: str) -> Draft | None:
    """The checked Observation of a row; None, logged, when it is malformed."""
    try:
        if not isinstance(row, list) or len(row) != len(components):
            raise BadRequest(f"{where} must be a list of {len(components)} values")
        body: dict[str, Any] = {"Datastream": datastream}
        for name, value in zip(components, row, strict=True):
            if name == "FeatureOfInterest/id":
                body["FeatureOfInterest"] = {"@iot.id": value}
            else:
                body[name] = value
        return draft("Observations", body, where)
    except ApiError as exc:
        _refused(exc)
        return None


async def _slice(writer: Writer, drafts: list[Draft | None]) -> list[str]:
    """The rows under one savepoint; when the database refuses one, all of them again,
    each under a savepoint of its own, so that it alone is an "error"."""
    try:
        async with writer.savepoint():
            return [await _create(writer, d) for d in drafts]
    except asyncpg.PostgresError:
        return [await _row(writer, d) for d in drafts]


async def _row(writer: Writer, d: Draft | None) -> str:
    try:
        async with writer.savepoint(), database_errors():
            return await _create(writer, d)
    except (Contended, Busy):
        raise  # the whole request runs again (write_audited), or the client sends it again
    except ApiError as exc:
        _refused(exc)
        return "error"


async def _create(writer: Writer, d: Draft | None) -> str:
    """The selfLink of the Observation made, or "error" for a row refused before the
    database refused anything (a malformed row, a taken time); a database refusal raises."""
    if d is None:
        return "error"
    try:
        observation = await writer.create(d)
    except ApiError as exc:
        _refused(exc)
        return "error"
    return f"{writer.base}/Observations({observation})"


def _refused(exc: ApiError) -> None:
    log.info("CreateObservations row refused: %s", exc,
             extra={"action": "observation_row_refused"})


def _groups(body: Any) -> list[tuple[Any, list[str], list[Any]]]:
    """The (Datastream link, components, rows) of each element; 400 when the shape is off."""
    if not isinstance(body, list):
        raise BadRequest("the body of CreateObservations is a list of "
                         "{Datastream, components, dataArray} objects")
    groups = []
    for i, group in enumerate(body):
        if not isinstance(group, dict):
            raise BadRequest(f"[{i}] must be an object")
        unknown = set(group) - {"Datastream", "components", "dataArray", "dataArray@iot.count"}
        if unknown:
            raise BadRequest(f"[{i}]: unknown member {sorted(unknown)[0]!r}")
        datastream = group.get("Datastream")
        if not isinstance(datastream, dict) or "@iot.id" not in datastream:
            raise BadRequest(f'[{i}].Datastream must be {{"@iot.id": ...}} of a Datastream')
        components = group.get("components")
        if not isinstance(components, list) or not all(
                isinstance(c, str) and c in COMPONENTS for c in components):
            raise BadRequest(f"[{i}].components must be a list of {', '.join(COMPONENTS)}")
        if len(set(components)) != len(components) or "result" not in components:
            raise BadRequest(f"[{i}].components must name result, and each component once")
        rows = group.get("dataArray")
        if not isinstance(rows, list):
            raise BadRequest(f"[{i}].dataArray must be a list of rows")
        groups.append((datastream, components, rows))
    return groups
