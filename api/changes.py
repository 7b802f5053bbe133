"""What a write changed, described for the notifier: every entity it created or updated, as
a GET renders it once the write is done, with the entities whose collections hold it (an
update is announced in each of them, as a creation is: docs/mqtt.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api.entities import ENTITY_SETS
from api.serialize import entity_json
from api.store import columns
from core.notify import Change
from core.queries import query

# The sets whose members sit in other entities' collections (a Datastream in its Thing's,
# Sensor's and ObservedProperty's); api_write.sql has a `parents_{table}` query for each.
_WITH_PARENTS = ("things", "locations", "historical_locations", "datastreams", "observations")


@dataclass
class Touched:
    """An entity a write created (`changed` None) or updated (the properties it changed)."""

    entity_set: str
    id: int
    changed: tuple[str, ...] | None


async def render(conn: Any, base: str, entity_set: str,
                 ids: list[int]) -> dict[int, dict[str, Any]]:
    """Entities of one set as a GET of each answers, by id."""
    entity = ENTITY_SETS[entity_set]
    rows = await conn.fetch(
        f"SELECT {columns(entity, None)} FROM {entity.table} e WHERE e.id = ANY($1::bigint[])",
        ids)
    return {r["id"]: entity_json(dict(r), entity, base, None) for r in rows}


async def describe(conn: Any, base: str, touched: list[Touched]) -> list[Change]:
    """A Change per entity in `touched` that still exists, in the order touched."""
    bodies: dict[tuple[str, int], dict[str, Any]] = {}
    parents: dict[tuple[str, int], list[tuple[str, int]]] = {}
    for entity_set in dict.fromkeys(t.entity_set for t in touched):
        ids = [t.id for t in touched if t.entity_set == entity_set]
        for entity_id, body in (await render(conn, base, entity_set, ids)).items():
            bodies[(entity_set, entity_id)] = body
        table = ENTITY_SETS[entity_set].table
        if table in _WITH_PARENTS:
            for r in await conn.fetch(query("api_write", f"parents_{table}"), ids):
                parents.setdefault((entity_set, r["id"]), []).append(
                    (r["entity_set"], r["parent"]))
    return [
        Change(t.entity_set, t.id, bodies[(t.entity_set, t.id)],
               tuple(parents.get((t.entity_set, t.id), [])), t.changed)
        for t in touched if (t.entity_set, t.id) in bodies
    ]
