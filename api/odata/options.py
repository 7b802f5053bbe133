"""Splitting ``$expand`` and ``$select`` values into their parts.

``Datastreams($select=name;$expand=Observations($top=1)),Locations`` becomes a tree of
``Expansion`` nodes. Separators inside parentheses or quoted strings do not split, so nested
``$filter`` texts survive intact; they are kept raw for ``parse_filter``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from api.odata.errors import FilterError, QueryOptionError, UnsupportedOption
from api.odata.lexer import read_quoted

_NAME = re.compile(r"@?[^\W\d]\w*(?:\.[^\W\d]\w*)*")
_NESTED_OPTIONS = frozenset(
    {"$filter", "$expand", "$select", "$orderby", "$top", "$skip", "$count"}
)
_COUNTS = frozenset({"$top", "$skip"})
# Levels of $expand, nested or along a path (Datastreams/Thing is two). Checked while
# parsing, so that text nested hundreds deep is refused before it exhausts the stack.
MAX_EXPAND_DEPTH = 5
# System query options of OData 4.01 that SensorThings does not define: a request naming
# one is refused as not implemented rather than as malformed.
UNSUPPORTED = frozenset({
    "$apply", "$compute", "$deltatoken", "$format", "$id", "$index", "$levels",
    "$schemaversion", "$search",
})


@dataclass(frozen=True)
class Expansion:
    """One expanded navigation with the query options that apply to it.

    ``options`` holds the raw text of each nested option except ``$expand``, whose items are
    parsed into ``expand``.
    """

    path: tuple[str, ...]
    options: Mapping[str, str] = field(default_factory=dict)
    expand: tuple[Expansion, ...] = ()
    position: int = 0


def split_top_level(text: str, separator: str, base: int = 0) -> list[tuple[str, int]]:
    """Split ``text`` at ``separator`` wherever it is outside parentheses and quotes.

    Args:
        text: the list to split.
        separator: one character, "," or ";".
        base: where ``text`` starts in the whole option, for positions.

    Returns:
        Each piece with its position, surrounding whitespace removed.

    Raises:
        QueryOptionError: unbalanced parentheses or an unterminated quote.
    """
    pieces: list[tuple[str, int]] = []
    opened: list[int] = []
    start = at = 0
    while at < len(text):
        char = text[at]
        if char == "'":
            at = _skip_quoted(text, at, base)
            continue
        if char == "(":
            opened.append(at)
        elif char == ")":
            if not opened:
                raise QueryOptionError("')' without a matching '('", base + at)
            opened.pop()
        elif char == separator and not opened:
            pieces.append(_stripped(text[start:at], base + start))
            start = at + 1
        at += 1
    if opened:
        raise QueryOptionError("'(' is never closed", base + opened[-1])
    pieces.append(_stripped(text[start:], base + start))
    return pieces


def _skip_quoted(text: str, at: int, base: int) -> int:
    try:
        _, raw = read_quoted(text, at)
    except FilterError:
        raise QueryOptionError("unterminated string", base + at) from None
    return at + len(raw)


def _stripped(piece: str, at: int) -> tuple[str, int]:
    leading = len(piece) - len(piece.lstrip())
    return piece.strip(), at + leading


def parse_expand(text: str, base: int = 0, depth: int = 0) -> tuple[Expansion, ...]:
    """Parse an ``$expand`` value into a tree of expansions.

    Args:
        text: the URL-decoded value of the query option.
        base: where ``text`` starts in a larger option, for positions.
        depth: the levels of expansion above ``text``.

    Returns:
        The expansions in the order written.

    Raises:
        QueryOptionError: malformed list, unknown or repeated nested option, bad name, or
            more than ``MAX_EXPAND_DEPTH`` levels.
    """
    expansions = [_expansion(item, at, depth)
                  for item, at in _items(text, ",", base, "$expand")]
    seen: set[tuple[str, ...]] = set()
    for expansion in expansions:
        if expansion.path in seen:
            raise QueryOptionError(
                f"'{'/'.join(expansion.path)}' is expanded twice", expansion.position
            )
        seen.add(expansion.path)
    return tuple(expansions)


def parse_select(text: str, base: int = 0) -> tuple[tuple[str, ...], ...]:
    """Parse a ``$select`` value into property paths.

    Args:
        text: the URL-decoded value, e.g. ``name,properties/owner``.
        base: where ``text`` starts in a larger option, for positions.

    Returns:
        Each selected path as its segments.

    Raises:
        QueryOptionError: an empty item or a malformed name.
    """
    return tuple(_path(item, at) for item, at in _items(text, ",", base, "$select"))


def _items(text: str, separator: str, base: int, what: str) -> list[tuple[str, int]]:
    pieces = split_top_level(text, separator, base)
    for piece, at in pieces:
        if not piece:
            raise QueryOptionError(f"empty item in {what}", at)
    return pieces


def _path(text: str, at: int) -> tuple[str, ...]:
    segments = tuple(segment.strip() for segment in text.split("/"))
    offset = 0
    for raw, segment in zip(text.split("/"), segments, strict=True):
        if _NAME.fullmatch(segment) is None:
            raise QueryOptionError(f"'{segment}' is not a property name", at + offset)
        offset += len(raw) + 1
    return segments


def _expansion(item: str, at: int, depth: int) -> Expansion:
    paren = item.find("(")
    if paren < 0:
        return Expansion(_deep_enough(_path(item, at), at, depth), position=at)
    if not item.endswith(")"):
        closing = _matching_paren(item, paren)
        raise QueryOptionError("unexpected text after ')'", at + closing + 1)
    path = _deep_enough(_path(item[:paren].rstrip(), at), at, depth)
    options: dict[str, str] = {}
    children: tuple[Expansion, ...] = ()
    inner_at = at + paren + 1
    for option, option_at in _items(item[paren + 1 : -1], ";", inner_at, "expand options"):
        name, value, value_at = _option(option, option_at)
        if name in options or (name == "$expand" and children):
            raise QueryOptionError(f"{name} is given twice", option_at)
        if name == "$expand":
            children = parse_expand(value, value_at, depth + len(path))
        else:
            options[name] = value
    return Expansion(path, options, children, at)


def _deep_enough(path: tuple[str, ...], at: int, depth: int) -> tuple[str, ...]:
    if depth + len(path) > MAX_EXPAND_DEPTH:
        raise QueryOptionError(f"expansions nest deeper than {MAX_EXPAND_DEPTH} levels", at)
    return path


def _matching_paren(item: str, paren: int) -> int:
    depth = 0
    for index in range(paren, len(item)):
        depth += {"(": 1, ")": -1}.get(item[index], 0)
        if depth == 0:
            return index
    return len(item) - 1


def _option(option: str, at: int) -> tuple[str, str, int]:
    name, equals, value = option.partition("=")
    name = name.strip()
    if not equals:
        raise QueryOptionError(f"expected '=' after {name}", at + len(option))
    if name in UNSUPPORTED:
        raise UnsupportedOption(f"the query option '{name}' is not offered", at)
    if name not in _NESTED_OPTIONS:
        raise QueryOptionError(f"unknown query option '{name}'", at)
    value_at = at + len(option) - len(value)
    value, value_at = _stripped(value, value_at)
    if not value:
        raise QueryOptionError(f"{name} has no value", value_at)
    if name in _COUNTS and not (value.isascii() and value.isdigit()):
        raise QueryOptionError(f"{name} needs a non-negative integer", value_at)
    if name == "$count" and value not in ("true", "false"):
        raise QueryOptionError("$count needs true or false", value_at)
    return name, value, value_at
