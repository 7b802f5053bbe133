"""The built-in functions of the SensorThings v1.1 filter grammar and how many arguments each takes.

The parser checks names and argument counts against this table; the compiler translates
each name to SQL (see ``sqlfunctions``).
"""

from typing import Final

ARITY: Final[dict[str, tuple[int, int]]] = {
    # string functions
    "substringof": (2, 2),
    "endswith": (2, 2),
    "startswith": (2, 2),
    "contains": (2, 2),
    "length": (1, 1),
    "indexof": (2, 2),
    "substring": (2, 3),
    "tolower": (1, 1),
    "toupper": (1, 1),
    "trim": (1, 1),
    "concat": (2, 2),
    # date and time functions
    "year": (1, 1),
    "month": (1, 1),
    "day": (1, 1),
    "hour": (1, 1),
    "minute": (1, 1),
    "second": (1, 1),
    "fractionalseconds": (1, 1),
    "date": (1, 1),
    "time": (1, 1),
    "totaloffsetminutes": (1, 1),
    "now": (0, 0),
    "mindatetime": (0, 0),
    "maxdatetime": (0, 0),
    # math functions
    "round": (1, 1),
    "floor": (1, 1),
    "ceiling": (1, 1),
    # geospatial functions
    "geo.distance": (2, 2),
    "geo.length": (1, 1),
    "geo.intersects": (2, 2),
    "st_equals": (2, 2),
    "st_disjoint": (2, 2),
    "st_touches": (2, 2),
    "st_within": (2, 2),
    "st_overlaps": (2, 2),
    "st_crosses": (2, 2),
    "st_intersects": (2, 2),
    "st_contains": (2, 2),
    "st_relate": (3, 3),
}


def describe_arity(name: str) -> str:
    """Say in words how many arguments a function takes.

    Args:
        name: a key of ``ARITY``.

    Returns:
        A phrase such as "2 arguments" or "2 or 3 arguments".
    """
    low, high = ARITY[name]
    if low == high:
        return "no arguments" if low == 0 else f"{low} argument{'s' if low > 1 else ''}"
    return f"{low} or {high} arguments"
