"""$expand written back as text, for the next links of expanded collections."""

from typing import Any

import pytest

from api.errors import BadRequest, NotImplementedOption
from api.expand import parse, unparse
from api.odata import Expansion


def tree(items: tuple[Expansion, ...]) -> list[Any]:
    """The expansions without their positions in the text."""
    return [(e.path, dict(e.options), tree(e.expand)) for e in items]


@pytest.mark.parametrize("text", [
    "Datastreams",
    "Datastreams($top=2;$filter=name eq 'a;b, c';$expand=Observations($top=1),Sensor)",
    "Datastreams/Observations($orderby=phenomenonTime desc;$count=true),Locations",
])
def test_an_expansion_reads_back_as_the_same_tree(text: str) -> None:
    parsed = parse(text)
    assert tree(parse(unparse(parsed))) == tree(parsed)


def test_a_path_is_written_as_nested_expansions() -> None:
    assert unparse(parse("Datastreams/Observations($top=1)")) == (
        "Datastreams($expand=Observations($top=1))")


def test_an_option_odata_has_but_this_server_does_not_is_501_not_400() -> None:
    with pytest.raises(NotImplementedOption):
        parse("Datastreams($levels=2)")
    with pytest.raises(BadRequest):
        parse("Datastreams($frobnicate=2)")
