"""Which orders page by key, the tokens, and the conditions that seek past a key."""

from datetime import UTC, datetime
from typing import Any

import pytest

from api.entities import ENTITY_SETS
from api.errors import BadRequest
from api.keyset import Keyset, plan
from api.odata import parse_orderby

OBSERVATIONS = ENTITY_SETS["Observations"]
T = datetime(2026, 9, 21, 10, 5, tzinfo=UTC)


def keyset_for(orderby: str) -> Keyset | None:
    return plan(OBSERVATIONS, parse_orderby(orderby) if orderby else ())


@pytest.mark.parametrize(("orderby", "order"), [
    ("", "e.datastream_id ASC, e.phenomenon_time ASC, e.phenomenon_time_end ASC NULLS FIRST"),
    ("phenomenonTime", "e.phenomenon_time ASC, e.datastream_id ASC, "
                       "e.phenomenon_time_end ASC NULLS FIRST"),
    ("phenomenonTime desc", "e.phenomenon_time DESC, e.datastream_id ASC, "
                            "e.phenomenon_time_end DESC NULLS LAST"),
    ("resultTime", "e.result_time ASC NULLS FIRST, e.datastream_id ASC, "
                   "e.phenomenon_time ASC, e.phenomenon_time_end ASC NULLS FIRST"),
    ("resultTime desc", "e.result_time DESC NULLS LAST, e.datastream_id ASC, "
                        "e.phenomenon_time ASC, e.phenomenon_time_end ASC NULLS FIRST"),
])
def test_time_orders_of_observations_page_by_key(orderby: str, order: str) -> None:
    keys = keyset_for(orderby)
    assert keys is not None and keys.order() == order


@pytest.mark.parametrize("orderby", [
    "result", "phenomenonTime, result", "year(phenomenonTime)", "Datastream/phenomenonTime",
])
def test_other_orders_page_by_skip(orderby: str) -> None:
    assert keyset_for(orderby) is None


def test_other_entity_sets_page_by_skip() -> None:
    assert plan(ENTITY_SETS["Things"], ()) is None


def condition(keys: Keyset, row: dict[str, Any]) -> tuple[str, list[Any]]:
    params: list[Any] = []

    def param(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"

    return keys.after(keys.token(row), param), params


def test_a_token_seeks_past_its_key_with_the_first_key_alone_as_an_index_bound() -> None:
    keys = keyset_for("phenomenonTime desc")
    assert keys is not None
    sql, params = condition(keys, {"_k0": T, "_k1": 7, "_k2": None})
    assert sql == ("(e.phenomenon_time <= $1::timestamptz AND "
                   "((e.phenomenon_time < $1::timestamptz) OR "
                   "(e.phenomenon_time = $1::timestamptz AND e.datastream_id > $2::bigint)))")
    assert params == [T, 7]


def test_a_null_key_seeks_by_the_null_placement_of_the_standard() -> None:
    ascending, descending = keyset_for("resultTime"), keyset_for("resultTime desc")
    assert ascending is not None and descending is not None
    row = {"_k0": None, "_k1": 7, "_k2": T, "_k3": None}
    # Ascending, nulls come first: after a null, every non-null value, then the ties.
    sql, params = condition(ascending, row)
    assert sql == ("((e.result_time IS NOT NULL) OR "
                   "(e.result_time IS NULL AND e.datastream_id > $1::bigint) OR "
                   "(e.result_time IS NULL AND e.datastream_id = $1::bigint AND "
                   "e.phenomenon_time > $2::timestamptz) OR "
                   "(e.result_time IS NULL AND e.datastream_id = $1::bigint AND "
                   "e.phenomenon_time = $2::timestamptz AND "
                   "e.phenomenon_time_end IS NOT NULL))")
    assert params == [7, T]
    # Descending, nulls come last: after a null, only the ties.
    sql, _ = condition(descending, row)
    assert sql.startswith("((e.result_time IS NULL AND e.datastream_id > $1::bigint) OR ")
    # After a value, descending: smaller values and the nulls.
    sql, _ = condition(descending, {**row, "_k0": T})
    assert sql.startswith("(((e.result_time < $1::timestamptz OR e.result_time IS NULL)) OR ")


def test_after_an_instant_come_the_intervals_that_start_with_it() -> None:
    keys = keyset_for("")
    assert keys is not None
    sql, params = condition(keys, {"_k0": 7, "_k1": T, "_k2": None})
    assert sql.endswith("(e.datastream_id = $1::bigint AND e.phenomenon_time = $2::timestamptz "
                        "AND e.phenomenon_time_end IS NOT NULL)))")
    assert params == [7, T]


def test_tokens_are_url_safe_and_belong_to_their_order() -> None:
    keys, other = keyset_for(""), keyset_for("phenomenonTime desc")
    assert keys is not None and other is not None
    token = keys.token({"_k0": 2**63 - 1, "_k1": T, "_k2": None})
    assert token.replace("-", "").replace("_", "").isalnum()
    with pytest.raises(BadRequest, match="belongs to another"):
        other.after(token, lambda value: "$1")
