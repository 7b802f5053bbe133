"""What a property path of $filter or $orderby means in SQL, for one entity type.

A path of properties of the entity itself is its column; a path through to-one navigation
(an Observation's `Datastream/Thing/name`) adds LEFT JOINs along the way, which the query
puts after its FROM. A to-one join matches at most one row, so no row is repeated, and the
planner can start from the small side: the Thing by name, then its Datastreams, then their
Observations by index. Filtering through a to-many navigation (a Thing's
`Datastreams/name`) is not offered yet.
"""

from __future__ import annotations

import re

from api.entities import ENTITY_SETS, EntityType
from api.odata import Column, FilterError

_ALIAS = re.compile(r"\b([te])\.")


class EntityResolver:
    """Resolves property paths relative to alias `e` of one entity type."""

    def __init__(self, entity: EntityType, joins: dict[tuple[str, ...], str]) -> None:
        self.entity = entity
        # LEFT JOIN clauses the resolved columns need, by navigation path; shared with the
        # query, which puts them after FROM.
        self.joins = joins

    def resolve(self, path: tuple[str, ...], position: int) -> Column:
        """The column for `path`; FilterError naming the path if there is none."""
        entity, alias = self.entity, "e"
        for depth, segment in enumerate(path[:-1], start=1):
            nav = entity.navs.get(segment)
            if nav is None:
                raise FilterError(f"{entity.name} has no navigation property {segment!r}",
                                  position)
            if not nav.to_one:
                raise FilterError(f"filtering through the collection {segment!r} is not "
                                  "supported yet", position)
            target = ENTITY_SETS[nav.target]
            inner = f"f{'_'.join(path[:depth]).lower()}"
            if path[:depth] not in self.joins:
                self.joins[path[:depth]] = (f"LEFT JOIN {target.table} {inner} "
                                            f"ON {rename(nav.join, inner, alias)}")
            entity, alias = target, inner
        return _column(entity, path[-1], alias, position)


def _column(entity: EntityType, name: str, alias: str, position: int) -> Column:
    if name == "id":
        return Column(f"{alias}.id", "integer")
    prop = entity.props.get(name)
    if prop is None:
        raise FilterError(f"{entity.name} has no property {name!r}", position)
    sql = prop.filter_sql or prop.sql
    return Column(rename(sql, alias, alias), prop.kind)


def rename(sql: str, target: str, source: str) -> str:
    """`sql` with alias t. → `target` and e. → `source`."""
    return _ALIAS.sub(lambda m: f"{target if m[1] == 't' else source}.", sql)
