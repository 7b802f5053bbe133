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


def test_a_path_of_three_steps_nests_each_step_with_the_options_on_the_last() -> None:
    assert tree(parse("Datastream/Thing/Locations($select=name)")) == [
        (("Datastream",), {}, [
            (("Thing",), {}, [(("Locations",), {"$select": "name"}, [])]),
        ]),
    ]


def test_paths_that_share_a_first_step_are_one_expansion_of_it() -> None:
    assert tree(parse("Datastream($select=name),Datastream/Thing,Datastream/Sensor")) == [
        (("Datastream",), {"$select": "name"}, [
            (("Thing",), {}, []), (("Sensor",), {}, []),
        ]),
    ]


def test_one_navigation_expanded_by_a_path_and_inside_options_is_refused() -> None:
    with pytest.raises(BadRequest, match="'Thing' more than once"):
        parse("Datastream($expand=Thing($select=name)),Datastream/Thing")
