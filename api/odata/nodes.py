"""The syntax tree of an OData expression: small frozen dataclasses.

Every node keeps the 0-based character position where it starts in the source text, so
the compiler can point at the offending part when a type check fails.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal as TypingLiteral

LiteralKind = TypingLiteral[
    "integer", "decimal", "double", "string", "boolean", "null",
    "datetime", "date", "time", "duration", "geometry", "geography",
]
LiteralValue = (
    int | Decimal | float | str | bool | None | dt.datetime | dt.date | dt.time | dt.timedelta
)

COMPARISONS = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
ARITHMETIC = frozenset({"add", "sub", "mul", "div", "mod"})


@dataclass(frozen=True)
class Literal:
    """A constant written in the expression.

    Geometry and geography values are held as normalised WKT text.
    """

    value: LiteralValue
    kind: LiteralKind
    position: int


@dataclass(frozen=True)
class Path:
    """A property reached from the filtered entity, e.g. ``Datastream/Thing/name``.

    An index into a JSON array is a segment of its own, in brackets as written:
    ``properties/readings[1]`` is ``("properties", "readings", "[1]")``. A name never starts
    with "[", so the two cannot be confused.
    """

    segments: tuple[str, ...]
    position: int


def index_segment(index: int) -> str:
    """The path segment of an array index, e.g. "[1]"."""
    return f"[{index}]"


def array_index(segment: str) -> int | None:
    """The array index a path segment stands for, or None if it is a name."""
    return int(segment[1:-1]) if segment.startswith("[") else None


def shown(segments: tuple[str, ...]) -> str:
    """A path as the client writes it, e.g. ``properties/readings[1]``, for messages."""
    return "/".join(segments).replace("/[", "[")


@dataclass(frozen=True)
class Call:
    """A built-in function applied to its arguments."""

    name: str
    args: tuple[Node, ...]
    position: int


@dataclass(frozen=True)
class Unary:
    """``not x`` or ``-x``; ``op`` is "not" or "neg"."""

    op: str
    operand: Node
    position: int


@dataclass(frozen=True)
class Binary:
    """A comparison, logical, or arithmetic operator with its two operands."""

    op: str
    left: Node
    right: Node
    position: int


@dataclass(frozen=True)
class Lambda:
    """``path/any(v: body)``, ``path/all(v: body)`` or ``path/any()`` over a collection.

    ``variable`` names a member of the collection inside ``body``; both are None for
    ``any()``, which asks whether the collection has members at all.
    """

    path: tuple[str, ...]
    op: str
    variable: str | None
    body: Node | None
    position: int


@dataclass(frozen=True)
class In:
    """``value in (a, b, ...)``: the value equals one of the items."""

    value: Node
    items: tuple[Node, ...]
    position: int


Node = Literal | Path | Call | Unary | Binary | Lambda | In
