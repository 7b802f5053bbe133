"""Property tests: whatever text arrives, the OData readers answer with a result or an ODataError.

Hypothesis feeds random text, soups of real tokens, mutations of valid filters and generated
well-formed expressions. No other exception may escape, because the API turns ODataError
into a 400 response and anything else into a 500.
"""

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.odata import (
    FilterError,
    ODataError,
    compile_filter,
    compile_orderby,
    parse_expand,
    parse_filter,
    parse_orderby,
    parse_select,
)
from tests.unit.odata_fakes import FakeResolver

# No example database: the tests must not write into the working tree.
FAST = settings(
    database=None, max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)



TOKENS = [
    "eq", "ne", "gt", "ge", "lt", "le", "and", "or", "not", "add", "sub", "mul", "div", "mod",
    "(", ")", ",", "/", "-", "'", "''", "'a b'", "'it''s'", "0", "42", "-7", "1.5", "2e10",
    "99999999999999999999", "true", "false", "null", "2026-10-01T08:00:00Z",
    "2026-10-01T08:00:00+01:00", "2026-10-01", "08:00", "duration'P1DT2H'", "duration'",
    "geography'POINT(18.05 59.33)'", "geometry'POLYGON((0 0,1 0,1 1,0 0))'", "geometry'LINESTRING(",
    "id", "name", "result", "active", "phenomenonTime", "location", "properties/a/b",
    "Datastream/Thing/name", "unknown", "length", "substring", "indexof", "substringof", "concat",
    "year", "date", "now", "round", "geo.distance", "geo.length", "st_relate", "st_within",
    "asc", "desc", ";", "$top=1", "$select=", "@iot.id", "#", "\u00e4", "\\", "\x00",
    "in", ":", "any(", "all(", "any()", "d:", "d/name", "Datastreams", "Datastreams/name",
    "Datastreams/any(", "Datastreams/Observations/result", "Datastreams/all(d: d/unit eq 'x')",
    "[", "]", "[0]", "[-1]", "properties/arr[1]", "Datastream/Thing/@iot.id", "ASC", "DESC",
]
VALID = [
    "name eq 'Lund' and result gt 20.5",
    "not (id eq 1 or id eq 2) and active",
    "substring(tolower(name), 1, 2) eq 'ab' or indexof(name, 'x') ge 0",
    "year(phenomenonTime) eq 2026 and phenomenonTime lt now() sub duration'P1D'",
    "geo.distance(location, geography'POINT(18.05 59.33)') lt 0.01",
    "st_relate(location, geometry'POLYGON((0 0, 1 0, 1 1, 0 0))', 'T********')",
    "properties/owner/name eq 'Kim' and properties/floor div 2 gt -1e3",
    "round(result mod 3) add length(concat(name, 'x')) le 9223372036854775807",
    "Datastreams/any(d: d/name eq 'a' and d/Observations/all(o: o/result gt length(d/unit)))",
    "name in ('a', 'b', null) and Datastreams/name in ('x') or not Datastreams/any()",
    "Datastreams/Observations/result le 3 and Datastreams/Observations/any(o: o/result ge 1)",
    "properties/a/b[0]/c eq 'x' and properties/m[1][2] gt @iot.id",
    "Datastreams/any(d: d/@iot.id eq Datastream/Thing/@iot.id) or Datastreams/@iot.id in (1)",
]

token_soup = st.lists(st.sampled_from(TOKENS), max_size=25).flatmap(
    lambda parts: st.sampled_from([" ", ""]).map(lambda sep: sep.join(parts))
)
noise = st.text(
    alphabet=st.sampled_from(list("ab eqnotd()',/-.:0123456789TZP+@$;=_")) | st.characters(),
    max_size=80,
)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(VALID))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["delete", "insert", "replace", "cut"]))
        piece = draw(st.sampled_from(TOKENS))
        if kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 5)) :]
        elif kind == "insert":
            text = text[:at] + piece + text[at:]
        elif kind == "replace":
            text = text[:at] + piece + text[at + len(piece) :]
        else:
            text = text[:at]
    return text


def compiles_or_fails_cleanly(text: str) -> None:
    try:
        compile_filter(parse_filter(text), FakeResolver(), start=1)
    except FilterError as error:
        assert 0 <= error.position <= len(text)


@FAST
@given(noise)
def test_random_text_parses_or_raises_filter_error(text: str) -> None:
    compiles_or_fails_cleanly(text)


@FAST
@given(token_soup)
def test_token_soup_parses_or_raises_filter_error(text: str) -> None:
    compiles_or_fails_cleanly(text)


@FAST
@given(mutated())
def test_mutated_filters_parse_or_raise_filter_error(text: str) -> None:
    compiles_or_fails_cleanly(text)


def test_the_unmutated_seeds_compile() -> None:
    for text in VALID:
        sql, _ = compile_filter(parse_filter(text), FakeResolver())
        assert sql


def quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


numbers = st.integers(-(2**63), 2**63 - 1).map(str)
strings = st.text(max_size=20).map(quoted)
number_expr = st.recursive(
    numbers | st.sampled_from(
        ["id", "@iot.id", "result", "length(name)", "properties/n", "properties/v[0][3]"]),
    lambda inner: st.tuples(inner, st.sampled_from(["add", "sub", "mul", "div", "mod"]), inner)
    .map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
    max_leaves=6,
)
string_expr = st.recursive(
    strings | st.sampled_from(["name", "properties/s"]),
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda t: f"concat({t[0]}, {t[1]})"),
        inner.map(lambda s: f"tolower({s})"),
    ),
    max_leaves=4,
)
comparisons = st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le"])
lists = st.lists(numbers, min_size=1, max_size=4).map(", ".join)
atoms = st.one_of(
    st.tuples(number_expr, comparisons, number_expr).map(" ".join),
    st.tuples(number_expr, lists).map(lambda t: f"{t[0]} in ({t[1]})"),
    st.tuples(string_expr, comparisons).map(lambda t: f"Datastreams/name {t[1]} {t[0]}"),
    st.tuples(comparisons, numbers).map(lambda t: f"Datastreams/Observations/result {t[0]} "
                                                  f"{t[1]}"),
    st.tuples(st.sampled_from(["any", "all"]), string_expr).map(
        lambda t: f"Datastreams/{t[0]}(x: x/unit eq {t[1]} or x/Observations/any())"),
    st.tuples(string_expr, comparisons, string_expr).map(" ".join),
    st.tuples(string_expr, string_expr).map(lambda t: f"contains({t[0]}, {t[1]})"),
    st.just("active"),
)
boolean_expr = st.recursive(
    atoms,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(" ".join),
        inner.map(lambda b: f"not ({b})"),
        inner.map(lambda b: f"({b})"),
    ),
    max_leaves=8,
)


@FAST
@given(boolean_expr)
def test_generated_well_typed_filters_always_compile(text: str) -> None:
    sql, params = compile_filter(parse_filter(text), FakeResolver())
    assert sql.count("$") >= len(params)


@FAST
@given(st.text(min_size=1, max_size=30).filter(lambda s: s.strip()))
def test_any_string_literal_becomes_exactly_one_parameter(value: str) -> None:
    assert compile_filter(parse_filter(f"name eq {quoted(value)}"), FakeResolver()) == (
        "(t.name = $1::text)", [value]
    )


@FAST
@given(noise | token_soup)
def test_orderby_and_list_options_parse_or_raise_odata_error(text: str) -> None:
    for read in (parse_expand, parse_select, parse_orderby):
        try:
            read(text)
        except ODataError as error:
            assert 0 <= error.position <= len(text)
    with contextlib.suppress(ODataError):
        compile_orderby(parse_orderby(text), FakeResolver())
