"""Reading entities: the SQL for a resource path and its query options, run on the pool.

Every piece of SQL text comes from the entity definitions in api/entities.py; values from
the request (ids, $top, $skip) travel as parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from api.entities import ENTITY_SETS, EntityType
from api.paths import Resource, Step

_ALIAS = re.compile(r"\b([te])\.")


@dataclass
class Sql:
    """SQL text under construction and its parameters."""

    params: list[Any] = field(default_factory=list)

    def param(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"


@dataclass(frozen=True)
class Options:
    top: int
    skip: int
    count: bool
    order: list[tuple[str, bool]]  # (property, descending)
    select: list[str] | None


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
        parent_alias = f"p{k}"
        join = _ALIAS.sub(lambda m: f"{alias if m[1] == 't' else parent_alias}.", nav.join)
        inner = _conditions(steps, k - 1, parent_alias, sql)
        parts.append(f"EXISTS (SELECT 1 FROM {parent.entity.table} {parent_alias} "
                     f"WHERE {join} AND {inner})")
    return " AND ".join(parts) or "TRUE"


def columns(entity: EntityType, select: list[str] | None) -> str:
    names = select if select is not None else list(entity.props)
    cols = ["e.id AS id"] + [
        f'{entity.props[n].sql} AS "{n}"' for n in names if n in entity.props
    ]
    return ", ".join(cols)


def order_by(entity: EntityType, order: list[tuple[str, bool]]) -> str:
    keys = [f"{'e.id' if name == 'id' else entity.props[name].sql}"
            f"{' DESC' if desc else ''}" for name, desc in order]
    return ", ".join([*keys, "e.id"]) if keys else entity.default_order


class Store:
    """Entity reads over an asyncpg pool."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def collection(
        self, resource: Resource, options: Options
    ) -> tuple[list[dict[str, Any]], int | None, bool]:
        """The page of entities the path and options address.

        Returns:
            The rows, the total count if asked for, and whether more rows follow.
        """
        entity = resource.steps[-1].entity
        sql = Sql()
        where = scope(resource, sql)
        text = (f"SELECT {columns(entity, options.select)} FROM {entity.table} e "
                f"WHERE {where} ORDER BY {order_by(entity, options.order)} "
                f"LIMIT {sql.param(options.top + 1)} OFFSET {sql.param(options.skip)}")
        async with self.pool.acquire() as conn:
            rows = [dict(r) for r in await conn.fetch(text, *sql.params)]
            total = None
            if options.count:
                count_sql = Sql()
                total = int(await conn.fetchval(
                    f"SELECT count(*) FROM {entity.table} e WHERE {scope(resource, count_sql)}",
                    *count_sql.params))
        return rows[:options.top], total, len(rows) > options.top

    async def entity(self, resource: Resource, select: list[str] | None) -> dict[str, Any] | None:
        """The one entity the path addresses, or None."""
        entity = resource.steps[-1].entity
        sql = Sql()
        text = (f"SELECT {columns(entity, select)} FROM {entity.table} e "
                f"WHERE {scope(resource, sql)} LIMIT 1")
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(text, *sql.params)
        return dict(row) if row is not None else None


def entity_type(name: str) -> EntityType:
    return ENTITY_SETS[name]
