"""How the compiler learns what a property path means in SQL.

The API layer knows its tables and joins; the filter compiler knows neither. A resolver
bridges the two: given a path such as ``("Datastream", "Thing", "name")`` it returns the SQL
expression for that value and its type. A path through a to-many navigation (a Thing's
``Datastreams/name``) names no single value: the resolver says where such a collection
starts, and hands out a ``Collection`` that tests its members in a correlated subquery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

ColumnType = Literal["number", "integer", "string", "boolean", "datetime", "geometry", "json"]


@dataclass(frozen=True)
class Column:
    """The SQL for a property and its type.

    ``sql`` is trusted text written by the API layer, never by the client. Columns of type
    "json" must be ``jsonb``; geometries are expected in SRID 4326. ``nullable`` is False
    for a column that never holds null, which lets ``$orderby`` keep the order an index has.
    """

    sql: str
    type: ColumnType
    nullable: bool = True


class Collection(Protocol):
    """The members of a to-many navigation of one row, for ``any`` and ``all``."""

    @property
    def resolver(self) -> Resolver:
        """Resolves paths relative to one member."""
        ...

    def exists(self, condition: str | None) -> str:
        """SQL that holds when some member satisfies ``condition`` (any member if None).

        Args:
            condition: a boolean SQL expression over the member's columns, or None.

        Returns:
            A boolean SQL expression over the outer row, such as ``EXISTS (...)``.
        """
        ...


class Resolver(Protocol):
    """Turns property paths into SQL.

    The compiler first asks for the whole path. When that fails it asks for ever shorter
    prefixes, and if one of them is a "json" column it reads the rest of the path inside that
    JSON document (``properties/owner/name``, ``properties/readings[1]``). So a resolver only
    needs to know its real columns, including json ones like ``properties``, ``parameters``
    or ``result``; ``@iot.id`` reaches it as ``id``.
    """

    def resolve(self, path: tuple[str, ...], position: int) -> Column:
        """Return the column for ``path``.

        Args:
            path: the segments of the property path, e.g. ``("Datastream", "Thing", "name")``.
            position: where the path starts in the expression, for the error.

        Returns:
            The SQL expression and its type.

        Raises:
            FilterError: no such property (with ``position``).
        """
        ...

    def collection_prefix(self, path: tuple[str, ...]) -> int:
        """How many leading segments of ``path`` reach its first to-many navigation.

        Args:
            path: property path segments, e.g. ``("Datastreams", "Observations", "result")``.

        Returns:
            1 for that example; 0 when the path crosses no collection (or names nothing).
        """
        ...

    def collection(self, path: tuple[str, ...], position: int) -> Collection:
        """The collection that ``path`` ends in (after any to-one navigation).

        Args:
            path: segments whose last one is a to-many navigation.
            position: where the path starts in the expression, for the error.

        Returns:
            The collection, correlated with the row this resolver describes.

        Raises:
            FilterError: the path does not end in a collection.
        """
        ...
