"""Parsing and compiling ``$orderby``: a comma-separated list of ``expression [asc|desc]``,
the direction in any case."""

from __future__ import annotations

from dataclasses import dataclass

from api.odata.compiler import CompiledSql, ExpressionCompiler
from api.odata.errors import FilterError
from api.odata.nodes import Node
from api.odata.parser import Parser
from api.odata.resolver import Resolver


@dataclass(frozen=True)
class OrderItem:
    """One sort key; usually a property path, but any expression is allowed."""

    expression: Node
    descending: bool
    position: int


def parse_orderby(text: str) -> tuple[OrderItem, ...]:
    """Parse an ``$orderby`` value such as ``phenomenonTime desc, result``.

    Args:
        text: the URL-decoded value of the query option.

    Returns:
        The sort keys, most significant first.

    Raises:
        FilterError: the list is empty or an item is malformed.
    """
    parser = Parser(text)
    if parser.peek().kind == "end":
        raise FilterError("empty $orderby", 0)
    items = [_item(parser)]
    while parser.peek().kind == ",":
        parser.advance()
        items.append(_item(parser))
    parser.expect_end()
    return tuple(items)


def _item(parser: Parser) -> OrderItem:
    position = parser.peek().position
    expression = parser.expression()
    token = parser.peek()
    descending = False
    # Clients send "ASC" and "DESC" too; after a complete key nothing else could be meant.
    if token.kind == "name" and token.text.lower() in ("asc", "desc"):
        parser.advance()
        descending = token.text.lower() == "desc"
    return OrderItem(expression, descending, position)


def compile_orderby(
    items: tuple[OrderItem, ...], resolver: Resolver, start: int = 1
) -> CompiledSql:
    """Compile sort keys to the body of an SQL ``ORDER BY`` clause.

    Args:
        items: what ``parse_orderby`` returned.
        resolver: maps property paths to SQL columns.
        start: the number of the first placeholder to use.

    Returns:
        Text such as ``o.phenomenon_time DESC, o.name ASC NULLS FIRST`` and its
        parameters.

    Raises:
        FilterError: an unknown property, or a key that cannot be ordered (a geometry).
    """
    compiler = ExpressionCompiler(resolver, start)
    keys = []
    for item in items:
        key = compiler.compile(item.expression)
        if key.type in ("geometry", "null"):
            raise FilterError(f"cannot order by {key.type}", item.position)
        # A JSON value orders as JSON: numbers by value, not by their text.
        text = key.jsonb if key.type == "json" and key.jsonb is not None else key.text
        if text in ("TRUE", "FALSE"):
            text = f"{text}::boolean"  # PostgreSQL refuses a bare constant as a sort key
        keys.append(f"{text} {direction(item.descending, key.nullable)}")
    return CompiledSql(", ".join(keys), compiler.params)


def direction(descending: bool, nullable: bool = True) -> str:
    """The SQL direction of a sort key: the standard puts nulls first in ascending order and
    last in descending order, the opposite of PostgreSQL's default. A key that is never null
    goes without the clause, so that an index in its natural order still serves it.

    Args:
        descending: whether the key sorts in descending order.
        nullable: whether the key can be null.

    Returns:
        e.g. "ASC NULLS FIRST", or "DESC" for a key that is never null.
    """
    if not nullable:
        return "DESC" if descending else "ASC"
    return "DESC NULLS LAST" if descending else "ASC NULLS FIRST"
