"""Splitting an OData expression into tokens, decoding literal values on the way.

Keywords (``eq``, ``and``, ``true`` ...) come out as names; the parser decides what a name
means from where it stands.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal as TypingLiteral
from typing import cast

from api.odata.errors import FilterError
from api.odata.nodes import LiteralKind, LiteralValue
from api.odata.wkt import normalise_wkt

TokenKind = TypingLiteral["literal", "name", "(", ")", ",", "/", "-", ":", "[", "]", "end"]

_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,12}))?)?"
    r"(Z|[+-]\d{2}:\d{2})?",
    re.ASCII,
)
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
_TIME = re.compile(r"(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,12}))?)?", re.ASCII)
_NUMBER = re.compile(r"\d+(\.\d+)?([eE][-+]?\d+)?", re.ASCII)
_NAME = re.compile(r"@?[^\W\d]\w*(?:\.[^\W\d]\w*)*")
_DURATION = re.compile(
    r"(-?)P(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?", re.ASCII
)
_PUNCTUATION = frozenset("(),/-:[]")
_INT64_DIGITS = 19
_TYPED_LITERALS = frozenset({"duration", "geometry", "geography"})


@dataclass(frozen=True)
class Token:
    """One token; ``value`` and ``literal_kind`` are set for literals only."""

    kind: TokenKind
    text: str
    position: int
    value: LiteralValue = None
    literal_kind: LiteralKind | None = None


def tokenize(text: str) -> list[Token]:
    """Split an expression into tokens, ending with one "end" token.

    Args:
        text: the expression as the client sent it (already URL-decoded).

    Returns:
        The tokens in order; the last has kind "end" and the length of ``text`` as position.

    Raises:
        FilterError: an unknown character, an unterminated string, or a malformed literal.
    """
    tokens: list[Token] = []
    at = 0
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        token = _read_token(text, at)
        tokens.append(token)
        at += len(token.text)
    tokens.append(Token("end", "", len(text)))
    return tokens


def _read_token(text: str, at: int) -> Token:
    char = text[at]
    if char == "'":
        value, raw = read_quoted(text, at)
        return Token("literal", raw, at, value, "string")
    if char.isascii() and char.isdigit():
        return _read_numeric(text, at)
    if char in _PUNCTUATION:
        return Token(cast(TokenKind, char), char, at)
    if (name := _NAME.match(text, at)) is not None:
        if text.startswith("'", name.end()):
            return _read_typed_literal(text, at, name.group())
        return Token("name", name.group(), at)
    raise FilterError(f"unexpected character {char!r}", at)


def read_quoted(text: str, at: int) -> tuple[str, str]:
    """Read a single-quoted string whose opening quote is at ``at``; ``''`` stands for ``'``.

    Args:
        text: the whole expression.
        at: position of the opening quote.

    Returns:
        The decoded value and the raw text including both quotes.

    Raises:
        FilterError: the closing quote is missing (positioned at the opening quote).
    """
    parts: list[str] = []
    start = at + 1
    while True:
        end = text.find("'", start)
        if end < 0:
            raise FilterError("unterminated string", at)
        parts.append(text[start:end])
        if not text.startswith("''", end):
            return "".join(parts), text[at : end + 1]
        parts.append("'")
        start = end + 2


def _read_numeric(text: str, at: int) -> Token:
    if (match := _DATETIME.match(text, at)) is not None:
        return Token("literal", match.group(), at, _datetime(match, at), "datetime")
    if (match := _DATE.match(text, at)) is not None:
        return Token("literal", match.group(), at, _date(match, at), "date")
    if (match := _TIME.match(text, at)) is not None:
        return Token("literal", match.group(), at, _time(match, at), "time")
    match = _NUMBER.match(text, at)
    assert match is not None  # a digit always starts a number
    end = match.end()
    if end < len(text) and (text[end].isalnum() or text[end] in "._"):
        raise FilterError("malformed number", at)
    raw = match.group()
    if match.group(2):
        number = float(raw)
        if not math.isfinite(number):
            raise FilterError("number is too large", at)
        return Token("literal", raw, at, number, "double")
    if match.group(1):
        return Token("literal", raw, at, Decimal(raw), "decimal")
    if len(raw.lstrip("0")) > _INT64_DIGITS:
        # Checked before int() so that absurdly long digit strings cost nothing.
        raise FilterError("integer is outside the 64-bit range", at)
    return Token("literal", raw, at, int(raw), "integer")


def _fraction(digits: str | None) -> int:
    # Postgres keeps microseconds, so further digits would be lost anyway.
    return int((digits or "0")[:6].ljust(6, "0"))


def _datetime(match: re.Match[str], at: int) -> dt.datetime:
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if zone is None:
        raise FilterError("a datetime needs a time zone: Z or an offset like +01:00", at)
    if zone == "Z":
        tz = dt.UTC
    else:
        sign = -1 if zone[0] == "-" else 1
        offset = dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        if offset >= dt.timedelta(hours=24):
            raise FilterError("time zone offset is out of range", at)
        tz = dt.timezone(sign * offset)
    try:
        return dt.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or 0),
            _fraction(fraction), tzinfo=tz,
        )
    except ValueError as error:
        raise FilterError(f"invalid datetime: {error}", at) from None


def _date(match: re.Match[str], at: int) -> dt.date:
    year, month, day = match.groups()
    try:
        return dt.date(int(year), int(month), int(day))
    except ValueError as error:
        raise FilterError(f"invalid date: {error}", at) from None


def _time(match: re.Match[str], at: int) -> dt.time:
    hour, minute, second, fraction = match.groups()
    try:
        return dt.time(int(hour), int(minute), int(second or 0), _fraction(fraction))
    except ValueError as error:
        raise FilterError(f"invalid time: {error}", at) from None


def _read_typed_literal(text: str, at: int, prefix: str) -> Token:
    kind = prefix.lower()
    if kind not in _TYPED_LITERALS:
        raise FilterError(f"unknown literal type '{prefix}'", at)
    quote = at + len(prefix)
    content, raw = read_quoted(text, quote)
    whole = prefix + raw
    if kind == "duration":
        return Token("literal", whole, at, _duration(content, quote + 1), "duration")
    wkt = normalise_wkt(content, quote + 1)
    return Token("literal", whole, at, wkt, "geometry" if kind == "geometry" else "geography")


def _duration(content: str, at: int) -> dt.timedelta:
    match = _DURATION.fullmatch(content)
    if match is None or not any(match.groups()[1:]):
        raise FilterError("invalid duration; expected e.g. P1D or PT1H30M", at)
    sign, days, hours, minutes, seconds = match.groups()
    try:
        value = dt.timedelta(
            days=int(days or 0), hours=int(hours or 0), minutes=int(minutes or 0),
            seconds=float(seconds or 0),
        )
    except (OverflowError, ValueError):
        raise FilterError("duration is too large", at) from None
    return -value if sign else value
