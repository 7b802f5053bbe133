"""Paths through collections inside an expression, and how to rewrite them.

A comparison such as ``Datastreams/name eq 'NO2'`` on a Thing holds when some Datastream's
name is 'NO2'. The compiler reads it as ``Datastreams/any(#1: #1/name eq 'NO2')``: it finds
the collection (``find``), binds every path through it to a fresh variable (``rebind``) and
compiles the result as a lambda. Lambdas nested in the expression keep their own paths.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from api.odata.nodes import Binary, Call, In, Lambda, Literal, Node, Path, Unary

# Splits a path into the variable it starts with (None for the filtered entity itself)
# and the rest, and says how many segments of the rest reach a collection.
Scope = Callable[[tuple[str, ...]], tuple[str | None, tuple[str, ...], int]]


@dataclass(frozen=True)
class Crossing:
    """A path through a collection: its variable (or None), the segments up to and
    including the collection, and where the path starts."""

    head: str | None
    prefix: tuple[str, ...]
    position: int


def find(node: Node, scope: Scope) -> Crossing | None:
    """The first path in ``node`` that continues past a collection, outside lambdas.

    Args:
        node: an expression.
        scope: splits a path as described at ``Scope``.

    Returns:
        Where that path crosses its collection, or None if no path does.
    """
    if isinstance(node, Path):
        head, rest, cut = scope(node.segments)
        # A path that ends at the collection names no value; the resolver explains that.
        if 0 < cut < len(rest):
            return Crossing(head, rest[:cut], node.position)
        return None
    for child in _children(node):
        found = find(child, scope)
        if found is not None:
            return found
    return None


def rebind(node: Node, crossing: Crossing, variable: str, scope: Scope) -> Node:
    """``node`` with every path through ``crossing`` starting at ``variable`` instead.

    Args:
        node: the expression ``find`` looked at.
        crossing: what ``find`` returned.
        variable: the fresh name of one member of the collection.
        scope: the same splitter ``find`` used.

    Returns:
        The rewritten expression; other paths are left as they are.
    """
    if isinstance(node, Path):
        head, rest, _ = scope(node.segments)
        size = len(crossing.prefix)
        if head == crossing.head and rest[:size] == crossing.prefix and len(rest) > size:
            return Path((variable, *rest[size:]), node.position)
        return node
    if isinstance(node, Unary):
        return Unary(node.op, rebind(node.operand, crossing, variable, scope), node.position)
    if isinstance(node, Binary):
        return Binary(node.op, rebind(node.left, crossing, variable, scope),
                      rebind(node.right, crossing, variable, scope), node.position)
    if isinstance(node, Call):
        return Call(node.name, tuple(rebind(a, crossing, variable, scope) for a in node.args),
                    node.position)
    if isinstance(node, In):
        return In(rebind(node.value, crossing, variable, scope),
                  tuple(rebind(i, crossing, variable, scope) for i in node.items),
                  node.position)
    return node


def _children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, Binary):
        return (node.left, node.right)
    if isinstance(node, Call):
        return node.args
    if isinstance(node, In):
        return (node.value, *node.items)
    assert isinstance(node, Literal | Lambda)
    return ()
