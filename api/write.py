"""Create, update and delete over HTTP (SensorThings API v1.1, Part 1: Sensing):

- POST to a collection (`/Things`, `/Things(1)/Datastreams`): 201, the entity, Location;
- PATCH of an entity, a merge (`application/json`) or a JSON Patch
  (`application/json-patch+json`), and PUT, a replacement: 200 and the entity;
- DELETE of an entity and what the standard deletes with it: 200;
- POST /CreateObservations (dataArray) and POST /$batch (OData JSON batch).

Each request is one transaction; its changes go to the notifier after the commit. Each is
written to the audit log, in the same transaction when it succeeds (api/audit.py).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api import audit, batch, create_observations, permissions, principal
from api.bodies import parse_json
from api.bounds import (
    Planned,
    check_observation_count,
    is_bulk,
    make_chunks,
    planned_observations,
)
from api.errors import ApiError
from api.operations import (
    JSON,
    JSON_PATCH,
    Outcome,
    announce,
    base_url,
    execute,
    media_type,
    write_audited,
)
from api.writer import Writer

router = APIRouter()


async def write(path: str, request: Request) -> Response:
    """POST, PATCH, PUT or DELETE of a resource path below /v1.1."""
    who = principal.current.get()
    action, target = audit.action_of(request.method), f"{request.method} {request.url.path}"
    pool = request.app.state.store.pool
    try:
        permissions.require_writer(who)
        content_type = media_type(request.headers)
        payload = None
        if request.method != "DELETE" and content_type in (JSON, JSON_PATCH):
            payload = parse_json(await request.body())
        lock_timeout_s = None
        if request.method == "POST" and content_type == JSON:
            lock_timeout_s = await _prepare_deep_insert(request, path, payload)

        async def work(writer: Writer) -> Outcome:
            return await execute(writer, request.method, path, payload, content_type)

        outcome = await write_audited(pool, base_url(request), "http", action, target, work,
                                      lock_timeout_s)
    except ApiError as exc:
        await audit.record_refusal(pool, who, "http", action, target, exc.status)
        raise
    await announce(request, outcome.changes)
    return outcome.response()


async def _prepare_deep_insert(request: Request, path: str, payload: object) -> float | None:
    """For a POST that creates Observations inline in another entity (a Datastream with
    its Observations): their count and chunks checked and the chunks made ahead, as for
    CreateObservations; the lock timeout its transaction takes. None for any other POST,
    an Observation alone included."""
    planned: Planned = planned_observations(path, payload)
    if not is_bulk(path, planned):
        return None
    settings = request.app.state.settings
    check_observation_count(len(planned), settings.max_observations_per_request,
                            "the request")
    await make_chunks(request.app.state.store.pool, planned, settings.write_lock_timeout_s,
                      settings.max_chunks_per_request)
    return float(settings.write_lock_timeout_s)


router.add_api_route("/CreateObservations", create_observations.handle, methods=["POST"],
                     status_code=201)
router.add_api_route("/$batch", batch.handle, methods=["POST"])
# Described path by path in api/openapi.py.
router.add_api_route("/{path:path}", write, methods=["POST", "PATCH", "PUT", "DELETE"],
                     include_in_schema=False)
