"""Reading the WKT inside geometry and geography literals.

Only POINT, LINESTRING and POLYGON are accepted, with 2 or 3 coordinates per position and
an optional ``SRID=4326;`` prefix. The text is rebuilt from the numbers read, so what
reaches PostGIS is always in one plain form.
"""

import math
import re

from api.odata.errors import FilterError

_SRID = re.compile(r"\s*SRID\s*=\s*(\d+)\s*;", re.IGNORECASE)
_TYPE = re.compile(r"\s*([A-Za-z]+)\s*", re.ASCII)
_NUMBER = re.compile(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*", re.ASCII)


class _Reader:
    def __init__(self, text: str, at: int, base: int) -> None:
        self.text = text
        self.at = at
        self.base = base

    def fail(self, message: str, at: int | None = None) -> FilterError:
        return FilterError(message, self.base + (self.at if at is None else at))

    def expect(self, char: str) -> None:
        while self.at < len(self.text) and self.text[self.at].isspace():
            self.at += 1
        if not self.text.startswith(char, self.at):
            raise self.fail(f"expected '{char}' in WKT")
        self.at += 1

    def peek(self, char: str) -> bool:
        rest = self.text[self.at :].lstrip()
        return rest.startswith(char)

    def position(self) -> str:
        start = self.at
        numbers = []
        while (match := _NUMBER.match(self.text, self.at)) is not None:
            value = float(match.group(1))
            if not math.isfinite(value):
                raise self.fail("coordinate is not a finite number")
            numbers.append(match.group(1))
            self.at = match.end()
        if len(numbers) not in (2, 3):
            raise self.fail("a position needs 2 or 3 coordinates", start)
        return " ".join(numbers)

    def positions(self) -> list[str]:
        self.expect("(")
        found = [self.position()]
        while self.peek(","):
            self.expect(",")
            found.append(self.position())
        self.expect(")")
        return found


def normalise_wkt(text: str, base: int) -> str:
    """Check WKT for a POINT, LINESTRING or POLYGON in SRID 4326 and return it in plain form.

    Args:
        text: the WKT written between the quotes of the literal.
        base: where ``text`` starts in the whole expression, for error positions.

    Returns:
        The same shape as WKT without an SRID prefix, e.g. ``POINT(18.05 59.33)``.

    Raises:
        FilterError: the text is not such a shape.
    """
    reader = _Reader(text, 0, base)
    if (srid := _SRID.match(text)) is not None:
        if srid.group(1) != "4326":
            raise reader.fail("only SRID 4326 is supported", srid.start(1))
        reader.at = srid.end()
    kind = _TYPE.match(text, reader.at)
    if kind is None:
        raise reader.fail("expected a geometry type")
    name = kind.group(1).upper()
    reader.at = kind.end()
    if name == "POINT":
        body = _point(reader)
    elif name == "LINESTRING":
        body = _linestring(reader)
    elif name == "POLYGON":
        body = _polygon(reader)
    else:
        raise reader.fail(f"unsupported geometry type '{kind.group(1)}'", kind.start(1))
    if text[reader.at :].strip():
        raise reader.fail("unexpected text after the geometry")
    return name + body


def _point(reader: _Reader) -> str:
    reader.expect("(")
    position = reader.position()
    reader.expect(")")
    return f"({position})"


def _linestring(reader: _Reader) -> str:
    start = reader.at
    positions = reader.positions()
    if len(positions) < 2:
        raise reader.fail("a LINESTRING needs at least 2 positions", start)
    return "(" + ", ".join(positions) + ")"


def _polygon(reader: _Reader) -> str:
    reader.expect("(")
    rings = [_ring(reader)]
    while reader.peek(","):
        reader.expect(",")
        rings.append(_ring(reader))
    reader.expect(")")
    return "(" + ", ".join(rings) + ")"


def _ring(reader: _Reader) -> str:
    start = reader.at
    positions = reader.positions()
    if len(positions) < 4:
        raise reader.fail("a POLYGON ring needs at least 4 positions", start)
    if [float(n) for n in positions[0].split()] != [float(n) for n in positions[-1].split()]:
        raise reader.fail("a POLYGON ring must end where it starts", start)
    return "(" + ", ".join(positions) + ")"
