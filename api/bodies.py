"""Request bodies of writes, checked against the SensorThings data model and turned into
drafts the writer stores.

Every refusal is a BadRequest whose message names the property and where it sits in the
body (`Thing.Datastreams[0].Sensor: ...`). A body is one entity: its properties, links to
existing entities (`{"@iot.id": 5}`), and, when it is created, related entities inline.
A related object that carries `@iot.id` is a link whatever else it holds: clients send back
whole entities they fetched, and their other properties are ignored.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import BadRequest, PayloadTooLarge, error_response
from api.geometry import GEOJSON_TYPES, geojson_text

Mode = Literal["create", "update"]


@dataclass(frozen=True)
class Sizes:
    """The largest text property and JSON object (in UTF-8 bytes) a written entity may
    hold: one entity must not make every read of its collection heavy."""

    text: int = 16 * 1024
    json: int = 64 * 1024


# Set per request by BodyLimit from the settings, as the principal is by Authentication.
sizes: ContextVar[Sizes] = ContextVar("sizes", default=Sizes())  # noqa: B039 (frozen)


class BodyLimit:
    """ASGI middleware: a request body past `max_bytes` is answered 413, by its
    Content-Length before it is read, or as the bytes arrive (a chunked body); and the
    sizes of written properties are set for the request."""

    def __init__(self, app: ASGIApp, max_bytes: int, max_text: int, max_json: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.sizes = Sizes(max_text, max_json)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await error_response(self._too_large())(scope, receive, send)
            return
        seen = 0

        async def receiving() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise self._too_large()
            return message

        token = sizes.set(self.sizes)
        try:
            await self.app(scope, receiving, send)
        finally:
            sizes.reset(token)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"the request body is larger than {self.max_bytes} bytes; "
                               "send fewer entities a request")


@dataclass(frozen=True)
class Field:
    """A property a body may give: how its value is checked, and whether it must be there."""

    kind: str
    required: bool = False


@dataclass(frozen=True)
class Link:
    """A navigation property a body may give: the entity set it leads to."""

    target: str
    to_one: bool
    required: bool = False


@dataclass(frozen=True)
class Schema:
    fields: dict[str, Field]
    links: dict[str, Link]
    server: frozenset[str] = frozenset()  # kept by the server: ignored in bodies


def _named(required: tuple[str, ...]) -> dict[str, Field]:
    return {name: Field("text", required=True) for name in required}


SCHEMAS: dict[str, Schema] = {
    "Things": Schema(
        {**_named(("name", "description")), "properties": Field("object")},
        {"Locations": Link("Locations", False),
         "HistoricalLocations": Link("HistoricalLocations", False),
         "Datastreams": Link("Datastreams", False)},
    ),
    "Locations": Schema(
        {**_named(("name", "description")), "encodingType": Field("geo_encoding", True),
         "location": Field("geometry", True), "properties": Field("object")},
        {"Things": Link("Things", False),
         "HistoricalLocations": Link("HistoricalLocations", False)},
    ),
    "HistoricalLocations": Schema(
        {"time": Field("instant", True)},
        {"Thing": Link("Things", True, required=True),
         "Locations": Link("Locations", False, required=True)},
    ),
    "Sensors": Schema(
        {**_named(("name", "description", "encodingType", "metadata")),
         "properties": Field("object")},
        {"Datastreams": Link("Datastreams", False)},
    ),
    "ObservedProperties": Schema(
        {**_named(("name", "definition", "description")), "properties": Field("object")},
        {"Datastreams": Link("Datastreams", False)},
    ),
    "Datastreams": Schema(
        {**_named(("name", "description", "observationType")),
         "unitOfMeasurement": Field("unit", True), "properties": Field("object")},
        {"Thing": Link("Things", True, required=True),
         "Sensor": Link("Sensors", True, required=True),
         "ObservedProperty": Link("ObservedProperties", True, required=True),
         "Observations": Link("Observations", False)},
        server=frozenset({"observedArea", "phenomenonTime", "resultTime"}),
    ),
    "Observations": Schema(
        {"phenomenonTime": Field("time"), "result": Field("result", True),
         "resultTime": Field("instant"), "resultQuality": Field("any"),
         "validTime": Field("interval"), "parameters": Field("object")},
        {"Datastream": Link("Datastreams", True, required=True),
         "FeatureOfInterest": Link("FeaturesOfInterest", True)},
    ),
    "FeaturesOfInterest": Schema(
        {**_named(("name", "description")), "encodingType": Field("geo_encoding", True),
         "feature": Field("geometry", True), "properties": Field("object")},
        {"Observations": Link("Observations", False)},
    ),
}

# (entity set, navigation) → the navigation of the related entity that leads back.
INVERSE: dict[tuple[str, str], str] = {
    ("Things", "Locations"): "Things",
    ("Things", "HistoricalLocations"): "Thing",
    ("Things", "Datastreams"): "Thing",
    ("Locations", "Things"): "Locations",
    ("Locations", "HistoricalLocations"): "Locations",
    ("HistoricalLocations", "Thing"): "HistoricalLocations",
    ("HistoricalLocations", "Locations"): "HistoricalLocations",
    ("Sensors", "Datastreams"): "Sensor",
    ("ObservedProperties", "Datastreams"): "ObservedProperty",
    ("Datastreams", "Thing"): "Datastreams",
    ("Datastreams", "Sensor"): "Datastreams",
    ("Datastreams", "ObservedProperty"): "Datastreams",
    ("Datastreams", "Observations"): "Datastream",
    ("Observations", "Datastream"): "Observations",
    ("Observations", "FeatureOfInterest"): "Observations",
    ("FeaturesOfInterest", "Observations"): "FeatureOfInterest",
}


@dataclass(frozen=True)
class Ref:
    """An existing entity a body links to; `where` names the link in messages."""

    entity_set: str
    id: int
    where: str = field(default="", compare=False)


# How a batch names an entity one of its earlier requests created (`"$sensor1"`): the
# resolver takes the name and where it sits, and answers the entity or raises an ApiError.
Aliases = Callable[[str, str], Ref]


@dataclass
class Draft:
    """One entity of a body, checked: converted values by property name, and its links.

    `implied` is the link its place in the body or the request path stands for (a
    Datastream inline under a Thing is that Thing's); the writer fills it in.
    """

    entity_set: str
    values: dict[str, Any]
    links: dict[str, list[Draft | Ref]] = field(default_factory=dict)
    where: str = ""
    implied: str | None = None


def parse_json(raw: bytes) -> Any:
    """A request body as JSON: 400 for malformed text, NaN, infinite numbers, invalid
    Unicode, or nesting too deep to read."""
    try:
        value = json.loads(raw, parse_constant=_no_constant, parse_float=_finite)
        # Lone surrogates pass json.loads but no database text takes them.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeError:
        raise BadRequest("the body holds text that is not valid Unicode") from None
    except RecursionError:
        raise BadRequest("the body nests too deeply") from None
    except ValueError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range for a number")
    return value


MAX_NESTING = 8


def draft(entity_set: str, body: Any, where: str, mode: Mode = "create",
          implied: str | None = None, depth: int = 0,
          aliases: Aliases | None = None) -> Draft:
    """The checked draft of `body`, an entity of `entity_set`.

    Args:
        entity_set: the set the entity belongs to, e.g. "Things".
        body: the decoded JSON.
        where: how messages name this entity, e.g. "Thing" or "Thing.Datastreams[0]".
        mode: "create" takes related entities inline and needs the mandatory links;
            "update" takes links to existing entities only.
        implied: the link the entity's place stands for; the body must not give it.
        depth: how deep inside the request's entity this one sits.
        aliases: in a batch, resolves links `{"@iot.id": "$name"}`; elsewhere None.

    Raises:
        BadRequest: naming the first property that is unknown, missing or malformed.
    """
    if not isinstance(body, dict):
        raise BadRequest(f"{where} must be a JSON object")
    if depth > MAX_NESTING:
        raise BadRequest(f"{where}: entities nest deeper than {MAX_NESTING} levels")
    schema = SCHEMAS[entity_set]
    if "@iot.id" in body and mode == "create":
        raise BadRequest(f"{where}: @iot.id is given by the server; leave it out to create "
                         "an entity, or give only @iot.id to link an existing one")
    out = Draft(entity_set, {}, where=where, implied=implied)
    for name, value in body.items():
        if _annotation(name) or name in schema.server:
            continue
        if name in schema.fields:
            out.values[name] = convert(schema.fields[name].kind, value, f"{where}.{name}")
        elif name in schema.links:
            if name == implied:
                raise BadRequest(f"{where}.{name}: given by where the entity is created; "
                                 "leave it out")
            out.links[name] = _links(entity_set, name, schema.links[name], value,
                                     f"{where}.{name}", mode, depth, aliases)
        else:
            raise BadRequest(f"{where}: unknown property {name!r}")
    _require(schema, out, body, mode)
    return out


def _annotation(name: str) -> bool:
    return name in ("@iot.id", "@iot.selfLink") or name.endswith("@iot.navigationLink")


def _require(schema: Schema, out: Draft, body: dict[str, Any], mode: Mode) -> None:
    for name, spec in schema.fields.items():
        if spec.required and name not in body:
            raise BadRequest(f"{out.where}: the mandatory property {name!r} is missing")
        out.values.setdefault(name, None)
    if mode == "update":
        return
    for name, link in schema.links.items():
        if link.required and name != out.implied and not out.links.get(name):
            raise BadRequest(f"{out.where}: the mandatory link {name!r} is missing; give "
                             f'{{"@iot.id": ...}} of an existing one or create one inline')


def _links(entity_set: str, name: str, link: Link, value: Any, where: str,
           mode: Mode, depth: int, aliases: Aliases | None) -> list[Draft | Ref]:
    if link.to_one:
        if not isinstance(value, dict):
            raise BadRequest(f"{where} must be an object")
        items = [value]
    elif not isinstance(value, list):
        raise BadRequest(f"{where} must be a list of objects")
    else:
        items = value
    inverse = INVERSE[(entity_set, name)]
    out: list[Draft | Ref] = []
    for i, item in enumerate(items):
        at = where if link.to_one else f"{where}[{i}]"
        if isinstance(item, dict) and "@iot.id" in item:
            out.append(reference(link.target, item, at, aliases))
        elif mode == "update":
            raise BadRequest(f"{at}: an update links existing entities by "
                             '{"@iot.id": ...} only')
        else:
            out.append(draft(link.target, item, at, "create", implied=inverse,
                             depth=depth + 1, aliases=aliases))
    return out


def reference(entity_set: str, item: dict[str, Any], where: str,
              aliases: Aliases | None = None) -> Ref:
    """The existing entity of `entity_set` that `item` names by its @iot.id; the item's
    other properties are ignored. In a batch, `"$name"` names what request `name` made."""
    value = item["@iot.id"]
    if aliases is not None and isinstance(value, str) and value.startswith("$"):
        made = aliases(value[1:], where)
        if made.entity_set != entity_set:
            raise BadRequest(f"{where}: {value} is not one of the {entity_set} but of the "
                             f"{made.entity_set}")
        return Ref(entity_set, made.id, where)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{where}: @iot.id must be an integer")
    if not 0 < value < 2**63:
        raise BadRequest(f"{where}: no entity has @iot.id {value}")
    return Ref(entity_set, value, where)


def convert(kind: str, value: Any, where: str) -> Any:
    """`value` checked for a property of `kind` and converted for the database."""
    if kind == "result" or kind == "any":
        return _sized(value, where)
    if value is None:
        if kind in ("object", "instant", "interval", "time"):
            return None
        raise BadRequest(f"{where} must not be null")
    return _CONVERTERS[kind](value, where)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{where} must be a string")
    limit = sizes.get().text
    if len(value) > limit // 4 and len(value.encode("utf-8", "surrogatepass")) > limit:
        raise BadRequest(f"{where} is longer than {limit} bytes")
    return value


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"{where} must be a JSON object")
    _sized(value, where)
    return value


def _sized(value: Any, where: str) -> Any:
    """`value`, unless as JSON it is longer than the limit of one object, or as a string
    longer than the limit of one text."""
    if isinstance(value, str):
        return _text(value, where)
    if isinstance(value, dict | list):
        _json_sized(json.dumps(value, ensure_ascii=False), where)
    return value


def _json_sized(text: str, where: str) -> str:
    limit = sizes.get().json
    if len(text) > limit // 4 and len(text.encode("utf-8", "surrogatepass")) > limit:
        raise BadRequest(f"{where} is larger than {limit} bytes as JSON")
    return text


def _geo_encoding(value: Any, where: str) -> str:
    if value not in GEOJSON_TYPES:
        raise BadRequest(f"{where} must be {GEOJSON_TYPES[0]!r} (or the older "
                         f"{GEOJSON_TYPES[1]!r}); this server keeps geometries as GeoJSON")
    return str(value)


def _unit(value: Any, where: str) -> dict[str, str | None]:
    unit = _object(value, where)
    for key, member in unit.items():
        if key not in ("name", "symbol", "definition"):
            raise BadRequest(f"{where}: unknown member {key!r}; a unit has name, symbol "
                             "and definition")
        if member is not None and not isinstance(member, str):
            raise BadRequest(f"{where}.{key} must be a string or null")
        if member is not None:
            _text(member, f"{where}.{key}")
    return {k: unit.get(k) for k in ("name", "symbol", "definition")}


_INSTANT = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})", re.ASCII)


def instant(value: Any, where: str) -> datetime:
    """An ISO 8601 time with a zone (`Z` or an offset) as an aware datetime."""
    if not isinstance(value, str) or not _INSTANT.fullmatch(value):
        raise BadRequest(f"{where} must be an ISO 8601 time with a zone, as "
                         f"2026-09-21T10:00:00Z or 2026-09-21T12:00:00+02:00, not {value!r}")
    try:
        return datetime.fromisoformat(value).astimezone(UTC)
    except (ValueError, OverflowError):
        raise BadRequest(f"{where}: {value!r} is not a valid time") from None


def interval(value: Any, where: str) -> tuple[datetime, datetime]:
    """An ISO 8601 interval `start/end` of two times with zones, start not after end."""
    if not isinstance(value, str) or value.count("/") != 1:
        raise BadRequest(f"{where} must be an ISO 8601 interval start/end, as "
                         f"2026-09-21T10:00:00Z/2026-09-21T11:00:00Z, not {value!r}")
    start, end = (instant(part, where) for part in value.split("/"))
    if end < start:
        raise BadRequest(f"{where}: the interval ends before it starts")
    return start, end


def _time(value: Any, where: str) -> tuple[datetime, datetime | None]:
    if isinstance(value, str) and "/" in value:
        return interval(value, where)
    return instant(value, where), None


def _geometry(value: Any, where: str) -> str:
    return _json_sized(geojson_text(value, where), where)


_CONVERTERS: dict[str, Any] = {
    "text": _text, "object": _object, "geo_encoding": _geo_encoding, "unit": _unit,
    "instant": instant, "interval": interval, "time": _time, "geometry": _geometry,
}
