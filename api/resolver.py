"""What a property path of $filter or $orderby means in SQL, for one entity type.

A path of properties of the entity itself is its column; a path through to-one navigation
(an Observation's `Datastream/Thing/name`) adds LEFT JOINs along the way, which the query
puts after its FROM. A to-one join matches at most one row, so no row is repeated, and the
planner can start from the small side: the Thing by name, then its Datastreams, then their
Observations by index.

A to-many navigation (a Thing's `Datastreams`) is a collection: the compiler tests its
members in an EXISTS subquery correlated with the outer row (`Members`), whose own to-one
joins stay inside it. Aliases: `e` for the filtered entity, `f…` for its joins, `c1`, `c2`…
for members of collections and `c1_…` for their joins.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

from api.entities import ENTITY_SETS, EntityType
from api.odata import Column, FilterError

_ALIAS = re.compile(r"\b([te])\.")
# Columns that are never null, so that $orderby on them keeps an index's natural order.
_NEVER_NULL = frozenset({"e.phenomenon_time"})


class EntityResolver:
    """Resolves property paths relative to one alias of one entity type."""

    def __init__(self, entity: EntityType, joins: dict[tuple[str, ...], str],
                 alias: str = "e", aliases: Iterator[int] | None = None) -> None:
        self.entity = entity
        # LEFT JOIN clauses the resolved columns need, by navigation path; shared with the
        # query (or the subquery of a collection), which puts them after FROM.
        self.joins = joins
        self.alias = alias
        self._join_prefix = "f" if alias == "e" else f"{alias}_"
        self._aliases = aliases if aliases is not None else itertools.count(1)

    def resolve(self, path: tuple[str, ...], position: int) -> Column:
        """The column for `path`; FilterError naming the path if there is none."""
        entity, alias = self._to_one(path[:-1], position)
        return _column(entity, path[-1], alias, position, joined=len(path) > 1)

    def collection_prefix(self, path: tuple[str, ...]) -> int:
        """How many segments of `path` reach its first to-many navigation (0: none)."""
        entity = self.entity
        for depth, segment in enumerate(path, start=1):
            nav = entity.navs.get(segment)
            if nav is None:
                return 0
            if not nav.to_one:
                return depth
            entity = ENTITY_SETS[nav.target]
        return 0

    def collection(self, path: tuple[str, ...], position: int) -> Members:
        """The members of the to-many navigation that `path` ends in."""
        entity, alias = self._to_one(path[:-1], position)
        nav = entity.navs.get(path[-1])
        if nav is None or nav.to_one:
            raise FilterError(f"{entity.name} has no collection {path[-1]!r}", position)
        member = f"c{next(self._aliases)}"
        return Members(ENTITY_SETS[nav.target], rename(nav.join, member, alias), member,
                       self._aliases)

    def _to_one(self, path: tuple[str, ...], position: int) -> tuple[EntityType, str]:
        entity, alias = self.entity, self.alias
        for depth, segment in enumerate(path, start=1):
            nav = entity.navs.get(segment)
            if nav is None:
                raise FilterError(f"{entity.name} has no navigation property {segment!r}",
                                  position)
            if not nav.to_one:
                raise FilterError(f"{segment!r} is a collection: compare a property of its "
                                  f"members, or test them with {segment}/any(x: x/…) or "
                                  "all(…)", position)
            target = ENTITY_SETS[nav.target]
            inner = f"{self._join_prefix}{'_'.join(path[:depth]).lower()}"
            if path[:depth] not in self.joins:
                self.joins[path[:depth]] = (f"LEFT JOIN {target.table} {inner} "
                                            f"ON {rename(nav.join, inner, alias)}")
            entity, alias = target, inner
        return entity, alias


class Members:
    """The rows of a to-many navigation of one outer row, as an EXISTS subquery."""

    def __init__(self, entity: EntityType, join: str, alias: str,
                 aliases: Iterator[int]) -> None:
        self.entity = entity
        self.join = join  # the condition tying a member to the outer row
        self.alias = alias
        self.joins: dict[tuple[str, ...], str] = {}
        self.resolver = EntityResolver(entity, self.joins, alias, aliases)

    def exists(self, condition: str | None) -> str:
        """`EXISTS` over the members, of those satisfying `condition` if given."""
        tables = " ".join([f"{self.entity.table} {self.alias}", *self.joins.values()])
        where = self.join if condition is None else f"{self.join} AND {condition}"
        return f"EXISTS (SELECT 1 FROM {tables} WHERE {where})"


def _column(entity: EntityType, name: str, alias: str, position: int,
            joined: bool) -> Column:
    # Through a LEFT JOIN any column can be null: the related row may be missing.
    if name == "id":
        return Column(f"{alias}.id", "integer", nullable=joined)
    prop = entity.props.get(name)
    if prop is None:
        raise FilterError(f"{entity.name} has no property {name!r}", position)
    sql = prop.filter_sql or prop.sql
    return Column(rename(sql, alias, alias), prop.kind,
                  nullable=joined or sql not in _NEVER_NULL)


def rename(sql: str, target: str, source: str) -> str:
    """`sql` with alias t. → `target` and e. → `source`."""
    return _ALIAS.sub(lambda m: f"{target if m[1] == 't' else source}.", sql)
