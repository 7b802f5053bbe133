"""The SQL for each built-in filter function.

Each translation takes the compiled arguments and the position of the call, checks the
argument types, and returns the typed SQL. OData counts string positions from 0, SQL from 1;
times are read in UTC because timestamptz keeps no offset of its own.
"""

from __future__ import annotations

from collections.abc import Callable

from api.odata.sqltypes import (
    Sql,
    SqlType,
    as_integer,
    as_number,
    as_one_of,
    as_text,
)

Translation = Callable[[list[Sql], int], Sql]

_DATETIME_OR_DATE: frozenset[SqlType] = frozenset({"datetime", "date"})
_DATETIME_OR_TIME: frozenset[SqlType] = frozenset({"datetime", "time"})
_DATETIME: frozenset[SqlType] = frozenset({"datetime"})
_GEOMETRY: frozenset[SqlType] = frozenset({"geometry"})
_POSTGIS_PREDICATES = {
    "geo.intersects": "ST_Intersects",
    "st_equals": "ST_Equals",
    "st_disjoint": "ST_Disjoint",
    "st_touches": "ST_Touches",
    "st_within": "ST_Within",
    "st_overlaps": "ST_Overlaps",
    "st_crosses": "ST_Crosses",
    "st_intersects": "ST_Intersects",
    "st_contains": "ST_Contains",
}


def _texts(name: str, args: list[Sql]) -> list[str]:
    return [as_text(arg, f"{name}()").text for arg in args]


def _contains(args: list[Sql], at: int) -> Sql:
    haystack, needle = _texts("contains", args)
    return Sql(f"(strpos({haystack}, {needle}) > 0)", "boolean", at)


def _substringof(args: list[Sql], at: int) -> Sql:
    needle, haystack = _texts("substringof", args)
    return Sql(f"(strpos({haystack}, {needle}) > 0)", "boolean", at)


def _startswith(args: list[Sql], at: int) -> Sql:
    text, prefix = _texts("startswith", args)
    return Sql(f"starts_with({text}, {prefix})", "boolean", at)


def _endswith(args: list[Sql], at: int) -> Sql:
    text, suffix = _texts("endswith", args)
    return Sql(f"(right({text}, char_length({suffix})) = {suffix})", "boolean", at)


def _length(args: list[Sql], at: int) -> Sql:
    (text,) = _texts("length", args)
    return Sql(f"char_length({text})", "integer", at)


def _indexof(args: list[Sql], at: int) -> Sql:
    text, needle = _texts("indexof", args)
    return Sql(f"(strpos({text}, {needle}) - 1)", "integer", at)


def _substring(args: list[Sql], at: int) -> Sql:
    text = as_text(args[0], "substring()").text
    start = as_integer(args[1], "substring()").text
    # substr takes int positions; a value past its range fails in the database (a 400).
    if len(args) == 2:
        return Sql(f"substr({text}, (({start}) + 1)::int)", "string", at)
    count = as_integer(args[2], "substring()").text
    return Sql(f"substr({text}, (({start}) + 1)::int, ({count})::int)", "string", at)


def _string_function(name: str, sql_name: str) -> Translation:
    def translate(args: list[Sql], at: int) -> Sql:
        return Sql(f"{sql_name}({', '.join(_texts(name, args))})", "string", at)

    return translate


def _concat(args: list[Sql], at: int) -> Sql:
    left, right = _texts("concat", args)
    return Sql(f"({left} || {right})", "string", at)


def _utc(arg: Sql) -> str:
    return f"({arg.text}) AT TIME ZONE 'UTC'" if arg.type == "datetime" else f"({arg.text})"


def _part(name: str, field: str, kinds: frozenset[SqlType]) -> Translation:
    def translate(args: list[Sql], at: int) -> Sql:
        arg = as_one_of(args[0], kinds, f"{name}()")
        return Sql(f"CAST(extract({field} from {_utc(arg)}) AS integer)", "integer", at)

    return translate


def _second(args: list[Sql], at: int) -> Sql:
    arg = as_one_of(args[0], _DATETIME_OR_TIME, "second()")
    return Sql(f"CAST(floor(extract(second from {_utc(arg)})) AS integer)", "integer", at)


def _fractionalseconds(args: list[Sql], at: int) -> Sql:
    arg = as_one_of(args[0], _DATETIME_OR_TIME, "fractionalseconds()")
    seconds = f"extract(second from {_utc(arg)})"
    return Sql(f"({seconds} - floor({seconds}))", "number", at)


def _date(args: list[Sql], at: int) -> Sql:
    arg = as_one_of(args[0], _DATETIME, "date()")
    return Sql(f"CAST({_utc(arg)} AS date)", "date", at)


def _time(args: list[Sql], at: int) -> Sql:
    arg = as_one_of(args[0], _DATETIME, "time()")
    return Sql(f"CAST({_utc(arg)} AS time)", "time", at)


def _totaloffsetminutes(args: list[Sql], at: int) -> Sql:
    # timestamptz stores instants in UTC and forgets the writer's offset, so it is always 0.
    arg = as_one_of(args[0], _DATETIME, "totaloffsetminutes()")
    return Sql(f"(CASE WHEN ({arg.text}) IS NULL THEN NULL ELSE 0 END)", "integer", at)


def _constant(text: str, kind: SqlType) -> Translation:
    def translate(args: list[Sql], at: int) -> Sql:
        return Sql(text, kind, at)

    return translate


def _rounding(name: str, sql_name: str) -> Translation:
    def translate(args: list[Sql], at: int) -> Sql:
        arg = as_number(args[0], f"{name}()")
        kind: SqlType = "integer" if arg.type == "integer" else "number"
        return Sql(f"{sql_name}({arg.text})", kind, at)

    return translate


def _geometries(name: str, args: list[Sql]) -> list[str]:
    return [as_one_of(arg, _GEOMETRY, f"{name}()").text for arg in args]


def _predicate(name: str, sql_name: str) -> Translation:
    def translate(args: list[Sql], at: int) -> Sql:
        return Sql(f"{sql_name}({', '.join(_geometries(name, args))})", "boolean", at)

    return translate


def _distance(args: list[Sql], at: int) -> Sql:
    left, right = _geometries("geo.distance", args)
    return Sql(f"ST_Distance({left}, {right})", "number", at)


def _geo_length(args: list[Sql], at: int) -> Sql:
    (line,) = _geometries("geo.length", args)
    return Sql(f"ST_Length({line})", "number", at)


def _relate(args: list[Sql], at: int) -> Sql:
    left, right = _geometries("st_relate", args[:2])
    pattern = as_text(args[2], "st_relate()").text
    # PostGIS fails the whole query on a malformed matrix; a bad pattern matches nothing.
    return Sql(f"(CASE WHEN {pattern} ~ '^[TF012*]{{9}}$' "
               f"THEN ST_Relate({left}, {right}, {pattern}) END)", "boolean", at)


TRANSLATIONS: dict[str, Translation] = {
    "substringof": _substringof,
    "endswith": _endswith,
    "startswith": _startswith,
    "contains": _contains,
    "length": _length,
    "indexof": _indexof,
    "substring": _substring,
    "tolower": _string_function("tolower", "lower"),
    "toupper": _string_function("toupper", "upper"),
    "trim": _string_function("trim", "btrim"),
    "concat": _concat,
    "year": _part("year", "year", _DATETIME_OR_DATE),
    "month": _part("month", "month", _DATETIME_OR_DATE),
    "day": _part("day", "day", _DATETIME_OR_DATE),
    "hour": _part("hour", "hour", _DATETIME_OR_TIME),
    "minute": _part("minute", "minute", _DATETIME_OR_TIME),
    "second": _second,
    "fractionalseconds": _fractionalseconds,
    "date": _date,
    "time": _time,
    "totaloffsetminutes": _totaloffsetminutes,
    "now": _constant("now()", "datetime"),
    "mindatetime": _constant("'0001-01-01T00:00:00Z'::timestamptz", "datetime"),
    "maxdatetime": _constant("'9999-12-31T23:59:59.999999Z'::timestamptz", "datetime"),
    "round": _rounding("round", "round"),
    "floor": _rounding("floor", "floor"),
    "ceiling": _rounding("ceiling", "ceiling"),
    "geo.distance": _distance,
    "geo.length": _geo_length,
    **{name: _predicate(name, sql) for name, sql in _POSTGIS_PREDICATES.items()},
    "st_relate": _relate,
}
