"""Compiling a filter's syntax tree to a PostgreSQL boolean expression with parameters.

Every value the client wrote travels as a ``$n`` parameter with an explicit cast, so the
SQL text holds only trusted column expressions, operators and function names. Types are
checked on the way, so nonsense such as ``name add 1`` fails here with a position instead
of in the database.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from api.odata.errors import FilterError
from api.odata.nodes import ARITHMETIC, COMPARISONS, Binary, Call, Literal, Node, Path, Unary
from api.odata.resolver import Column, Resolver
from api.odata.sqlfunctions import TRANSLATIONS
from api.odata.sqltypes import (
    NUMERIC,
    ORDERED,
    Sql,
    SqlType,
    as_boolean,
    as_number,
    as_text,
    type_name,
)

_CASTS: dict[str, tuple[str, SqlType]] = {
    "integer": ("bigint", "integer"),
    "decimal": ("numeric", "number"),
    "double": ("float8", "number"),
    "string": ("text", "string"),
    "datetime": ("timestamptz", "datetime"),
    "date": ("date", "date"),
    "time": ("time", "time"),
    "duration": ("interval", "duration"),
}
_OPERATORS = {
    "eq": "=", "ne": "IS DISTINCT FROM", "gt": ">", "ge": ">=", "lt": "<", "le": "<=",
    "add": "+", "sub": "-", "mul": "*",
}
_TEMPORAL_ARITHMETIC: dict[tuple[str, SqlType, SqlType], SqlType] = {
    ("add", "datetime", "duration"): "datetime",
    ("add", "duration", "datetime"): "datetime",
    ("add", "duration", "duration"): "duration",
    ("sub", "datetime", "duration"): "datetime",
    ("sub", "datetime", "datetime"): "duration",
    ("sub", "duration", "duration"): "duration",
}
_SIMPLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


class CompiledSql(NamedTuple):
    """SQL text with ``$n`` placeholders and the values for them, in order."""

    sql: str
    params: list[object]


def compile_filter(node: Node, resolver: Resolver, start: int = 1) -> CompiledSql:
    """Compile a parsed ``$filter`` to a PostgreSQL boolean expression.

    Args:
        node: the root returned by ``parse_filter``.
        resolver: maps property paths to SQL columns.
        start: the number of the first placeholder to use, so a caller that already has
            ``$1``..``$k`` passes ``k + 1``.

    Returns:
        The SQL text and the parameter values for ``$start``, ``$start + 1``, ...

    Raises:
        FilterError: an unknown property or an ill-typed expression.
    """
    compiler = ExpressionCompiler(resolver, start)
    result = as_boolean(compiler.compile(node), "a filter")
    return CompiledSql(result.text, compiler.params)


class ExpressionCompiler:
    """Compiles expressions, collecting their parameters; also used for ``$orderby``."""

    def __init__(self, resolver: Resolver, start: int) -> None:
        self.resolver = resolver
        self.start = start
        self.params: list[object] = []

    def compile(self, node: Node) -> Sql:
        """Compile one expression to typed SQL."""
        if isinstance(node, Literal):
            return self._literal(node)
        if isinstance(node, Path):
            return self._path(node)
        if isinstance(node, Call):
            args = [self.compile(arg) for arg in node.args]
            return TRANSLATIONS[node.name](args, node.position)
        if isinstance(node, Unary):
            return self._unary(node)
        return self._binary(node)

    def _param(self, value: object) -> str:
        self.params.append(value)
        return f"${self.start + len(self.params) - 1}"

    def _literal(self, node: Literal) -> Sql:
        if node.kind == "null":
            return Sql("NULL", "null", node.position)
        if node.kind == "boolean":
            return Sql("TRUE" if node.value else "FALSE", "boolean", node.position)
        if node.kind in ("geometry", "geography"):
            text = f"ST_GeomFromText({self._param(node.value)}::text, 4326)"
            return Sql(text, "geometry", node.position)
        cast, kind = _CASTS[node.kind]
        return Sql(f"{self._param(node.value)}::{cast}", kind, node.position)

    def _path(self, node: Path) -> Sql:
        try:
            column = self.resolver.resolve(node.segments, node.position)
        except FilterError as unknown:
            for cut in range(len(node.segments) - 1, 0, -1):
                base = self._try_resolve(node.segments[:cut], node.position)
                if base is not None and base.type == "json":
                    return self._json(base, node.segments[cut:], node.position)
            raise unknown from None
        if column.type == "json":
            return self._json(column, (), node.position)
        text = column.sql if _SIMPLE_NAME.fullmatch(column.sql) else f"({column.sql})"
        return Sql(text, column.type, node.position)

    def _try_resolve(self, path: tuple[str, ...], position: int) -> Column | None:
        try:
            return self.resolver.resolve(path, position)
        except FilterError:
            return None

    def _json(self, base: Column, keys: tuple[str, ...], position: int) -> Sql:
        if not keys:
            return Sql(f"(({base.sql}) #>> '{{}}')", "json", position, jsonb=f"({base.sql})")
        keys_param = self._param(list(keys))
        return Sql(
            f"(({base.sql}) #>> {keys_param}::text[])", "json", position,
            jsonb=f"(({base.sql}) #> {keys_param}::text[])",
        )

    def _unary(self, node: Unary) -> Sql:
        operand = self.compile(node.operand)
        if node.op == "not":
            # IS NOT TRUE rather than NOT: a comparison with a missing value is false in
            # OData, so its negation must be true, where SQL's NOT would give NULL.
            text = as_boolean(operand, "not").text
            return Sql(f"({text} IS NOT TRUE)", "boolean", node.position)
        if operand.type == "duration":
            return Sql(f"(-{operand.text})", "duration", node.position)
        number = as_number(operand, "unary minus")
        return Sql(f"(-{number.text})", number.type, node.position)

    def _binary(self, node: Binary) -> Sql:
        left, right = self.compile(node.left), self.compile(node.right)
        if node.op in ("and", "or"):
            left_text = as_boolean(left, node.op).text
            right_text = as_boolean(right, node.op).text
            return Sql(f"({left_text} {node.op.upper()} {right_text})", "boolean", node.position)
        if node.op in COMPARISONS:
            return self._comparison(node, left, right)
        assert node.op in ARITHMETIC
        return self._arithmetic(node, left, right)

    def _comparison(self, node: Binary, left: Sql, right: Sql) -> Sql:
        if "null" in (left.type, right.type):
            return _null_test(node, left, right)
        left, right = _unify(node, left, right)
        if node.op not in ("eq", "ne") and left.type not in ORDERED:
            raise FilterError(f"'{node.op}' cannot order {type_name(left.type)}", node.position)
        if left.type == "geometry":
            raise FilterError("compare geometries with st_equals()", node.position)
        text = f"({left.text} {_OPERATORS[node.op]} {right.text})"
        return Sql(text, "boolean", node.position)

    def _arithmetic(self, node: Binary, left: Sql, right: Sql) -> Sql:
        temporal = _TEMPORAL_ARITHMETIC.get((node.op, left.type, right.type))
        if temporal is not None:
            return Sql(f"({left.text} {_OPERATORS[node.op]} {right.text})", temporal, node.position)
        left, right = as_number(left, f"'{node.op}'"), as_number(right, f"'{node.op}'")
        integral = left.type == right.type == "integer"
        if node.op == "div":
            # A zero divisor gives NULL (no match) rather than aborting the whole query.
            text = f"(({left.text})::float8 / NULLIF({right.text}, 0))"
            return Sql(text, "number", node.position)
        if node.op == "mod":
            text = (
                f"({left.text} % NULLIF({right.text}, 0))" if integral
                else f"mod(({left.text})::numeric, NULLIF(({right.text})::numeric, 0))"
            )
        else:
            text = f"({left.text} {_OPERATORS[node.op]} {right.text})"
        return Sql(text, "integer" if integral else "number", node.position)


def _null_test(node: Binary, left: Sql, right: Sql) -> Sql:
    if node.op not in ("eq", "ne"):
        raise FilterError(f"'{node.op}' cannot compare with null; use eq or ne", node.position)
    other = right if left.type == "null" else left
    test = "IS NULL" if node.op == "eq" else "IS NOT NULL"
    return Sql(f"({other.text} {test})", "boolean", node.position)


def _unify(node: Binary, left: Sql, right: Sql) -> tuple[Sql, Sql]:
    """Bring both sides of a comparison to one type, reading JSON as the other side's type."""
    if left.type == right.type or (left.type in NUMERIC and right.type in NUMERIC):
        if left.type == "json":
            return as_text(left, "a comparison"), as_text(right, "a comparison")
        return left, right
    if left.type == "json":
        return _json_as(node, left, right.type), right
    if right.type == "json":
        return left, _json_as(node, right, left.type)
    raise FilterError(
        f"cannot compare {type_name(left.type)} with {type_name(right.type)}", node.position
    )


def _json_as(node: Binary, value: Sql, kind: SqlType) -> Sql:
    if kind in NUMERIC:
        return as_number(value, "a comparison")
    if kind == "string":
        return as_text(value, "a comparison")
    if kind == "boolean":
        return as_boolean(value, "a comparison")
    raise FilterError(
        f"a JSON value compares only with numbers, strings and booleans, not {type_name(kind)}",
        node.position,
    )
