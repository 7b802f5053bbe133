"""Literal decoding and lexical errors of the OData expression tokenizer."""

import datetime as dt
from decimal import Decimal

import pytest

from api.odata.errors import FilterError, ODataError
from api.odata.lexer import tokenize
from api.odata.nodes import LiteralKind, LiteralValue


def only_literal(text: str) -> tuple[LiteralValue, LiteralKind | None]:
    first, end = tokenize(text)
    assert end.kind == "end"
    return first.value, first.literal_kind


@pytest.mark.parametrize(("text", "value", "kind"), [
    ("42", 42, "integer"),
    ("9223372036854775807", 2**63 - 1, "integer"),
    ("3.25", Decimal("3.25"), "decimal"),
    ("1.5e3", 1500.0, "double"),
    ("2E-2", 0.02, "double"),
    ("'it''s'", "it's", "string"),
    ("''", "", "string"),
    ("'Göteborg ä'", "Göteborg ä", "string"),
    ("2026-10-01T08:00:00Z", dt.datetime(2026, 10, 1, 8, tzinfo=dt.UTC), "datetime"),
    ("2026-10-01T08:00:00.1234567+01:00",
     dt.datetime(2026, 10, 1, 8, 0, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=1))),
     "datetime"),
    ("2026-10-01T08:00-05:30",
     dt.datetime(2026, 10, 1, 8, tzinfo=dt.timezone(-dt.timedelta(hours=5, minutes=30))),
     "datetime"),
    ("2026-10-01", dt.date(2026, 10, 1), "date"),
    ("08:30:15", dt.time(8, 30, 15), "time"),
    ("duration'P1D'", dt.timedelta(days=1), "duration"),
    ("duration'PT1H30M'", dt.timedelta(hours=1, minutes=30), "duration"),
    ("duration'-P2DT0.5S'", -dt.timedelta(days=2, seconds=0.5), "duration"),
    ("geography'POINT(18.05 59.33)'", "POINT(18.05 59.33)", "geography"),
    ("geometry'SRID=4326;LINESTRING( 1 2 ,3 4)'", "LINESTRING(1 2, 3 4)", "geometry"),
    ("geometry'polygon((0 0, 1 0, 1 1, 0 0), (0.1 0.1, 0.2 0.1, 0.2 0.2, 0.1 0.1))'",
     "POLYGON((0 0, 1 0, 1 1, 0 0), (0.1 0.1, 0.2 0.1, 0.2 0.2, 0.1 0.1))", "geometry"),
])
def test_literal_is_decoded_to_its_python_value(
    text: str, value: LiteralValue, kind: LiteralKind
) -> None:
    assert only_literal(text) == (value, kind)


def test_datetime_literal_is_timezone_aware() -> None:
    value, _ = only_literal("2026-10-01T08:00:00+01:00")
    assert isinstance(value, dt.datetime)
    assert value.utcoffset() == dt.timedelta(hours=1)


def test_names_keep_slashes_dots_and_at_signs_as_separate_or_inner_parts() -> None:
    tokens = tokenize("Datastream/Thing/@iot.id geo.distance")
    assert [(t.kind, t.text) for t in tokens] == [
        ("name", "Datastream"), ("/", "/"), ("name", "Thing"), ("/", "/"),
        ("name", "@iot.id"), ("name", "geo.distance"), ("end", ""),
    ]


def test_brackets_of_an_array_index_are_tokens_of_their_own() -> None:
    tokens = tokenize("properties/arr[12]")
    assert [(t.kind, t.text, t.position) for t in tokens] == [
        ("name", "properties", 0), ("/", "/", 10), ("name", "arr", 11), ("[", "[", 14),
        ("literal", "12", 15), ("]", "]", 17), ("end", "", 18),
    ]


def test_token_positions_are_zero_based_character_offsets() -> None:
    assert [t.position for t in tokenize("  a eq 'x'")] == [2, 4, 7, 10]


@pytest.mark.parametrize(("text", "position", "fragment"), [
    ("name eq 'abc", 8, "unterminated string"),
    ("name eq 'it''s", 8, "unterminated string"),
    ("a eq #", 5, "unexpected character '#'"),
    ("a eq 12ab", 5, "malformed number"),
    ("a eq 99999999999999999999", 5, "64-bit"),
    ("a eq 2026-13-01", 5, "invalid date"),
    ("a eq 2026-10-01T25:00:00Z", 5, "invalid datetime"),
    ("a eq 2026-10-01T08:00:00", 5, "time zone"),
    ("a eq 1e999", 5, "too large"),
    ("d eq duration'P'", 14, "invalid duration"),
    ("d eq duration'PT'", 14, "invalid duration"),
    ("d eq interval'P1D'", 5, "unknown literal type 'interval'"),
    ("g eq geometry'CIRCLE(1 2)'", 14, "unsupported geometry type"),
    ("g eq geometry'POINT(1)'", 20, "2 or 3 coordinates"),
    ("g eq geometry'POINT(1 2'", 23, "expected ')'"),
    ("g eq geometry'LINESTRING(1 2)'", 24, "at least 2 positions"),
    ("g eq geometry'POLYGON((0 0, 1 0, 1 1, 0 1))'", 22, "end where it starts"),
    ("g eq geometry'SRID=3006;POINT(1 2)'", 19, "SRID 4326"),
    ("g eq geometry'POINT(1 2) x'", 24, "after the geometry"),
])
def test_lexical_error_names_the_problem_and_its_position(
    text: str, position: int, fragment: str
) -> None:
    with pytest.raises(FilterError) as caught:
        tokenize(text)
    assert fragment in caught.value.message
    assert caught.value.position == position


def test_filter_error_is_an_odata_error_and_says_where() -> None:
    error = FilterError("unknown function 'x'", 7)
    assert isinstance(error, ODataError)
    assert str(error) == "unknown function 'x' (at position 7)"
