"""Compiling a filter's syntax tree to a PostgreSQL boolean expression with parameters.

Every value the client wrote travels as a ``$n`` parameter with an explicit cast, so the
SQL text holds only trusted column expressions, operators and function names. Types are
checked on the way, so nonsense such as ``name add 1`` fails here with a position instead
of in the database.

A collection is tested in a subquery: ``Datastreams/any(d: d/name eq 'NO2')`` becomes
``EXISTS (...)`` and ``all`` becomes ``NOT EXISTS (... a member that fails)``, so the
filtered rows are never repeated. A comparison or function that reads a path through a
collection (``Datastreams/name eq 'NO2'``) holds when some member satisfies it.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from api.odata import members
from api.odata.errors import FilterError
from api.odata.nodes import (
    ARITHMETIC,
    COMPARISONS,
    Binary,
    Call,
    In,
    Lambda,
    Literal,
    Node,
    Path,
    Unary,
    array_index,
    shown,
)
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
IOT_ID = "@iot.id"
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
        # Lambda variables in scope, each resolving paths of one member of its collection.
        self.variables: dict[str, Resolver] = {}
        self._made = 0

    def compile(self, node: Node) -> Sql:
        """Compile one expression to typed SQL."""
        if isinstance(node, Literal):
            return self._literal(node)
        if isinstance(node, Path):
            return self._path(node)
        if isinstance(node, Lambda):
            return self._lambda(node)
        if isinstance(node, Unary):
            return self._unary(node)
        if isinstance(node, Binary) and node.op in ("and", "or"):
            return self._binary(node)
        crossing = members.find(node, self._scope)
        if crossing is not None:
            return self._some_member(node, crossing)
        if isinstance(node, Call):
            args = [self.compile(arg) for arg in node.args]
            return TRANSLATIONS[node.name](args, node.position)
        if isinstance(node, In):
            return self._in(node)
        return self._binary(node)

    def _scope(self, path: tuple[str, ...]) -> tuple[str | None, tuple[str, ...], int]:
        head = path[0] if path[0] in self.variables else None
        rest = path[1:] if head is not None else path
        resolver = self._resolver_of(head)
        return head, rest, resolver.collection_prefix(rest) if rest else 0

    def _resolver_of(self, head: str | None) -> Resolver:
        return self.resolver if head is None else self.variables[head]

    def _variable(self) -> str:
        # "#" cannot start a name the client writes, so these never clash with theirs.
        self._made += 1
        return f"#{self._made}"

    def _some_member(self, node: Node, crossing: members.Crossing) -> Sql:
        variable = self._variable()
        body = members.rebind(node, crossing, variable, self._scope)
        resolver = self._resolver_of(crossing.head)
        return self._quantified("any", resolver, crossing.prefix, variable, body,
                                crossing.position)

    def _lambda(self, node: Lambda) -> Sql:
        head, rest, cut = self._scope(node.path)
        if not rest or cut == 0:
            raise FilterError(f"'{shown(rest or node.path)}' is not a collection; any() and "
                              "all() follow one, as in Datastreams/any(d: d/name eq 'x')",
                              node.position)
        resolver = self._resolver_of(head)
        if cut < len(rest):
            # Datastreams/Observations/all(...): all Observations of all Datastreams.
            outer = self._variable()
            inner = Lambda((outer, *rest[cut:]), node.op, node.variable, node.body,
                           node.position)
            return self._quantified(node.op, resolver, rest[:cut], outer, inner, node.position)
        return self._quantified(node.op, resolver, rest, node.variable, node.body,
                                node.position)

    def _quantified(self, op: str, resolver: Resolver, path: tuple[str, ...],
                    variable: str | None, body: Node | None, position: int) -> Sql:
        collection = resolver.collection(path, position)
        if variable is None or body is None:
            return Sql(collection.exists(None), "boolean", position)
        if variable in self.variables:
            raise FilterError(f"the variable '{variable}' is already in use", position)
        self.variables[variable] = collection.resolver
        try:
            condition = self.compile(body)
        finally:
            del self.variables[variable]
        if condition.type != "boolean" and condition.jsonb is None:
            raise FilterError(f"'{shown(path)}' is a collection: test a condition on its "
                              "members, not a value", position)
        test = as_boolean(condition, f"{op}()").text
        if op == "any":
            return Sql(collection.exists(test), "boolean", position)
        return Sql(f"(NOT {collection.exists(f'({test} IS NOT TRUE)')})", "boolean", position)

    def _in(self, node: In) -> Sql:
        value = self.compile(node.value)
        tests = [self._comparison(Binary("eq", node.value, item, node.position), value,
                                  self.compile(item)).text for item in node.items]
        return Sql(f"({' OR '.join(tests)})", "boolean", node.position)

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
        head, path, _ = self._scope(node.segments)
        if not path or array_index(path[0]) is not None:
            raise FilterError(f"'{head}' stands for a member of a collection; name one of "
                              f"its properties, as in {head}/name", node.position)
        resolver = self._resolver_of(head)
        # Keys inside JSON stay as written: only a property is renamed.
        names = tuple(property_name(segment) for segment in path)
        try:
            column = resolver.resolve(names, node.position)
        except FilterError as unknown:
            for cut in range(len(path) - 1, 0, -1):
                base = _try_resolve(resolver, names[:cut], node.position)
                if base is not None and base.type == "json":
                    return self._json(base, path[cut:], node.position)
            raise _unindexable(resolver, names, node.position) or unknown from None
        if column.type == "json":
            return self._json(column, (), node.position)
        text = column.sql if _SIMPLE_NAME.fullmatch(column.sql) else f"({column.sql})"
        return Sql(text, column.type, node.position, nullable=column.nullable)

    def _json(self, base: Column, keys: tuple[str, ...], position: int) -> Sql:
        if not keys:
            return Sql(f"(({base.sql}) #>> '{{}}')", "json", position, jsonb=f"({base.sql})")
        # PostgreSQL reads a path element of digits as the index when it meets an array.
        keys_param = self._param([_json_key(key) for key in keys])
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


def property_name(written: str) -> str:
    """The name of a property as a request writes it: `@iot.id`, SensorThings' name of
    the id, is `id`; every other name is itself."""
    return "id" if written == IOT_ID else written


def _try_resolve(resolver: Resolver, path: tuple[str, ...], position: int) -> Column | None:
    try:
        return resolver.resolve(path, position)
    except FilterError:
        return None


def _unindexable(resolver: Resolver, path: tuple[str, ...], position: int) -> FilterError | None:
    """Why an indexed path that reaches no JSON value fails: what precedes its first index
    is unknown, or is not JSON. None for a path without an index."""
    first = next((at for at, segment in enumerate(path) if array_index(segment) is not None),
                 None)
    if first is None:
        return None
    try:
        resolver.resolve(path[:first], position)
    except FilterError as unknown:
        return unknown
    return FilterError(f"'{shown(path[:first])}' is not JSON: an array index follows a JSON "
                       "property, as in properties/readings[0]", position)


def _json_key(segment: str) -> str:
    index = array_index(segment)
    return segment if index is None else str(index)


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
