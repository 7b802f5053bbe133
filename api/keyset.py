"""Keyset paging of Observations: a next page starts after the last row's sort key.

With `$skip` the database reads and throws away every row before the page, so page 500
costs five hundred pages. When Observations come in the default order, or ordered by
`phenomenonTime` or `resultTime` alone (asc or desc), the next link carries `$skiptoken`
instead: the order's name and the last row's sort key, completed by the unique tiebreak
(datastream, time, interval end), as JSON in URL-safe base64. The next query seeks to that
key, which the unique index finds directly for one Datastream's Observations.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from api.entities import EntityType
from api.errors import BadRequest
from api.odata import OrderItem, direction
from api.odata.nodes import Path

_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,400}")
_INT64 = range(-(2**63), 2**63)


@dataclass(frozen=True)
class Key:
    """One column of a sort key."""

    sql: str
    kind: Literal["datetime", "integer"]
    descending: bool = False
    nullable: bool = False

    def beyond(self, placeholder: str | None) -> str | None:
        """The condition for a row strictly after value `placeholder` (None: null) in this
        key's order, nulls placed as the standard says; None if no row can be."""
        if placeholder is None:
            return None if self.descending else f"{self.sql} IS NOT NULL"
        if not self.descending:
            return f"{self.sql} > {placeholder}"
        if self.nullable:
            return f"({self.sql} < {placeholder} OR {self.sql} IS NULL)"
        return f"{self.sql} < {placeholder}"


_TIME = Key("e.phenomenon_time", "datetime")
_TIME_DESC = Key("e.phenomenon_time", "datetime", descending=True)
_STREAM = Key("e.datastream_id", "integer")
# An instant and an interval may start together: the interval's end (null for an instant,
# which comes first) completes the key, in the unique index's order (migration 0010).
_END = Key("e.phenomenon_time_end", "datetime", nullable=True)
_END_DESC = Key("e.phenomenon_time_end", "datetime", descending=True, nullable=True)
_RESULT_TIME = Key("e.result_time", "datetime", nullable=True)
_RESULT_TIME_DESC = Key("e.result_time", "datetime", descending=True, nullable=True)
_ORDERS: dict[tuple[str, bool], tuple[Key, ...]] = {
    ("phenomenonTime", False): (_TIME, _STREAM, _END),
    ("phenomenonTime", True): (_TIME_DESC, _STREAM, _END_DESC),
    ("resultTime", False): (_RESULT_TIME, _STREAM, _TIME, _END),
    ("resultTime", True): (_RESULT_TIME_DESC, _STREAM, _TIME, _END),
}


@dataclass(frozen=True)
class Keyset:
    """An order that keyset paging serves: its name (kept in the token) and its keys."""

    name: str
    keys: tuple[Key, ...]

    def order(self) -> str:
        """The ORDER BY body."""
        return ", ".join(f"{k.sql} {direction(k.descending, k.nullable)}" for k in self.keys)

    def columns(self) -> str:
        """The key columns, as hidden output columns _k0, _k1, …"""
        return ", ".join(f"{k.sql} AS _k{n}" for n, k in enumerate(self.keys))

    def token(self, row: dict[str, Any]) -> str:
        """The $skiptoken of the page that follows `row`."""
        values = [row[f"_k{n}"] for n in range(len(self.keys))]
        text = json.dumps([self.name, *[_plain(v) for v in values]], separators=(",", ":"))
        return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()

    def after(self, token: str, param: Any) -> str:
        """The condition for rows after the one `token` names; values go through `param`,
        which adds a parameter and returns its placeholder.

        Raises:
            BadRequest: the token is malformed or belongs to another order.
        """
        values = self._decode(token)
        marks = [None if v is None else f"{param(v)}::{_CASTS[k.kind]}"
                 for k, v in zip(self.keys, values, strict=True)]
        terms: list[str] = []
        equal: list[str] = []
        for key, mark in zip(self.keys, marks, strict=True):
            step = key.beyond(mark)
            if step is not None:
                terms.append(" AND ".join([*equal, step]))
            equal.append(f"{key.sql} IS NULL" if mark is None else f"{key.sql} = {mark}")
        condition = " OR ".join(f"({t})" for t in terms) or "FALSE"
        first, mark = self.keys[0], marks[0]
        if mark is None or first.nullable:
            return f"({condition})"
        # The same bound once more, alone, so that the planner starts an index scan there.
        bound = f"{first.sql} {'<=' if first.descending else '>='} {mark}"
        return f"({bound} AND ({condition}))"

    def _decode(self, token: str) -> list[Any]:
        try:
            if _TOKEN.fullmatch(token) is None:
                raise ValueError
            raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        except (ValueError, binascii.Error):
            raise BadRequest("$skiptoken is not a token this server gave out") from None
        if not isinstance(raw, list) or len(raw) != len(self.keys) + 1:
            raise BadRequest("$skiptoken is not a token this server gave out")
        if raw[0] != self.name:
            raise BadRequest("$skiptoken belongs to another $orderby; follow the next links "
                             "without changing the other options")
        return [_value(k, v) for k, v in zip(self.keys, raw[1:], strict=True)]


_CASTS = {"datetime": "timestamptz", "integer": "bigint"}


def plan(entity: EntityType, order: tuple[OrderItem, ...]) -> Keyset | None:
    """The keyset for a request's order, or None where only $skip can page.

    Args:
        entity: the entity type of the collection.
        order: the parsed $orderby (empty for the default order).

    Returns:
        The keyset for Observations in the default order or ordered by phenomenonTime or
        resultTime alone; None otherwise.
    """
    if entity.set_name != "Observations":
        return None
    if not order:
        return Keyset("default", (_STREAM, _TIME, _END))
    if len(order) != 1 or not isinstance(order[0].expression, Path):
        return None
    segments = order[0].expression.segments
    keys = _ORDERS.get((segments[0], order[0].descending)) if len(segments) == 1 else None
    if keys is None:
        return None
    return Keyset(f"{segments[0]} {'desc' if order[0].descending else 'asc'}", keys)


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _value(key: Key, raw: Any) -> Any:
    if raw is None and key.nullable:
        return None
    if key.kind == "integer" and isinstance(raw, int) and not isinstance(raw, bool) \
            and raw in _INT64:
        return raw
    if key.kind == "datetime" and isinstance(raw, str):
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            return moment
    raise BadRequest("$skiptoken is not a token this server gave out")
