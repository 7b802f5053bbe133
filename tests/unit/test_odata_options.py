"""$orderby parsing and compiling, and $expand / $select splitting."""

import pytest

from api.odata import (
    Expansion,
    FilterError,
    ODataError,
    QueryOptionError,
    compile_orderby,
    parse_expand,
    parse_orderby,
    parse_select,
    split_top_level,
)
from api.odata.nodes import Call, Path
from tests.unit.odata_fakes import FakeResolver


def test_orderby_reads_directions_defaulting_to_ascending() -> None:
    items = parse_orderby("phenomenonTime desc, result,Thing/name asc")
    assert [(item.expression, item.descending, item.position) for item in items] == [
        (Path(("phenomenonTime",), 0), True, 0),
        (Path(("result",), 21), False, 21),
        (Path(("Thing", "name"), 28), False, 28),
    ]


def test_orderby_accepts_expressions() -> None:
    (item,) = parse_orderby("year(phenomenonTime) desc")
    assert isinstance(item.expression, Call)
    assert item.descending


def test_orderby_compiles_to_an_order_by_body_with_parameters() -> None:
    items = parse_orderby("phenomenonTime desc, properties/rank, result")
    assert compile_orderby(items, FakeResolver(), start=3) == (
        "o.phenomenon_time DESC, ((t.properties) #> $3::text[]) ASC NULLS FIRST, "
        "o.result_number ASC NULLS FIRST",
        [["rank"]],
    )


@pytest.mark.parametrize(("text", "sql"), [
    # The standard: nulls before values ascending, after them descending.
    ("result", "o.result_number ASC NULLS FIRST"),
    ("result desc", "o.result_number DESC NULLS LAST"),
    # A key that is never null keeps the plain direction an index serves.
    ("id desc", "o.id DESC"),
    ("length(name) desc", "char_length(t.name) DESC NULLS LAST"),
    ("true", "TRUE::boolean ASC NULLS FIRST"),
])
def test_orderby_places_nulls_as_the_standard_says(text: str, sql: str) -> None:
    assert compile_orderby(parse_orderby(text), FakeResolver()).sql == sql


def test_orderby_refuses_a_property_of_a_collection() -> None:
    with pytest.raises(FilterError, match="a condition on its members") as caught:
        compile_orderby(parse_orderby("id, length(Datastreams/name)"), FakeResolver())
    assert caught.value.position == 11


@pytest.mark.parametrize(("text", "position", "fragment"), [
    ("", 0, "empty $orderby"),
    ("result desc desc", 12, "unexpected 'desc'"),
    ("result,", 7, "found the end"),
    ("result sideways", 7, "unexpected 'sideways'"),
])
def test_orderby_syntax_errors_have_positions(text: str, position: int, fragment: str) -> None:
    with pytest.raises(FilterError) as caught:
        parse_orderby(text)
    assert fragment in caught.value.message
    assert caught.value.position == position


def test_orderby_refuses_geometries() -> None:
    with pytest.raises(FilterError, match="cannot order by geometry"):
        compile_orderby(parse_orderby("result, location"), FakeResolver())


def test_expand_splits_into_a_tree_of_navigations_and_options() -> None:
    tree = parse_expand(
        "Datastreams($select=name;$expand=Observations($top=1;$orderby=phenomenonTime desc)),"
        "Locations"
    )
    assert tree == (
        Expansion(
            ("Datastreams",),
            {"$select": "name"},
            (Expansion(
                ("Observations",), {"$top": "1", "$orderby": "phenomenonTime desc"}, (), 33
            ),),
            0,
        ),
        Expansion(("Locations",), {}, (), 84),
    )


def test_separators_inside_quotes_do_not_split() -> None:
    (datastreams, thing) = parse_expand(
        "Datastreams($filter=name eq 'a;b),(c' and x eq 'it''s'), Thing/Locations"
    )
    assert datastreams.options == {"$filter": "name eq 'a;b),(c' and x eq 'it''s'"}
    assert thing.path == ("Thing", "Locations")
    assert thing.position == 57


def test_select_splits_into_paths() -> None:
    assert parse_select("id, name,properties/owner, @iot.id") == (
        ("id",), ("name",), ("properties", "owner"), ("@iot.id",),
    )


def test_split_top_level_reports_piece_positions() -> None:
    assert split_top_level(" a(b,c) , d", ",") == [("a(b,c)", 1), ("d", 10)]


@pytest.mark.parametrize(("text", "position", "fragment"), [
    ("Datastreams($top=1", 11, "'(' is never closed"),
    ("Datastreams)", 11, "')' without a matching '('"),
    ("Datastreams($filter=name eq 'x)", 28, "unterminated string"),
    ("", 0, "empty item in $expand"),
    ("a,,b", 2, "empty item in $expand"),
    ("Datastreams()", 12, "empty item in expand options"),
    ("Datastreams($top=1)x", 19, "unexpected text after ')'"),
    ("Datastreams($top)", 16, "expected '=' after $top"),
    ("Datastreams($bottom=1)", 12, "unknown query option '$bottom'"),
    ("Datastreams($top=1;$top=2)", 19, "$top is given twice"),
    ("Datastreams($top=-1)", 17, "non-negative integer"),
    ("Datastreams($count=maybe)", 19, "true or false"),
    ("Datastreams($select=)", 20, "$select has no value"),
    ("Data streams", 0, "is not a property name"),
    ("Thing/9x", 6, "'9x' is not a property name"),
    ("Locations,Locations", 10, "expanded twice"),
    ("D($expand=Obs($top=1;$top=2))", 21, "$top is given twice"),
])
def test_expand_errors_have_positions(text: str, position: int, fragment: str) -> None:
    with pytest.raises(QueryOptionError) as caught:
        parse_expand(text)
    assert fragment in caught.value.message
    assert caught.value.position == position
    assert isinstance(caught.value, ODataError)


@pytest.mark.parametrize(("text", "position"), [("id,,name", 3), ("id,na me", 3), ("", 0)])
def test_select_errors_have_positions(text: str, position: int) -> None:
    with pytest.raises(QueryOptionError) as caught:
        parse_select(text)
    assert caught.value.position == position


@pytest.mark.parametrize(("text", "descending"), [
    ("phenomenonTime ASC", False), ("phenomenonTime DESC", True),
    ("phenomenonTime Desc", True), ("phenomenonTime aSc", False),
])
def test_orderby_reads_directions_in_any_case(text: str, descending: bool) -> None:
    (item,) = parse_orderby(text)
    assert item.expression == Path(("phenomenonTime",), 0)
    assert item.descending is descending


def test_orderby_takes_iot_id_and_indexed_json_paths() -> None:
    items = parse_orderby("@iot.id DESC, properties/arr[1] asc, Datastream/Thing/@iot.id")
    assert compile_orderby(items, FakeResolver()) == (
        "o.id DESC, ((t.properties) #> $1::text[]) ASC NULLS FIRST, th.id ASC NULLS FIRST",
        [["arr", "1"]],
    )


@pytest.mark.parametrize(("text", "position", "fragment"), [
    ("result DESC DESC", 12, "unexpected 'DESC'"),
    ("properties/arr[x]", 15, "whole number from 0"),
    ("properties/arr[1 desc", 17, "expected ']' after the array index"),
])
def test_orderby_errors_in_the_new_forms_have_positions(
    text: str, position: int, fragment: str
) -> None:
    with pytest.raises(FilterError) as caught:
        parse_orderby(text)
    assert fragment in caught.value.message
    assert caught.value.position == position
