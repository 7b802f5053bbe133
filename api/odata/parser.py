"""A Pratt parser from OData expression text to the syntax tree in ``nodes``.

Binding from loosest to tightest: ``or``, ``and``, ``not``, the comparisons and ``in``,
``add``/``sub``, ``mul``/``div``/``mod``, unary minus, then literals, paths (with indexes
into JSON arrays, ``properties/readings[1]``), calls, lambdas
(``Datastreams/any(d: d/name eq 'NO2')``) and parentheses. ``not`` sits below the
comparisons, so ``not a eq b`` reads as ``not (a eq b)``, as in SQL.
"""

from __future__ import annotations

import re
from decimal import Decimal

from api.odata.errors import FilterError
from api.odata.functions import ARITY, describe_arity
from api.odata.lexer import Token, tokenize
from api.odata.nodes import (
    COMPARISONS,
    Binary,
    Call,
    In,
    Lambda,
    Literal,
    Node,
    Path,
    Unary,
    index_segment,
)

_INFIX_POWER = {"or": 10, "and": 20} | dict.fromkeys(COMPARISONS, 40) | {
    "in": 40, "add": 50, "sub": 50, "mul": 60, "div": 60, "mod": 60,
}
_LAMBDAS = frozenset({"any", "all"})
_VARIABLE = re.compile(r"[^\W\d]\w*")
_KEYWORDS = frozenset({"not", "true", "false", "null"})
# An "in" list is a row of parameters; this keeps a request well inside the database's limit.
MAX_IN_ITEMS = 1000
_NOT_POWER = 30
_NEGATE_POWER = 70
_INT64 = range(-(2**63), 2**63)
# Deep trees would exhaust the interpreter's stack in the parser or the compiler; no honest
# filter nests this far. Chains like "a eq 1 or a eq 2 or ..." deepen the tree without
# nesting, hence the larger tree limit.
MAX_NESTING = 100
MAX_DEPTH = 200
_NUMERIC_KINDS = frozenset({"integer", "decimal", "double"})


def parse_filter(text: str) -> Node:
    """Parse a ``$filter`` expression.

    Args:
        text: the URL-decoded value of the ``$filter`` query option.

    Returns:
        The root of the syntax tree.

    Raises:
        FilterError: the text is not a well-formed expression; ``position`` says where.
    """
    parser = Parser(text)
    if parser.peek().kind == "end":
        raise FilterError("empty expression", 0)
    node = parser.expression()
    parser.expect_end()
    return node


class Parser:
    """Reads expressions from a token stream; also used by the ``$orderby`` parser."""

    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.index = 0
        self._depths: dict[int, int] = {}
        self._nesting = 0

    def peek(self) -> Token:
        """Return the next token without consuming it."""
        return self.tokens[self.index]

    def advance(self) -> Token:
        """Consume and return the next token."""
        token = self.tokens[self.index]
        if token.kind != "end":
            self.index += 1
        return token

    def expect(self, kind: str, what: str) -> Token:
        """Consume a token of ``kind`` or fail naming ``what`` was expected."""
        token = self.peek()
        if token.kind != kind:
            raise FilterError(f"expected {what}, found {describe(token)}", token.position)
        return self.advance()

    def expect_end(self) -> None:
        """Fail unless every token has been consumed."""
        token = self.peek()
        if token.kind != "end":
            raise FilterError(
                f"unexpected {describe(token)} after a complete expression", token.position
            )

    def expression(self, min_power: int = 0) -> Node:
        """Parse an expression whose operators all bind tighter than ``min_power``."""
        self._nesting += 1
        if self._nesting > MAX_NESTING:
            raise FilterError("expression nests too deeply", self.peek().position)
        left = self._prefix()
        while True:
            token = self.peek()
            power = _INFIX_POWER.get(token.text) if token.kind == "name" else None
            if power is None or power <= min_power:
                self._nesting -= 1
                return left
            self.advance()
            if token.text == "in":
                left = self._in(left, token)
                continue
            right = self.expression(power)
            left = self._built(Binary(token.text, left, right, token.position), left, right)

    def _built(self, node: Node, *children: Node) -> Node:
        depth = 1 + max((self._depths.get(id(child), 1) for child in children), default=0)
        if depth > MAX_DEPTH:
            raise FilterError("expression nests too deeply", node.position)
        self._depths[id(node)] = depth
        return node

    def _prefix(self) -> Node:
        token = self.advance()
        if token.kind == "literal":
            return self._literal(token, negative=False)
        if token.kind == "(":
            inner = self.expression()
            self.expect(")", "')'")
            return inner
        if token.kind == "-":
            return self._negation(token)
        if token.kind == "name":
            return self._name(token)
        raise FilterError(f"expected an expression, found {describe(token)}", token.position)

    def _literal(self, token: Token, *, negative: bool, position: int | None = None) -> Literal:
        assert token.literal_kind is not None
        value = token.value
        if negative and isinstance(value, int | float | Decimal):
            value = -value
        if token.literal_kind == "integer" and value not in _INT64:
            raise FilterError("integer is outside the 64-bit range", token.position)
        start = token.position if position is None else position
        return Literal(value, token.literal_kind, start)

    def _negation(self, minus: Token) -> Node:
        following = self.peek()
        if following.kind == "literal" and following.literal_kind in _NUMERIC_KINDS:
            self.advance()
            return self._literal(following, negative=True, position=minus.position)
        operand = self.expression(_NEGATE_POWER)
        return self._built(Unary("neg", operand, minus.position), operand)

    def _name(self, token: Token) -> Node:
        name = token.text
        if name == "not":
            operand = self.expression(_NOT_POWER)
            return self._built(Unary("not", operand, token.position), operand)
        if name in ("true", "false"):
            return Literal(name == "true", "boolean", token.position)
        if name == "null":
            return Literal(None, "null", token.position)
        if self.peek().kind == "(":
            return self._call(token)
        if name in _INFIX_POWER:
            raise FilterError(f"expected an expression, found '{name}'", token.position)
        segments = [name, *self._indexes(token)]
        while self.peek().kind == "/":
            slash = self.advance()
            segment = self.peek()
            # Paths carry no spaces, so "Datastream/ eq 1" is a missing segment, not "eq".
            if segment.kind != "name" or segment.position != slash.position + 1:
                raise FilterError(
                    f"expected a property name after '/', found {describe(segment)}",
                    slash.position + 1,
                )
            self.advance()
            if segment.text in _LAMBDAS and self.peek().kind == "(":
                return self._lambda(tuple(segments), segment, token.position)
            segments += [segment.text, *self._indexes(segment)]
        return Path(tuple(segments), token.position)

    def _indexes(self, name: Token) -> list[str]:
        """Array indexes written right after a name, as in ``readings[1]`` or ``m[0][2]``."""
        indexes: list[str] = []
        end = name.position + len(name.text)
        # Only the bracket must touch the name: "a [0]" would be a name and a stray "[".
        while self.peek().kind == "[" and self.peek().position == end:
            self.advance()
            number = self.peek()
            if number.literal_kind != "integer" or not isinstance(number.value, int):
                raise FilterError("an array index is a whole number from 0, as in "
                                  f"{name.text}[0]", number.position)
            self.advance()
            end = self.expect("]", "']' after the array index").position + 1
            indexes.append(index_segment(number.value))
        return indexes

    def _lambda(self, path: tuple[str, ...], operator: Token, position: int) -> Node:
        self.advance()
        if self.peek().kind == ")":
            if operator.text == "all":
                raise FilterError("all() needs a condition, as in all(d: d/name eq 'x')",
                                  operator.position)
            self.advance()
            return Lambda(path, "any", None, None, position)
        variable = self.expect("name", "a variable name")
        if (_VARIABLE.fullmatch(variable.text) is None or variable.text in _INFIX_POWER
                or variable.text in _KEYWORDS):
            raise FilterError(f"'{variable.text}' cannot name a variable", variable.position)
        self.expect(":", f"':' after the variable '{variable.text}'")
        body = self.expression()
        self.expect(")", "')'")
        return self._built(Lambda(path, operator.text, variable.text, body, position), body)

    def _in(self, value: Node, keyword: Token) -> Node:
        self.expect("(", "'(' and a list of values after 'in'")
        items = [self.expression()]
        while self.peek().kind == ",":
            self.advance()
            items.append(self.expression())
            if len(items) > MAX_IN_ITEMS:
                raise FilterError(f"'in' takes at most {MAX_IN_ITEMS} values",
                                  keyword.position)
        self.expect(")", "',' or ')'")
        return self._built(In(value, tuple(items), keyword.position), value, *items)

    def _call(self, name: Token) -> Node:
        if name.text not in ARITY:
            raise FilterError(f"unknown function '{name.text}'", name.position)
        self.advance()
        args: list[Node] = []
        if self.peek().kind != ")":
            args.append(self.expression())
            while self.peek().kind == ",":
                self.advance()
                args.append(self.expression())
        self.expect(")", "',' or ')'")
        low, high = ARITY[name.text]
        if not low <= len(args) <= high:
            raise FilterError(
                f"{name.text}() takes {describe_arity(name.text)}, got {len(args)}",
                name.position,
            )
        return self._built(Call(name.text, tuple(args), name.position), *args)


def describe(token: Token) -> str:
    """Name a token for an error message.

    Args:
        token: the token found where something else was expected.

    Returns:
        "the end of the expression" or the token's text in quotes.
    """
    return "the end of the expression" if token.kind == "end" else f"'{token.text}'"
