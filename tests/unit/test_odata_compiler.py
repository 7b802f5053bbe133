"""SQL shapes, parameters and type errors of the $filter compiler."""

import datetime as dt
from decimal import Decimal

import pytest

from api.odata import Column, FilterError, compile_filter, parse_filter
from api.odata.functions import ARITY
from api.odata.sqlfunctions import TRANSLATIONS
from tests.unit.odata_fakes import FakeResolver


def sql_of(text: str, start: int = 1) -> tuple[str, list[object]]:
    sql, params = compile_filter(parse_filter(text), FakeResolver(), start)
    return sql, params


def compile_error(text: str) -> FilterError:
    with pytest.raises(FilterError) as caught:
        sql_of(text)
    return caught.value


@pytest.mark.parametrize(("op", "sql_op"), [
    ("eq", "="), ("ne", "IS DISTINCT FROM"), ("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="),
])
def test_each_comparison_maps_to_its_sql_operator(op: str, sql_op: str) -> None:
    assert sql_of(f"result {op} 5") == (f"(o.result_number {sql_op} $1::bigint)", [5])


@pytest.mark.parametrize(("text", "sql", "params"), [
    ("id add 2 eq 3", "((o.id + $1::bigint) = $2::bigint)", [2, 3]),
    ("id sub 2 eq 3", "((o.id - $1::bigint) = $2::bigint)", [2, 3]),
    ("result mul 2.5 gt 3", "((o.result_number * $1::numeric) > $2::bigint)", [Decimal("2.5"), 3]),
    ("id div 2 eq 1.5",
     "(((o.id)::float8 / NULLIF($1::bigint, 0)) = $2::numeric)", [2, Decimal("1.5")]),
    ("id mod 2 eq 1", "((o.id % NULLIF($1::bigint, 0)) = $2::bigint)", [2, 1]),
    ("result mod 2 eq 1",
     "(mod((o.result_number)::numeric, NULLIF(($1::bigint)::numeric, 0)) = $2::bigint)", [2, 1]),
    ("-result lt 1e2", "((-o.result_number) < $1::float8)", [100.0]),
])
def test_arithmetic_compiles_with_parameters(text: str, sql: str, params: list[object]) -> None:
    assert sql_of(text) == (sql, params)


def test_logical_operators_keep_precedence_in_parentheses() -> None:
    sql, params = sql_of("id eq 1 or id eq 2 and not active")
    assert sql == "((o.id = $1::bigint) OR ((o.id = $2::bigint) AND (t.active IS NOT TRUE)))"
    assert params == [1, 2]


def test_placeholders_start_after_those_the_caller_already_has() -> None:
    assert sql_of("name eq 'a' and id gt 3", start=4) == (
        "((t.name = $4::text) AND (o.id > $5::bigint))", ["a", 3]
    )


@pytest.mark.parametrize(("text", "sql"), [
    ("name eq null", "(t.name IS NULL)"),
    ("null ne name", "(t.name IS NOT NULL)"),
    ("properties/owner eq null", "((t.properties) #>> $1::text[]) IS NULL)"),
])
def test_comparison_with_null_becomes_is_null(text: str, sql: str) -> None:
    assert sql_of(text)[0].endswith(sql)


def test_datetime_literal_travels_as_an_aware_datetime_parameter() -> None:
    sql, params = sql_of("phenomenonTime ge 2026-10-01T08:00:00+01:00")
    assert sql == "(o.phenomenon_time >= $1::timestamptz)"
    assert params == [dt.datetime(2026, 10, 1, 7, tzinfo=dt.UTC)]
    assert isinstance(params[0], dt.datetime)
    assert params[0].tzinfo is not None


def test_datetime_arithmetic_with_durations() -> None:
    assert sql_of("phenomenonTime gt now() sub duration'PT1H'") == (
        "(o.phenomenon_time > (now() - $1::interval))", [dt.timedelta(hours=1)]
    )


def test_path_across_relations_uses_the_resolved_column() -> None:
    assert sql_of("Datastream/Thing/name eq 'Lund'") == ("(th.name = $1::text)", ["Lund"])


def test_composite_column_expression_is_parenthesised() -> None:
    assert sql_of("total gt 1")[0] == "((o.a + o.b) > $1::bigint)"


def test_json_path_reads_text_with_the_keys_as_an_array_parameter() -> None:
    assert sql_of("properties/owner/name eq 'Kim'") == (
        "(((t.properties) #>> $1::text[]) = $2::text)", [["owner", "name"], "Kim"]
    )


def test_json_path_under_a_relation_is_found_by_its_json_prefix() -> None:
    resolver = FakeResolver()
    sql, params = compile_filter(parse_filter("Datastream/properties/unit eq 'C'"), resolver)
    assert sql == "(((ds.properties) #>> $1::text[]) = $2::text)"
    assert params == [["unit"], "C"]
    assert resolver.asked[0] == ("Datastream", "properties", "unit")


def test_json_compared_with_a_number_is_cast_only_when_it_holds_a_number() -> None:
    sql, params = sql_of("properties/floor gt 2")
    assert sql == (
        "((CASE WHEN jsonb_typeof(((t.properties) #> $1::text[])) = 'number' "
        "THEN (((t.properties) #> $1::text[]))::numeric END) > $2::bigint)"
    )
    assert params == [["floor"], 2]


def test_json_value_alone_is_a_filter_when_it_holds_a_boolean() -> None:
    sql, _ = sql_of("properties/public")
    assert "jsonb_typeof(((t.properties) #> $1::text[])) = 'boolean'" in sql
    assert sql.endswith("::boolean END)")


@pytest.mark.parametrize(("text", "sql", "params"), [
    ("substringof('ab', name)", "(strpos(t.name, $1::text) > 0)", ["ab"]),
    ("contains(name, 'ab')", "(strpos(t.name, $1::text) > 0)", ["ab"]),
    ("startswith(name, 'ab')", "starts_with(t.name, $1::text)", ["ab"]),
    ("endswith(name, 'ab')", "(right(t.name, char_length($1::text)) = $1::text)", ["ab"]),
    ("length(name) eq 3", "(char_length(t.name) = $1::bigint)", [3]),
    ("indexof(name, 'b') eq 1", "((strpos(t.name, $1::text) - 1) = $2::bigint)", ["b", 1]),
    ("substring(name, 1) eq 'b'", "(substr(t.name, (($1::bigint) + 1)::int) = $2::text)",
     [1, "b"]),
    ("substring(name, 1, 2) eq 'bc'",
     "(substr(t.name, (($1::bigint) + 1)::int, ($2::bigint)::int) = $3::text)", [1, 2, "bc"]),
    ("tolower(name) eq 'a'", "(lower(t.name) = $1::text)", ["a"]),
    ("toupper(name) eq 'A'", "(upper(t.name) = $1::text)", ["A"]),
    ("trim(name) eq 'a'", "(btrim(t.name) = $1::text)", ["a"]),
    ("concat(name, description) eq 'ab'", "((t.name || t.description) = $1::text)", ["ab"]),
])
def test_string_functions_compile_to_postgres(text: str, sql: str, params: list[object]) -> None:
    assert sql_of(text) == (sql, params)


@pytest.mark.parametrize(("function", "field"), [
    ("year", "year"), ("month", "month"), ("day", "day"), ("hour", "hour"), ("minute", "minute"),
])
def test_date_parts_are_extracted_in_utc(function: str, field: str) -> None:
    sql, _ = sql_of(f"{function}(phenomenonTime) eq 1")
    assert sql == (
        f"(CAST(extract({field} from (o.phenomenon_time) AT TIME ZONE 'UTC') AS integer)"
        " = $1::bigint)"
    )


@pytest.mark.parametrize(("text", "fragment"), [
    ("second(phenomenonTime) eq 1", "CAST(floor(extract(second from (o.phenomenon_time) AT TIME"),
    ("fractionalseconds(phenomenonTime) lt 0.5", "- floor(extract(second from"),
    ("date(phenomenonTime) eq 2026-10-01", "(CAST((o.phenomenon_time) AT TIME ZONE 'UTC' AS date)"),
    ("time(phenomenonTime) lt 08:00:00", "(CAST((o.phenomenon_time) AT TIME ZONE 'UTC' AS time)"),
    ("totaloffsetminutes(phenomenonTime) eq 0", "ELSE 0 END"),
    ("phenomenonTime lt now()", "< now())"),
    ("phenomenonTime gt mindatetime()", "'0001-01-01T00:00:00Z'::timestamptz"),
    ("phenomenonTime lt maxdatetime()", "'9999-12-31T23:59:59.999999Z'::timestamptz"),
    ("round(result) eq 2", "(round(o.result_number) ="),
    ("floor(result) eq 2", "(floor(o.result_number) ="),
    ("ceiling(result) eq 2", "(ceiling(o.result_number) ="),
])
def test_date_and_math_functions_compile_to_postgres(text: str, fragment: str) -> None:
    assert fragment in sql_of(text)[0]


@pytest.mark.parametrize(("function", "postgis"), [
    ("geo.intersects", "ST_Intersects"), ("st_equals", "ST_Equals"),
    ("st_disjoint", "ST_Disjoint"), ("st_touches", "ST_Touches"), ("st_within", "ST_Within"),
    ("st_overlaps", "ST_Overlaps"), ("st_crosses", "ST_Crosses"),
    ("st_intersects", "ST_Intersects"), ("st_contains", "ST_Contains"),
])
def test_spatial_predicates_compile_to_postgis(function: str, postgis: str) -> None:
    sql, params = sql_of(f"{function}(location, geography'POINT(18.05 59.33)')")
    assert sql == f"{postgis}(l.location, ST_GeomFromText($1::text, 4326))"
    assert params == ["POINT(18.05 59.33)"]


def test_spatial_measures_and_relate_compile_to_postgis() -> None:
    assert sql_of("geo.distance(location, geometry'POINT(1 2)') lt 0.5")[0] == (
        "(ST_Distance(l.location, ST_GeomFromText($1::text, 4326)) < $2::numeric)"
    )
    assert sql_of("geo.length(location) gt 1")[0] == "(ST_Length(l.location) > $1::bigint)"
    assert sql_of("st_relate(location, geometry'POINT(1 2)', 'T********')") == (
        "(CASE WHEN $2::text ~ '^[TF012*]{9}$' "
        "THEN ST_Relate(l.location, ST_GeomFromText($1::text, 4326), $2::text) END)",
        ["POINT(1 2)", "T********"],
    )


def test_every_parsed_function_has_a_translation() -> None:
    assert set(ARITY) == set(TRANSLATIONS)


@pytest.mark.parametrize("hostile", [
    "x'); DROP TABLE things; --",
    "$1",
    "name",
    "t.name = t.name OR TRUE",
    "'' OR 1=1",
])
def test_user_strings_reach_sql_only_as_parameters(hostile: str) -> None:
    quoted = "'" + hostile.replace("'", "''") + "'"
    sql, params = sql_of(
        f"name eq {quoted} or contains(description, {quoted}) or properties/{'k'} eq {quoted}"
    )
    assert sql == (
        "(((t.name = $1::text) OR (strpos(t.description, $2::text) > 0))"
        " OR (((t.properties) #>> $3::text[]) = $4::text))"
    )
    assert params == [hostile, hostile, ["k"], hostile]


def test_json_keys_reach_sql_only_as_parameters() -> None:
    sql, params = sql_of("properties/DROP/TABLE eq 1")
    assert "DROP" not in sql
    assert params[0] == ["DROP", "TABLE"]


@pytest.mark.parametrize(("text", "position", "fragment"), [
    ("name add 1 eq 2", 0, "'add' needs a number, got a string"),
    ("id add 'x' eq 2", 7, "'add' needs a number, got a string"),
    ("length(5) eq 1", 7, "length() needs a string, got an integer"),
    ("substring(name, 'a') eq 'b'", 16, "needs an integer"),
    ("year(name) eq 1", 5, "year() needs a date or a datetime, got a string"),
    ("hour(date(phenomenonTime)) eq 1", 5, "needs a datetime or a time"),
    ("geo.distance(name, location) lt 1", 13, "needs a geometry"),
    ("name eq 1", 5, "cannot compare a string with an integer"),
    ("phenomenonTime gt 2026-10-01", 15, "cannot compare a datetime with a date"),
    ("active gt false", 7, "'gt' cannot order a boolean"),
    ("location eq geometry'POINT(1 2)'", 9, "st_equals"),
    ("name gt null", 5, "use eq or ne"),
    ("not name", 4, "not needs a boolean, got a string"),
    ("id eq 1 and name", 12, "and needs a boolean"),
    ("id add 1", 3, "a filter needs a boolean, got an integer"),
    ("properties/since gt 2026-01-01T00:00:00Z", 17, "JSON value compares only"),
    ("nope eq 1", 0, "unknown property 'nope'"),
    ("id eq 1 or Datastream/Thing/nope eq 1", 11, "unknown property 'Datastream/Thing/nope'"),
    ("-name eq 1", 1, "unary minus needs a number"),
])
def test_type_errors_are_found_before_the_database(
    text: str, position: int, fragment: str
) -> None:
    error = compile_error(text)
    assert fragment in error.message
    assert error.position == position


TIED = "d.thing_id = t.id"


@pytest.mark.parametrize(("text", "sql", "params"), [
    # A comparison through a collection holds when some member satisfies it.
    ("Datastreams/name eq 'NO2'",
     f"EXISTS (SELECT 1 FROM datastreams d WHERE {TIED} AND (d.name = $1::text))", ["NO2"]),
    ("Datastreams/Observations/result gt 40",
     f"EXISTS (SELECT 1 FROM datastreams d WHERE {TIED} AND EXISTS (SELECT 1 FROM "
     "observations ob WHERE ob.datastream_id = d.id AND (ob.result > $1::bigint)))", [40]),
    # Two comparisons may be satisfied by two different members ...
    ("Datastreams/name eq 'a' and Datastreams/unit eq 'b'",
     f"(EXISTS (SELECT 1 FROM datastreams d WHERE {TIED} AND (d.name = $1::text)) AND "
     f"EXISTS (SELECT 1 FROM datastreams d WHERE {TIED} AND (d.unit = $2::text)))",
     ["a", "b"]),
    # ... one lambda asks both of the same member.
    ("Datastreams/any(x: x/name eq 'a' and x/unit eq 'b')",
     f"EXISTS (SELECT 1 FROM datastreams d WHERE {TIED} AND ((d.name = $1::text) AND "
     "(d.unit = $2::text)))", ["a", "b"]),
    ("Datastreams/any()", f"EXISTS (SELECT 1 FROM datastreams d WHERE {TIED})", []),
    # all: no member fails the condition (a null counts as failing); true when empty.
    ("Datastreams/all(x: x/name eq 'a')",
     f"(NOT EXISTS (SELECT 1 FROM datastreams d WHERE {TIED} AND "
     "((d.name = $1::text) IS NOT TRUE)))", ["a"]),
    ("Datastreams/Observations/all(o: o/result gt 1)",
     f"(NOT EXISTS (SELECT 1 FROM datastreams d WHERE {TIED} AND ((NOT EXISTS (SELECT 1 "
     "FROM observations ob WHERE ob.datastream_id = d.id AND ((ob.result > $1::bigint) IS "
     "NOT TRUE))) IS NOT TRUE)))", [1]),
    # Paths without the variable stay on the filtered entity.
    ("Datastreams/any(d: d/name eq name)",
     f"EXISTS (SELECT 1 FROM datastreams d WHERE {TIED} AND (d.name = t.name))", []),
    ("Datastreams/any(d: d/Observations/any(o: o/result gt length(d/unit)))",
     f"EXISTS (SELECT 1 FROM datastreams d WHERE {TIED} AND EXISTS (SELECT 1 FROM "
     "observations ob WHERE ob.datastream_id = d.id AND (ob.result > char_length(d.unit))))",
     []),
    ("startswith(Datastreams/name, 'Horn')",
     f"EXISTS (SELECT 1 FROM datastreams d WHERE {TIED} AND starts_with(d.name, $1::text))",
     ["Horn"]),
])
def test_collections_become_exists_subqueries(text: str, sql: str, params: list[object]) -> None:
    assert sql_of(text) == (sql, params)


@pytest.mark.parametrize(("text", "sql", "params"), [
    ("name in ('a', 'b')", "((t.name = $1::text) OR (t.name = $2::text))", ["a", "b"]),
    ("name in ('a', null)", "((t.name = $1::text) OR (t.name IS NULL))", ["a"]),
    ("result in (1, 2.5)",
     "((o.result_number = $1::bigint) OR (o.result_number = $2::numeric))",
     [1, Decimal("2.5")]),
    ("properties/n in (3)",
     "(((CASE WHEN jsonb_typeof(((t.properties) #> $1::text[])) = 'number' THEN "
     "(((t.properties) #> $1::text[]))::numeric END) = $2::bigint))", [["n"], 3]),
    ("Datastreams/name in ('x')",
     f"EXISTS (SELECT 1 FROM datastreams d WHERE {TIED} AND ((d.name = $1::text)))", ["x"]),
])
def test_in_is_equality_with_any_of_the_items(text: str, sql: str, params: list[object]) -> None:
    assert sql_of(text) == (sql, params)


@pytest.mark.parametrize(("text", "position", "fragment"), [
    ("name/any()", 0, "'name' is not a collection"),
    ("Datastreams/any(d: d eq 1)", 19, "'d' stands for a member of a collection"),
    ("Datastreams/any(d: d/name)", 0, "test a condition on its members"),
    ("Datastreams/any(d: d/Observations/any(d: d/result gt 1))", 19,
     "variable 'd' is already in use"),
    ("Datastreams/any(d: d/colour eq 1)", 19, "unknown property 'colour'"),
    ("name in (1)", 5, "cannot compare a string with an integer"),
    ("result in (1, 'x')", 7, "cannot compare a number with a string"),
])
def test_collection_and_in_errors_point_at_the_problem(
    text: str, position: int, fragment: str
) -> None:
    error = compile_error(text)
    assert fragment in error.message
    assert error.position == position


@pytest.mark.parametrize(("text", "sql", "params"), [
    ("@iot.id eq 16", "(o.id = $1::bigint)", [16]),
    ("Datastream/Thing/@iot.id eq 16", "(th.id = $1::bigint)", [16]),
    ("floor(Datastream/Thing/@iot.id) eq 16 or @iot.id in (1, 2)",
     "((floor(th.id) = $1::bigint) OR ((o.id = $2::bigint) OR (o.id = $3::bigint)))",
     [16, 1, 2]),
    ("Datastreams/@iot.id eq 4",
     f"EXISTS (SELECT 1 FROM datastreams d WHERE {TIED} AND (d.id = $1::bigint))", [4]),
    ("Datastreams/any(d: d/@iot.id gt @iot.id)",
     f"EXISTS (SELECT 1 FROM datastreams d WHERE {TIED} AND (d.id > o.id))", []),
])
def test_iot_id_means_id_wherever_a_property_stands(
    text: str, sql: str, params: list[object]
) -> None:
    assert sql_of(text) == (sql, params)


def test_iot_id_inside_json_stays_a_key_as_written() -> None:
    sql, params = sql_of("properties/@iot.id eq 'x'")
    assert sql == "(((t.properties) #>> $1::text[]) = $2::text)"
    assert params == [["@iot.id"], "x"]


@pytest.mark.parametrize(("text", "keys"), [
    ("properties/arr[1] eq 20", ["arr", "1"]),
    ("properties/a/b[0]/c eq 20", ["a", "b", "0", "c"]),
    ("properties/grid[2][10] eq 20", ["grid", "2", "10"]),
    ("properties/arr[007] eq 20", ["arr", "7"]),
])
def test_array_indexes_join_the_json_keys_in_one_parameter(text: str, keys: list[str]) -> None:
    sql, params = sql_of(text)
    assert sql == (
        "((CASE WHEN jsonb_typeof(((t.properties) #> $1::text[])) = 'number' "
        "THEN (((t.properties) #> $1::text[]))::numeric END) = $2::bigint)"
    )
    assert params == [keys, 20]


def test_an_index_may_follow_the_json_property_itself() -> None:
    resolver = FakeResolver({("result",): Column("o.result", "json")})
    sql, params = compile_filter(parse_filter("result[0] eq 'a'"), resolver)
    assert sql == "(((o.result) #>> $1::text[]) = $2::text)"
    assert params == [["0"], "a"]


def test_indexed_json_inside_a_function_and_a_lambda() -> None:
    assert sql_of("substringof('x', Datastream/properties/tags[0])") == (
        "(strpos(((ds.properties) #>> $2::text[]), $1::text) > 0)", ["x", ["tags", "0"]]
    )


@pytest.mark.parametrize(("text", "position", "fragment"), [
    ("name[0] eq 'a'", 0, "'name' is not JSON: an array index follows a JSON property"),
    ("id eq 1 or Datastream/Thing/name[1] eq 'a'", 11, "'Datastream/Thing/name' is not JSON"),
    ("colour[0] eq 1", 0, "unknown property 'colour'"),
    ("Datastreams/any(d: d[0]/name eq 'a')", 19, "'d' stands for a member of a collection"),
    ("properties/arr[0]/any(x: x eq 1)", 0, "'properties/arr[0]' is not a collection"),
])
def test_an_index_where_no_json_is_fails_before_the_database(
    text: str, position: int, fragment: str
) -> None:
    error = compile_error(text)
    assert fragment in error.message
    assert error.position == position
