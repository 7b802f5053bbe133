"""$expand: related entities inline, with their own query options, to any depth.

Each expanded navigation costs one query for the whole page of parents, never one per
parent: a LATERAL subquery takes each parent's first `$top` related rows in order, which
an index serves without reading the rest (the newest Observation of every Datastream reads
one row each). It takes one row more than `$top` to know whether more follow: then the
parent gets `<navigation>@iot.nextLink`, the related collection with the same options and
the next `$skip`. With `$count=true` a second LATERAL in the same query counts each
parent's related rows that pass the `$filter`, exactly, into `<navigation>@iot.count`.

One request expands at most `ApiSettings.max_expanded_rows` rows in all: before each
query, its parents times its `$top` must fit in what the levels before left over, or the
request is answered 400 saying how to page instead. The GET requests of one $batch share
one such budget, and one of `max_response_bytes` for their answers (`Together`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from api import query
from api.entities import ENTITY_SETS, EntityType
from api.errors import BadRequest, NotImplementedOption
from api.odata import Expansion, ODataError, UnsupportedOption, parse_expand
from api.resolver import rename
from api.serialize import entity_json
from api.store import Options, Sql, columns, compiled_filter, compiled_order


def parse(raw: str | None) -> tuple[Expansion, ...]:
    """The $expand option as a tree; 400 on malformed text."""
    if raw is None:
        return ()
    try:
        return _flatten(parse_expand(raw))
    except UnsupportedOption as exc:
        raise NotImplementedOption(f"$expand: {exc}", exc.position) from None
    except ODataError as exc:
        raise BadRequest(f"$expand: {exc}", exc.position) from None


def unparse(items: tuple[Expansion, ...]) -> str:
    """The $expand text of `items`, for a next link."""
    parts = []
    for item in items:
        options = [f"{name}={value}" for name, value in item.options.items()]
        if item.expand:
            options.append(f"$expand={unparse(item.expand)}")
        inner = f"({';'.join(options)})" if options else ""
        parts.append(f"{'/'.join(item.path)}{inner}")
    return ",".join(parts)


def _flatten(items: tuple[Expansion, ...]) -> tuple[Expansion, ...]:
    """One expansion per navigation, each path a single step.

    `Datastreams/Observations` is `Datastreams($expand=Observations)`, to any depth, and
    `Datastream/Thing,Datastream/Sensor` is `Datastream($expand=Thing,Sensor)`.
    """
    order: list[str] = []
    options: dict[str, Expansion] = {}
    nested: dict[str, list[Expansion]] = {}
    for item in items:
        head, *rest = item.path
        if head not in nested:
            order.append(head)
            nested[head] = []
        if rest:
            nested[head].append(Expansion(tuple(rest), item.options, item.expand, item.position))
            continue
        if head in options:
            raise BadRequest(f"$expand names {head!r} more than once; give its "
                             "options and nested expansions in one place", item.position)
        options[head] = item
        nested[head].extend(item.expand)
    out = []
    for head in order:
        own = options.get(head)
        first = own or nested[head][0]
        out.append(Expansion((head,), own.options if own else {}, _flatten(tuple(nested[head])),
                             first.position))
    return tuple(out)


@dataclass
class Budget:
    """The rows a request (or the GET requests of a $batch together) may still expand."""

    left: int
    holder: str = "this request has"

    def spend(self, parents: list[dict[str, Any]], parent: EntityType, name: str,
              top: int, base: str) -> None:
        """Refuse the expansion of `name` below `parents` if its rows may exceed what
        is left; `top` is its $top (1 for a navigation to one entity).

        Raises:
            BadRequest: saying how to ask for fewer rows or to page through them.
        """
        most = len(parents) * top
        if most <= self.left:
            return
        first = f"{base}/{parent.set_name}({parents[0]['id']})/{name}"
        raise BadRequest(
            f"$expand of {name} may read up to {most} rows ({len(parents)} {parent.set_name}"
            f" × $top={top}), more than the {self.left} {self.holder} left of its "
            f"limit; ask for fewer with a smaller $top (of the page or inside $expand), or "
            f"read them through their own path, such as {first}, following its "
            "@iot.nextLink")


@dataclass
class Together:
    """What the GET requests of one $batch may read together: a $batch is no way around
    the limits of one request."""

    rows: Budget
    bytes_left: int

    def send(self, size: int) -> None:
        """Count an answer of `size` bytes against the batch's share.

        Raises:
            BadRequest: the batch's answers would be larger than its share.
        """
        if size > self.bytes_left:
            raise BadRequest(
                f"the answer would be {size} bytes, more than the {self.bytes_left} the "
                "GET requests of this $batch have left of the bytes one request may have; "
                "send them in batches of their own, or ask for fewer entities ($top) or "
                "fewer properties ($select)")
        self.bytes_left -= size


together: ContextVar[Together | None] = ContextVar("together", default=None)


@contextmanager
def reading_together(settings: Any) -> Iterator[None]:
    """The GET requests made within share one request's expanded rows and answer bytes
    (`settings.max_expanded_rows`, `settings.max_response_bytes`)."""
    token = together.set(Together(Budget(settings.max_expanded_rows, "this $batch has"),
                                  settings.max_response_bytes))
    try:
        yield
    finally:
        together.reset(token)


@dataclass
class _Related:
    """One parent's related rows, their count if asked for, and whether more follow."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0
    more: bool = False


async def expand(
    conn: Any, entity: EntityType, rows: list[dict[str, Any]], out: list[dict[str, Any]],
    items: tuple[Expansion, ...], base: str, settings: Any, budget: Budget | None = None,
) -> None:
    """Add each expansion's related entities to `out` (the serialised `rows`), in place.

    Raises:
        BadRequest: an expansion is malformed, or may read more rows than the request's
            share, `settings.max_expanded_rows` (shared by the GET requests of a
            $batch).
    """
    if not items or not rows:
        return
    if budget is None:
        shared = together.get()
        budget = shared.rows if shared else Budget(settings.max_expanded_rows)
    for item in items:
        name = item.path[0]
        nav = entity.navs.get(name)
        if nav is None:
            raise BadRequest(f"$expand: {entity.name} has no navigation property {name!r}",
                             item.position)
        target = ENTITY_SETS[nav.target]
        options = query.options(item.options, target, settings.page_size,
                                settings.max_page_size)
        budget.spend(rows, entity, name, 1 if nav.to_one else options.top, base)
        related = await _related(conn, entity, nav.join, target, [r["id"] for r in rows],
                                 options)
        # Every parent's children together, so the next level is again one query.
        all_children: list[dict[str, Any]] = []
        all_bodies: list[dict[str, Any]] = []
        for row, body in zip(rows, out, strict=True):
            got = related.get(row["id"], _Related())
            bodies = [entity_json(c, target, base, options.select) for c in got.rows]
            all_children += got.rows
            all_bodies += bodies
            budget.left -= len(got.rows)
            if nav.to_one:
                body[name] = bodies[0] if bodies else None
                continue
            if options.count:
                body[f"{name}@iot.count"] = got.total
            body[name] = bodies
            if got.more and options.top > 0:
                link = _next_query(item, options)
                body[f"{name}@iot.nextLink"] = (
                    f"{base}/{entity.set_name}({row['id']})/{name}?{link}")
        await expand(conn, target, all_children, all_bodies, item.expand, base, settings,
                     budget)


def _next_query(item: Expansion, options: Options) -> str:
    params = {k: v for k, v in item.options.items() if k != "$skip"}
    if item.expand:
        params["$expand"] = unparse(item.expand)
    params["$skip"] = str(options.skip + options.top)
    return urlencode(params)


async def _related(
    conn: Any, parent: EntityType, join: str, target: EntityType, parent_ids: list[int],
    options: Options,
) -> dict[int, _Related]:
    sql = Sql()
    ids = sql.param(parent_ids)
    condition = compiled_filter(target, options, sql) or "TRUE"
    order = compiled_order(target, options, sql)
    top, skip = sql.param(options.top + 1), sql.param(options.skip)
    matching = f"FROM {sql.from_(target)} WHERE {rename(join, 'e', 'p')} AND ({condition})"
    page = (f"SELECT {columns(target, options.select)}, "
            f"row_number() OVER (ORDER BY {order}) AS _n {matching} "
            f"ORDER BY {order} LIMIT {top} OFFSET {skip}")
    if options.count:
        # LEFT JOIN: a parent whose page is empty still has its count.
        joined = (f"CROSS JOIN LATERAL (SELECT count(*) AS _total {matching}) c "
                  f"LEFT JOIN LATERAL ({page}) x ON TRUE")
        output = "p.id AS _parent, c._total, x.*"
    else:
        joined, output = f"CROSS JOIN LATERAL ({page}) x", "p.id AS _parent, x.*"
    text = (f"SELECT {output} FROM {parent.table} p {joined} "
            f"WHERE p.id = ANY({ids}::bigint[]) ORDER BY _parent, _n")
    last = options.skip + options.top
    related: dict[int, _Related] = {}
    for record in await conn.fetch(text, *sql.params):
        row = dict(record)
        got = related.setdefault(row.pop("_parent"), _Related())
        got.total = int(row.pop("_total", 0))
        position = row.pop("_n")
        if row["id"] is None:
            continue
        if position > last:
            got.more = True
        else:
            got.rows.append(row)
    return related
