"""Query options of a read request: $top, $skip, $count, $filter, $orderby, $select and
$skiptoken ($expand is in api/expand.py, $resultFormat in api/formats.py).

As the standard asks, a $top above the largest page is cut to that page (a next link then
leads on), and a system query option of OData that this server does not offer ($search,
$apply, …) is answered with 501 Not Implemented.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from api.entities import EntityType
from api.errors import BadRequest, NotImplementedOption
from api.odata import UNSUPPORTED, ODataError, parse_filter, parse_orderby, property_name
from api.store import Options

T = TypeVar("T")

KNOWN = {"$top", "$skip", "$count", "$orderby", "$select", "$filter", "$expand",
         "$resultFormat", "$skiptoken"}


def options(
    query: Mapping[str, str], entity: EntityType, page_size: int, max_page_size: int
) -> Options:
    """The query options of a request, checked against the entity type.

    Raises:
        BadRequest: an option is malformed or names an unknown property.
        NotImplementedOption: an option this server does not offer yet.
    """
    for name in query:
        if name in UNSUPPORTED:
            raise NotImplementedOption(f"the query option {name!r} is not offered")
        if name.startswith("$") and name not in KNOWN:
            raise BadRequest(f"unknown query option {name!r}")
    return Options(
        top=min(_integer(query, "$top", page_size), max_page_size),
        skip=_integer(query, "$skip", 0),
        count=_boolean(query, "$count"),
        filter=_parsed("$filter", query.get("$filter"), parse_filter),
        order=_parsed("$orderby", query.get("$orderby"), parse_orderby) or (),
        select=_select(query.get("$select"), entity),
        skiptoken=query.get("$skiptoken"),
    )


def _parsed(name: str, raw: str | None, parse: Callable[[str], T]) -> T | None:
    if raw is None:
        return None
    try:
        return parse(raw)
    except ODataError as exc:
        raise BadRequest(f"{name}: {exc}", exc.position) from None


def _integer(query: Mapping[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise BadRequest(f"{name} must be a non-negative integer, not {raw!r}")
    return int(raw)


def _boolean(query: Mapping[str, str], name: str) -> bool:
    raw = query.get(name)
    if raw is None or raw == "false":
        return False
    if raw == "true":
        return True
    raise BadRequest(f"{name} must be true or false, not {raw!r}")


def _select(raw: str | None, entity: EntityType) -> list[str] | None:
    if raw is None:
        return None
    names: list[str] = []
    for written in (n.strip() for n in raw.split(",")):
        name = property_name(written)
        if name != "id" and name not in entity.props and name not in entity.navs:
            raise BadRequest(f"$select: {entity.name} has no property {written!r}")
        if name not in names:
            names.append(name)
    return names
