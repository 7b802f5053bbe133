"""Typed SQL fragments and the checks and casts between their types.

Every compiled sub-expression is an ``Sql``: its text, its type, and where it came from in
the filter, so that a type mismatch can be reported at the right character.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from api.odata.errors import FilterError

SqlType = Literal[
    "integer", "number", "string", "boolean", "datetime", "date", "time", "duration",
    "geometry", "json", "null",
]
NUMERIC: frozenset[SqlType] = frozenset({"integer", "number"})
ORDERED: frozenset[SqlType] = frozenset(
    {"integer", "number", "string", "datetime", "date", "time", "duration"}
)
_NAMES = {
    "integer": "an integer", "number": "a number", "string": "a string",
    "boolean": "a boolean", "datetime": "a datetime", "date": "a date", "time": "a time",
    "duration": "a duration", "geometry": "a geometry", "json": "a JSON value", "null": "null",
}


@dataclass(frozen=True)
class Sql:
    """A compiled sub-expression.

    For JSON values ``text`` reads the value as text and ``jsonb`` keeps it as JSON, so that
    its JSON type can be tested before it is cast to a number or a boolean. ``nullable`` is
    False only for a column known never to be null.
    """

    text: str
    type: SqlType
    position: int
    jsonb: str | None = None
    nullable: bool = True


def type_name(kind: SqlType) -> str:
    """Name a type with its article for error messages, e.g. "an integer".

    Args:
        kind: the type.

    Returns:
        The name.
    """
    return _NAMES[kind]


def mismatch(expr: Sql, wanted: str, what: str) -> FilterError:
    """Build the error for an operand of the wrong type.

    Args:
        expr: the offending operand.
        wanted: what was needed, e.g. "a string".
        what: who needed it, e.g. "length()".

    Returns:
        The error, positioned at the operand.
    """
    return FilterError(f"{what} needs {wanted}, got {type_name(expr.type)}", expr.position)


def as_number(expr: Sql, what: str) -> Sql:
    """Check that ``expr`` is numeric; JSON becomes a number when it holds one, else NULL.

    Args:
        expr: the operand.
        what: who needs a number, for the error message.

    Returns:
        The operand, typed "integer" or "number".
    """
    if expr.type in NUMERIC:
        return expr
    if expr.jsonb is not None:
        return _json_cast(expr, "number", "numeric", "number")
    raise mismatch(expr, "a number", what)


def as_integer(expr: Sql, what: str) -> Sql:
    """Check that ``expr`` is an integer.

    Args:
        expr: the operand.
        what: who needs an integer, for the error message.

    Returns:
        The operand unchanged.
    """
    if expr.type == "integer":
        return expr
    raise mismatch(expr, "an integer", what)


def as_text(expr: Sql, what: str) -> Sql:
    """Check that ``expr`` is a string; JSON values are read as their text.

    Args:
        expr: the operand.
        what: who needs a string, for the error message.

    Returns:
        The operand, typed "string".
    """
    if expr.type == "string":
        return expr
    if expr.jsonb is not None:
        return Sql(expr.text, "string", expr.position)
    raise mismatch(expr, "a string", what)


def as_boolean(expr: Sql, what: str) -> Sql:
    """Check that ``expr`` is a boolean; JSON becomes one when it holds true or false.

    Args:
        expr: the operand.
        what: who needs a boolean, for the error message.

    Returns:
        The operand, typed "boolean".
    """
    if expr.type == "boolean":
        return expr
    if expr.jsonb is not None:
        return _json_cast(expr, "boolean", "boolean", "boolean")
    raise mismatch(expr, "a boolean", what)


def as_one_of(expr: Sql, kinds: frozenset[SqlType], what: str) -> Sql:
    """Check that ``expr`` has one of ``kinds``.

    Args:
        expr: the operand.
        kinds: the accepted types.
        what: who needs them, for the error message.

    Returns:
        The operand unchanged.
    """
    if expr.type in kinds:
        return expr
    wanted = " or ".join(type_name(kind) for kind in sorted(kinds))
    raise mismatch(expr, wanted, what)


def _json_cast(expr: Sql, json_type: str, sql_type: str, kind: SqlType) -> Sql:
    # A JSON string cast to numeric would abort the whole query, so values of another JSON
    # type become NULL and simply do not match.
    text = (
        f"(CASE WHEN jsonb_typeof({expr.jsonb}) = '{json_type}' "
        f"THEN ({expr.jsonb})::{sql_type} END)"
    )
    return Sql(text, kind, expr.position)
