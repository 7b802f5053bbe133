"""The query options of a read request, checked against an entity type."""

import pytest

from api.entities import THINGS
from api.errors import BadRequest
from api.query import options


def test_select_reads_iot_id_as_the_id_once() -> None:
    assert options({"$select": "@iot.id, name,id"}, THINGS, 5, 10).select == ["id", "name"]


def test_select_still_refuses_an_unknown_property_beside_iot_id() -> None:
    with pytest.raises(BadRequest, match="Thing has no property 'colour'"):
        options({"$select": "@iot.id,colour"}, THINGS, 5, 10)


def test_orderby_direction_in_capitals_is_read() -> None:
    order = options({"$orderby": "name DESC,@iot.id ASC"}, THINGS, 5, 10).order
    assert [item.descending for item in order] == [True, False]
