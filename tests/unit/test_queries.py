import pytest

from core.errors import QueryNotFound
from core.queries import parse, query


def test_named_queries_are_split_at_their_headers_without_comment_lines() -> None:
    text = (
        "-- first --\n-- What the first does.\nSELECT 1;\n\n"
        "-- second --\nSELECT 2\nFROM t;\n"
    )
    assert parse(text) == {"first": "SELECT 1;", "second": "SELECT 2\nFROM t;"}


def test_a_query_that_is_not_in_the_file_is_an_error_naming_it() -> None:
    with pytest.raises(QueryNotFound, match="no_such_query"):
        query("registry", "no_such_query")


def test_shipped_queries_load() -> None:
    assert query("registry", "counts").startswith("SELECT")
