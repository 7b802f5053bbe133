"""$expand: related entities inline, with their own query options, to any depth.

Each expanded navigation costs one query for the whole page of parents, never one per
parent: a LATERAL subquery takes each parent's first `$top` related rows in order, which
an index serves without reading the rest (the newest Observation of every Datastream reads
one row each).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from api import query
from api.entities import ENTITY_SETS, EntityType
from api.errors import BadRequest
from api.odata import Expansion, ODataError, parse_expand
from api.resolver import rename
from api.serialize import entity_json
from api.store import Options, Sql, columns, compiled_filter, compiled_order

MAX_DEPTH = 5


def parse(raw: str | None) -> tuple[Expansion, ...]:
    """The $expand option as a tree; 400 on malformed text."""
    if raw is None:
        return ()
    try:
        return _flatten(parse_expand(raw))
    except ODataError as exc:
        raise BadRequest(f"$expand: {exc}", exc.position) from None


def _flatten(items: tuple[Expansion, ...]) -> tuple[Expansion, ...]:
    """`Datastreams/Observations` is `Datastreams($expand=Observations)`."""
    heads = [item.path[0] for item in items]
    for item in items:
        if heads.count(item.path[0]) > 1:
            raise BadRequest(f"$expand names {item.path[0]!r} more than once; give its "
                             "options and nested expansions in one place", item.position)
    out = []
    for item in items:
        head, *rest = item.path
        if rest:
            inner = Expansion(tuple(rest), item.options, _flatten(item.expand), item.position)
            out.append(Expansion((head,), {}, (inner,), item.position))
        else:
            out.append(Expansion((head,), item.options, _flatten(item.expand), item.position))
    return tuple(out)


async def expand(
    conn: Any, entity: EntityType, rows: list[dict[str, Any]], out: list[dict[str, Any]],
    items: tuple[Expansion, ...], base: str, settings: Any, depth: int = 0,
) -> None:
    """Add each expansion's related entities to `out` (the serialised `rows`), in place."""
    if not items or not rows:
        return
    if depth >= MAX_DEPTH:
        raise BadRequest(f"$expand nests deeper than {MAX_DEPTH} levels")
    for item in items:
        name = item.path[0]
        nav = entity.navs.get(name)
        if nav is None:
            raise BadRequest(f"$expand: {entity.name} has no navigation property {name!r}",
                             item.position)
        target = ENTITY_SETS[nav.target]
        options = query.options(item.options, target, settings.page_size,
                                settings.max_page_size)
        related = await _related(conn, entity, nav.join, target, [r["id"] for r in rows],
                                 options)
        # Every parent's children together, so the next level is again one query.
        all_children: list[dict[str, Any]] = []
        all_bodies: list[dict[str, Any]] = []
        for row, body in zip(rows, out, strict=True):
            children = related.get(row["id"], [])
            bodies = [entity_json(c, target, base, options.select) for c in children]
            all_children += children
            all_bodies += bodies
            body[name] = (bodies[0] if bodies else None) if nav.to_one else bodies
        await expand(conn, target, all_children, all_bodies, item.expand, base, settings,
                     depth + 1)


async def _related(
    conn: Any, parent: EntityType, join: str, target: EntityType, parent_ids: list[int],
    options: Options,
) -> dict[int, list[dict[str, Any]]]:
    sql = Sql()
    ids = sql.param(parent_ids)
    condition = compiled_filter(target, options, sql) or "TRUE"
    order = compiled_order(target, options, sql)
    top, skip = sql.param(options.top), sql.param(options.skip)
    text = (
        f"SELECT p.id AS _parent, x.* FROM {parent.table} p CROSS JOIN LATERAL ("
        f"SELECT {columns(target, options.select)}, row_number() OVER (ORDER BY {order}) AS _n "
        f"FROM {sql.from_(target)} WHERE {rename(join, 'e', 'p')} AND ({condition}) "
        f"ORDER BY {order} LIMIT {top} OFFSET {skip}) x "
        f"WHERE p.id = ANY({ids}::bigint[]) ORDER BY _parent, _n"
    )
    related: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for record in await conn.fetch(text, *sql.params):
        row = dict(record)
        del row["_n"]
        related[row.pop("_parent")].append(row)
    return related
