"""Precedence, shapes and syntax errors of the $filter parser."""

from decimal import Decimal

import pytest

from api.odata.errors import FilterError
from api.odata.nodes import Binary, Call, In, Lambda, Literal, Node, Path, Unary
from api.odata.parser import MAX_IN_ITEMS, parse_filter


def shape(node: Node) -> str:
    """Render a tree with full parentheses so that tests can state the grouping."""
    if isinstance(node, Path):
        return "/".join(node.segments)
    if isinstance(node, Literal):
        return repr(node.value)
    if isinstance(node, Call):
        return f"{node.name}({', '.join(shape(arg) for arg in node.args)})"
    if isinstance(node, Unary):
        return f"({node.op} {shape(node.operand)})"
    if isinstance(node, Lambda):
        body = f"{node.variable}: {shape(node.body)}" if node.body is not None else ""
        return f"{'/'.join(node.path)}/{node.op}({body})"
    if isinstance(node, In):
        return f"({shape(node.value)} in [{', '.join(shape(i) for i in node.items)}])"
    return f"({shape(node.left)} {node.op} {shape(node.right)})"


@pytest.mark.parametrize(("text", "grouping"), [
    ("a or b and c", "(a or (b and c))"),
    ("a and b or c", "((a and b) or c)"),
    ("not a eq b", "(not (a eq b))"),
    ("not a and b", "((not a) and b)"),
    ("not a or not b and c", "((not a) or ((not b) and c))"),
    ("not not a", "(not (not a))"),
    ("a add b mul c gt d sub e", "((a add (b mul c)) gt (d sub e))"),
    ("a sub b sub c eq 0", "(((a sub b) sub c) eq 0)"),
    ("a div b mod c eq 1", "(((a div b) mod c) eq 1)"),
    ("(a or b) and c", "((a or b) and c)"),
    ("-a mul b eq c", "(((neg a) mul b) eq c)"),
    ("a eq b and c ne d or e lt f", "(((a eq b) and (c ne d)) or (e lt f))"),
    ("length(name) add 1 ge 3", "((length(name) add 1) ge 3)"),
    ("a in (1, 2) and b", "((a in [1, 2]) and b)"),
    ("a add 1 in (2) or not b in ('x')", "(((a add 1) in [2]) or (not (b in ['x'])))"),
    ("Datastreams/any(d: d/name eq 'x' or d/id lt 3) and a",
     "(Datastreams/any(d: ((d/name eq 'x') or (d/id lt 3))) and a)"),
    ("not Things/Datastreams/all(x: x/Observations/any())",
     "(not Things/Datastreams/all(x: x/Observations/any()))"),
])
def test_operators_group_by_odata_precedence(text: str, grouping: str) -> None:
    assert shape(parse_filter(text)) == grouping


def test_minus_before_a_number_makes_a_negative_literal() -> None:
    node = parse_filter("x gt -2.5")
    assert isinstance(node, Binary)
    assert node.right == Literal(Decimal("-2.5"), "decimal", 5)


def test_smallest_64_bit_integer_is_accepted() -> None:
    node = parse_filter("x eq -9223372036854775808")
    assert isinstance(node, Binary)
    assert node.right == Literal(-(2**63), "integer", 5)


def test_path_crosses_relations_and_json_keys() -> None:
    node = parse_filter("Datastream/Thing/properties/owner eq 'x'")
    assert isinstance(node, Binary)
    assert node.left == Path(("Datastream", "Thing", "properties", "owner"), 0)


def test_keywords_are_literals_only_where_an_operand_stands() -> None:
    assert shape(parse_filter("flag eq true or other eq null")) == (
        "((flag eq True) or (other eq None))"
    )


@pytest.mark.parametrize(("text", "name", "count"), [
    ("substring(name, 1) eq 'a'", "substring", 2),
    ("substring(name, 1, 2) eq 'a'", "substring", 3),
    ("now() gt t", "now", 0),
    ("st_relate(a, b, 'T********')", "st_relate", 3),
    ("geo.distance(a, geography'POINT(1 2)') lt 1", "geo.distance", 2),
])
def test_function_calls_keep_their_arguments(text: str, name: str, count: int) -> None:
    calls = [n for n in walk(parse_filter(text)) if isinstance(n, Call)]
    assert [(c.name, len(c.args)) for c in calls] == [(name, count)]


def walk(node: Node) -> list[Node]:
    children: tuple[Node, ...] = ()
    if isinstance(node, Call):
        children = node.args
    elif isinstance(node, Unary):
        children = (node.operand,)
    elif isinstance(node, Binary):
        children = (node.left, node.right)
    return [node, *(n for child in children for n in walk(child))]


@pytest.mark.parametrize(("text", "position", "fragment"), [
    ("", 0, "empty expression"),
    ("   ", 0, "empty expression"),
    ("name eq", 7, "found the end of the expression"),
    ("name eq 'a' 'b'", 12, "unexpected ''b'' after a complete expression"),
    ("name eq 'a')", 11, "unexpected ')' after a complete expression"),
    ("(name eq 'a'", 12, "expected ')'"),
    ("eq 1", 0, "expected an expression, found 'eq'"),
    ("a eq and", 5, "found 'and'"),
    ("a eq ()", 6, "found ')'"),
    ("frobnicate(a) eq 1", 0, "unknown function 'frobnicate'"),
    ("x eq 1 and ToLower(n) eq 'a'", 11, "unknown function 'ToLower'"),
    ("length(a, b) eq 1", 0, "length() takes 1 argument, got 2"),
    ("substring(a) eq 'x'", 0, "substring() takes 2 or 3 arguments, got 1"),
    ("a eq 1 or now(1) gt t", 10, "now() takes no arguments, got 1"),
    ("st_relate(a, b) eq true", 0, "takes 3 arguments, got 2"),
    ("length(a b) eq 1", 9, "expected ',' or ')'"),
    ("length(a,) eq 1", 9, "found ')'"),
    ("Datastream/ eq 1", 11, "property name after '/'"),
    ("Datastream/(a) eq 1", 11, "property name after '/'"),
    ("a eq 9223372036854775808", 5, "64-bit"),
    ("a eq -9223372036854775809", 6, "64-bit"),
    ("name eq 'abc", 8, "unterminated string"),
    ("Datastreams/all()", 12, "all() needs a condition"),
    ("Datastreams/any(d eq 1)", 18, "expected ':' after the variable 'd'"),
    ("Datastreams/any(d: d/name eq 'x'", 32, "expected ')'"),
    ("Datastreams/any(eq: true)", 16, "'eq' cannot name a variable"),
    ("Datastreams/any(null: true)", 16, "'null' cannot name a variable"),
    ("Datastreams/any(@d: true)", 16, "'@d' cannot name a variable"),
    ("Datastreams/any(1: true)", 16, "expected a variable name"),
    ("name in 'a'", 8, "'(' and a list of values after 'in'"),
    ("name in ()", 9, "expected an expression, found ')'"),
    ("name in ('a' 'b')", 13, "expected ',' or ')'"),
    ("d: 1", 1, "unexpected ':'"),
    # Indexes into JSON arrays.
    ("p/arr[x] eq 1", 6, "an array index is a whole number from 0, as in arr[0]"),
    ("p/arr[-1] eq 1", 6, "whole number from 0"),
    ("p/arr[1.5] eq 1", 6, "whole number from 0"),
    ("p/arr[1e2] eq 1", 6, "whole number from 0"),
    ("p/arr[] eq 1", 6, "whole number from 0"),
    ("p/arr['1'] eq 1", 6, "whole number from 0"),
    ("p/arr[1 eq 1", 8, "expected ']' after the array index, found 'eq'"),
    ("p/arr[1", 7, "expected ']' after the array index, found the end"),
    ("p/arr[1[2]] eq 1", 7, "expected ']' after the array index, found '['"),
    ("p/arr] eq 1", 5, "unexpected ']' after a complete expression"),
    ("p/arr [1] eq 1", 6, "unexpected '[' after a complete expression"),
    ("[1] eq 1", 0, "expected an expression, found '['"),
    ("p/[1] eq 1", 2, "property name after '/'"),
    ("p/arr[99999999999999999999] eq 1", 6, "64-bit"),
])
def test_syntax_error_names_the_problem_and_its_position(
    text: str, position: int, fragment: str
) -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter(text)
    assert fragment in caught.value.message
    assert caught.value.position == position


def test_deeply_nested_parentheses_fail_cleanly() -> None:
    with pytest.raises(FilterError, match="nests too deeply"):
        parse_filter("(" * 5000 + "a" + ")" * 5000)


def test_very_long_operator_chain_fails_cleanly() -> None:
    with pytest.raises(FilterError, match="nests too deeply"):
        parse_filter(" or ".join(["a eq 1"] * 1000))


def test_long_but_reasonable_or_chain_parses() -> None:
    node = parse_filter(" or ".join(f"id eq {n}" for n in range(150)))
    assert isinstance(node, Binary)
    assert node.op == "or"


def test_any_without_a_condition_asks_for_members_at_all() -> None:
    node = parse_filter("Datastreams/any()")
    assert node == Lambda(("Datastreams",), "any", None, None, 0)


def test_a_lambda_keeps_the_position_of_its_path_and_a_name_any_is_still_a_path() -> None:
    node = parse_filter("x eq 1 or Datastreams/any(d: d/name eq 'y')")
    assert isinstance(node, Binary) and isinstance(node.right, Lambda)
    assert node.right.position == 10
    assert parse_filter("properties/any eq 1") == Binary(
        "eq", Path(("properties", "any"), 0), Literal(1, "integer", 18), 15)


def test_an_in_list_longer_than_the_limit_is_refused() -> None:
    values = ", ".join(str(n) for n in range(MAX_IN_ITEMS + 1))
    with pytest.raises(FilterError, match=f"at most {MAX_IN_ITEMS}"):
        parse_filter(f"id in ({values})")
    assert isinstance(parse_filter(f"id in ({values.rsplit(',', 1)[0]})"), In)


def test_iot_id_is_a_path_segment_as_written() -> None:
    node = parse_filter("Datastream/Thing/@iot.id eq 16")
    assert isinstance(node, Binary)
    assert node.left == Path(("Datastream", "Thing", "@iot.id"), 0)


def test_array_indexes_are_segments_of_their_own_after_the_name_they_follow() -> None:
    node = parse_filter("properties/a/b[0]/c[1][ 02 ] eq 20")
    assert isinstance(node, Binary)
    assert node.left == Path(("properties", "a", "b", "[0]", "c", "[1]", "[2]"), 0)
    assert node.right == Literal(20, "integer", 32)


def test_an_indexed_path_is_an_operand_like_any_other() -> None:
    assert shape(parse_filter("length(p/arr[3]) gt 1 and p/arr[0] in (1)")) == (
        "((length(p/arr/[3]) gt 1) and (p/arr/[0] in [1]))"
    )
