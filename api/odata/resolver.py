"""How the compiler learns what a property path means in SQL.

The API layer knows its tables and joins; the filter compiler knows neither. A resolver
bridges the two: given a path such as ``("Datastream", "Thing", "name")`` it returns the SQL
expression for that value and its type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

ColumnType = Literal["number", "integer", "string", "boolean", "datetime", "geometry", "json"]


@dataclass(frozen=True)
class Column:
    """The SQL for a property and its type.

    ``sql`` is trusted text written by the API layer, never by the client. Columns of type
    "json" must be ``jsonb``; geometries are expected in SRID 4326.
    """

    sql: str
    type: ColumnType


class Resolver(Protocol):
    """Turns property paths into SQL.

    The compiler first asks for the whole path. When that fails it asks for ever shorter
    prefixes, and if one of them is a "json" column it reads the rest of the path inside that
    JSON document (``properties/owner/name``). So a resolver only needs to know its real
    columns, including json ones like ``properties``, ``parameters`` or ``result``.
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
