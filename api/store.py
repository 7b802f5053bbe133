"""Reading entities: the SQL for a resource path and its query options, run on the pool.

Every piece of SQL text comes from the entity definitions in api/entities.py; values from
the request (ids, $top, $skip, the key of a $skiptoken) travel as parameters. Options take
effect in the standard's order: $filter, $count, $orderby, $skip, $top.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from api import counts, keyset, paths, principal
from api.entities import EntityType
from api.errors import BadRequest, NotFound, Unavailable
from api.odata import ODataError, OrderItem, compile_filter, compile_orderby
from api.odata.nodes import Node
from api.paths import Resource, Step
from api.resolver import EntityResolver, rename
from api.settings import ApiSettings

log = logging.getLogger(__name__)

# The principal of the request, for the row-level security of migration 0008. Sent as a
# simple query (no statement to prepare first): an agency id is a number and a role one of
# a few words, so the literals are safe.
_PRINCIPAL = ("SELECT set_config('stadspuls.agency_id', '{agency}', false), "
              "set_config('stadspuls.role', '{role}', false)")
_ROLES = frozenset((principal.ANONYMOUS.role, *principal.ROLES))


async def create_pool(settings: ApiSettings) -> Any:
    """The API's connection pool. Each connection runs as `settings.database_role`, so
    that row-level security applies to every query; each acquire tells the database whose
    request it serves (`api.principal.current`), in one round trip."""

    async def init(conn: Any) -> None:
        await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads,
                                  schema="pg_catalog")

    async def setup(conn: Any) -> None:
        who = principal.current.get()
        if who.role not in _ROLES:
            raise ValueError(f"no such role: {who.role!r}")
        agency = "" if who.agency_id is None else str(int(who.agency_id))
        await conn.execute(_PRINCIPAL.format(agency=agency, role=who.role))

    pool = await asyncpg.create_pool(
        settings.database_url, min_size=1, max_size=10, init=init, setup=setup,
        timeout=settings.database_connect_timeout_s,
        # The role as a setting of the session, like SET ROLE; RESET ALL, run when a
        # connection goes back to the pool, keeps it.
        server_settings={"role": settings.database_role,
                         "statement_timeout": str(int(settings.statement_timeout_s * 1000))},
    )
    return WaitingPool(pool, settings.database_acquire_timeout_s)


class WaitingPool:
    """A pool whose `acquire` waits at most `timeout` seconds for a connection (then
    Unavailable, answered 503), so that requests do not queue without end behind slow
    ones; everything else is the asyncpg pool's."""

    def __init__(self, pool: Any, timeout: float) -> None:
        self._pool = pool
        self._timeout = timeout

    def acquire(self, *, timeout: float | None = None) -> AbstractAsyncContextManager[Any]:
        """A connection, within `timeout` seconds (the pool's own if None).

        Raises:
            Unavailable: no connection was had in time (all busy, or a connect timed out).
        """
        return self._acquiring(self._timeout if timeout is None else timeout)

    @asynccontextmanager
    async def _acquiring(self, waited: float) -> AsyncIterator[Any]:
        waiting = self._pool.acquire(timeout=waited)
        try:
            conn = await waiting.__aenter__()
        except TimeoutError:
            log.warning("no database connection within %s s", waited,
                        extra={"action": "database_wait_timeout"})
            raise Unavailable() from None
        try:
            yield conn
        finally:
            await waiting.__aexit__(None, None, None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


@dataclass
class Sql:
    """SQL text under construction: its parameters, and the joins its filter and order
    need (by navigation path)."""

    params: list[Any] = field(default_factory=list)
    joins: dict[tuple[str, ...], str] = field(default_factory=dict)

    def from_(self, entity: EntityType) -> str:
        """`table e` and the joins; call it after the filter and order are compiled."""
        return " ".join([f"{entity.table} e", *self.joins.values()])

    def param(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"


@dataclass(frozen=True)
class Options:
    top: int
    skip: int
    count: bool
    filter: Node | None
    order: tuple[OrderItem, ...]
    select: list[str] | None
    skiptoken: str | None = None


@dataclass(frozen=True)
class Page:
    """One page of a collection: its rows, the total count if asked for, whether more rows
    follow, and the $skiptoken of the next page where keyset paging serves the order."""

    rows: list[dict[str, Any]]
    total: int | None
    more: bool
    next_token: str | None = None


def scope(resource: Resource, sql: Sql) -> str:
    """A condition on alias `e` that holds for the rows the path addresses."""
    return _conditions(resource.steps, len(resource.steps) - 1, "e", sql)


def _conditions(steps: list[Step], k: int, alias: str, sql: Sql) -> str:
    step = steps[k]
    parts = []
    if step.entity_id is not None:
        parts.append(f"{alias}.id = {sql.param(step.entity_id)}")
    if k > 0:
        parent = steps[k - 1]
        nav = parent.entity.navs[str(step.via)]
        foreign_key = _FOREIGN_KEY.match(nav.join)
        if foreign_key and parent.entity_id is not None and k == 1:
            # Datastreams(5)/Observations: the plain equality lets the planner walk the
            # (datastream_id, phenomenon_time) index in order. The parent's own test runs
            # once, first: a parent absent (or hidden from the principal) reads nothing.
            parent_id = sql.param(parent.entity_id)
            parts.append(f"{alias}.{foreign_key[1]} = {parent_id}")
            parts.append(f"EXISTS (SELECT 1 FROM {parent.entity.table} WHERE id = {parent_id})")
            return " AND ".join(parts)
        parent_alias = f"p{k}"
        join = rename(nav.join, alias, parent_alias)
        inner = _conditions(steps, k - 1, parent_alias, sql)
        parts.append(f"EXISTS (SELECT 1 FROM {parent.entity.table} {parent_alias} "
                     f"WHERE {join} AND {inner})")
    return " AND ".join(parts) or "TRUE"


_FOREIGN_KEY = re.compile(r"^t\.(\w+) = e\.id$")


async def check_path(conn: Any, steps: list[Step]) -> None:
    """Raise NotFound naming the first entity along `steps` that does not exist, is not
    related to the one before, or is hidden from the principal; one query for the path.

    Raises:
        NotFound: some step addresses no entity.
    """
    sql = Sql()
    tests = ", ".join(
        f"EXISTS (SELECT 1 FROM {step.entity.table} e WHERE {_conditions(steps, k, 'e', sql)})"
        for k, step in enumerate(steps))
    found: list[bool] = await conn.fetchval(f"SELECT ARRAY[{tests}]", *sql.params)
    if all(found):
        return
    k = found.index(False)
    raise NotFound(f"no {steps[k].entity.name} at /{paths.text(steps[:k + 1])}")


def columns(entity: EntityType, select: list[str] | None) -> str:
    """The id, the selected properties, and for Observations their Datastream (which the
    dataArray format groups by; it is not shown as a property)."""
    names = select if select is not None else list(entity.props)
    cols = ["e.id AS id"] + [
        f'{entity.props[n].sql} AS "{n}"' for n in names if n in entity.props
    ]
    if entity.table == "observations":
        cols.append("e.datastream_id AS _datastream")
    return ", ".join(cols)


def where(resource: Resource, options: Options, sql: Sql) -> str:
    """The path's scope and the $filter, as one condition on alias `e`."""
    condition = scope(resource, sql)
    extra = compiled_filter(resource.steps[-1].entity, options, sql)
    return f"{condition} AND ({extra})" if extra else condition


def compiled_filter(entity: EntityType, options: Options, sql: Sql) -> str | None:
    """$filter as SQL on alias `e`, its parameters added to `sql`; None without one."""
    if options.filter is None:
        return None
    return _compiled(compile_filter, options.filter, entity, sql)


def compiled_order(entity: EntityType, options: Options, sql: Sql) -> str:
    """$orderby, then a unique key, so that pages do not overlap."""
    if not options.order:
        return entity.default_order
    return f"{_compiled(compile_orderby, options.order, entity, sql)}, {entity.tiebreak}"


def _compiled(compiler: Any, parsed: Any, entity: EntityType, sql: Sql) -> str:
    try:
        text, params = compiler(parsed, EntityResolver(entity, sql.joins),
                                start=len(sql.params) + 1)
    except ODataError as exc:
        raise BadRequest(str(exc), exc.position) from None
    sql.params.extend(params)
    return str(text)


class Store:
    """Entity reads over an asyncpg pool."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def collection(self, resource: Resource, options: Options,
                         count_threshold: int) -> Page:
        """The page of entities the path and options address.

        Args:
            resource: the parsed path, addressing a collection.
            options: the query options.
            count_threshold: up to this many rows $count is exact, above it estimated.

        Raises:
            BadRequest: the $skiptoken is malformed or the order does not take one.
            NotFound: an entity the path passes through does not exist (or is hidden).
        """
        entity = resource.steps[-1].entity
        keys = keyset.plan(entity, options.order)
        if options.skiptoken is not None and keys is None:
            raise BadRequest("$skiptoken pages Observations in the default order or by "
                             "phenomenonTime or resultTime alone")
        sql = Sql()
        condition = where(resource, options, sql)
        if keys is not None and options.skiptoken is not None:
            condition = f"{condition} AND {keys.after(options.skiptoken, sql.param)}"
        order = keys.order() if keys is not None else compiled_order(entity, options, sql)
        hidden = f", {keys.columns()}" if keys is not None else ""
        text = (f"SELECT {columns(entity, options.select)}{hidden} FROM {sql.from_(entity)} "
                f"WHERE {condition} ORDER BY {order} "
                f"LIMIT {sql.param(options.top + 1)} OFFSET {sql.param(options.skip)}")
        async with self.pool.acquire() as conn:
            # $top=0 asks for the count alone: no rows to read, and no next link.
            rows = ([dict(r) for r in await conn.fetch(text, *sql.params)]
                    if options.top > 0 else [])
            if not rows and len(resource.steps) > 1:
                # Rows prove the path; without any, the entities it names must exist.
                await check_path(conn, resource.steps[:-1])
            total = (await self._count(conn, resource, options, count_threshold)
                     if options.count else None)
        page, more = rows[:options.top], len(rows) > options.top
        token = keys.token(page[-1]) if keys is not None and more and page else None
        return Page(page, total, more, token)

    async def _count(self, conn: Any, resource: Resource, options: Options,
                     threshold: int) -> int:
        entity = resource.steps[-1].entity
        sql = Sql()
        condition = where(resource, options, sql)
        whole = (entity.set_name == "Observations" and len(resource.steps) == 1
                 and resource.steps[0].entity_id is None and options.filter is None)
        guard = {"observations": "e.datastream_id", "datastreams": "e.id"}.get(entity.table)
        return await counts.count(conn, sql.from_(entity), condition, sql.params, threshold,
                                  entity.table if whole else None, guard)

    async def entity(self, resource: Resource, select: list[str] | None) -> dict[str, Any]:
        """The one entity the path addresses.

        Raises:
            NotFound: it does not exist, or one on the way to it does not (or is hidden).
        """
        entity = resource.steps[-1].entity
        sql = Sql()
        query = (f"SELECT {columns(entity, select)} FROM {entity.table} e "
                 f"WHERE {scope(resource, sql)} LIMIT 1")
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(query, *sql.params)
            if row is None:
                await check_path(conn, resource.steps)
                # Gone between the two queries.
                raise NotFound(f"no {entity.name} at /{paths.text(resource.steps)}")
        return dict(row)
