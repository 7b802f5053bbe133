"""Other shapes of entities than the default JSON: the standard's dataArray for
Observations, CSV, and GeoJSON (RFC 7946).

Format names match whatever their case (`geojson`, `DATAARRAY`). CSV flattens to-one
expansions into columns named by their path (`Datastream/name`); a to-many expansion has no
single cell to go in, so CSV refuses it. A GeoJSON Feature's geometry is the entity's own
(a Location's, a FeatureOfInterest's, a Datastream's observedArea) or that of where the
entity is: a Thing's current Locations, an Observation's FeatureOfInterest, read for the
whole page in one query. Its properties are the entity as JSON shows it, expansions
included. A single entity is one Feature (RFC 7946, section 3.2), a collection a
FeatureCollection.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse, Response

from api import expand, query
from api.entities import ENTITY_SETS, EntityType
from api.errors import BadRequest
from api.odata import Expansion
from api.paths import Resource
from api.serialize import entity_json, value_json
from api.settings import ApiSettings
from core.queries import query as named_query

FORMATS = ("dataArray", "CSV", "GeoJSON")
_NAMES = {name.lower(): name for name in FORMATS}
# Sets whose geometry is a property of their own.
OWN_GEOMETRY = {"Locations": "location", "FeaturesOfInterest": "feature",
                "Datastreams": "observedArea"}
# Sets whose geometry is another entity's, read by a query of core/sql/formats.sql.
RELATED_GEOMETRY = {"Things": "thing_geometries", "Observations": "observation_geometries"}
GEOJSON_MEDIA_TYPE = "application/geo+json"
# What a feature needs read of its entity: the geometry, or for Observations their time.
_NEEDED = {**OWN_GEOMETRY, "Observations": "phenomenonTime"}


@dataclass(frozen=True)
class Shape:
    """A $resultFormat asked for, with what rendering in it needs of the request."""

    name: str  # as FORMATS spells it
    entity: EntityType
    select: list[str] | None
    expansions: tuple[Expansion, ...]
    base: str
    settings: ApiSettings
    columns: tuple[_Column, ...] = ()  # CSV's, made while the request is checked


def requested(
    raw: str | None, resource: Resource, select: list[str] | None,
    expansions: tuple[Expansion, ...], base: str, settings: ApiSettings,
) -> Shape | None:
    """The $resultFormat `raw` of a read of `resource`; None without one.

    Raises:
        BadRequest: the format is unknown, does not fit the entity set, or cannot hold
            the expansions asked for.
    """
    if raw is None:
        return None
    entity = resource.steps[-1].entity
    name = _NAMES.get(raw.lower())
    if name is None:
        raise BadRequest(f"$resultFormat must be one of {', '.join(FORMATS)}, not {raw!r}")
    if resource.member is not None or resource.ref:
        raise BadRequest("$resultFormat shapes entities, not a property or $ref")
    if name == "dataArray" and entity.set_name != "Observations":
        raise BadRequest("$resultFormat=dataArray is for Observations")
    if name == "GeoJSON" and entity.set_name not in (*OWN_GEOMETRY, *RELATED_GEOMETRY):
        raise BadRequest(f"{entity.set_name} have no geometry for GeoJSON; use "
                         f"{', '.join([*OWN_GEOMETRY, *RELATED_GEOMETRY])}")
    # CSV's columns refuse what CSV cannot hold before anything is read.
    columns = (_columns_of(entity, select, expansions, settings, ()) if name == "CSV"
               else [])
    return Shape(name, entity, select, expansions, base, settings, tuple(columns))


def needed_columns(shape: Shape | None, select: list[str] | None) -> list[str] | None:
    """The properties to read: a GeoJSON feature needs its geometry, or for Observations
    their time (which narrows the search for their features), even if not selected."""
    if shape is None or shape.name != "GeoJSON" or select is None:
        return select
    needed = _NEEDED.get(shape.entity.set_name)
    return select if needed is None or needed in select else [*select, needed]


async def render(shape: Shape, pool: Any, rows: list[dict[str, Any]],
                 extra: dict[str, Any]) -> Response:
    """The page `rows` in the format of `shape`; `extra` holds @iot.count and
    @iot.nextLink."""
    if shape.name == "dataArray":
        return JSONResponse({**_data_array(rows, _components(shape.entity, shape.select),
                                           shape.base), **extra})
    # CSV and GeoJSON have no place for them in the body: they travel as headers.
    headers = {}
    if "@iot.nextLink" in extra:
        headers["Link"] = f'<{extra["@iot.nextLink"]}>; rel="next"'
    if "@iot.count" in extra:
        headers["X-Total-Count"] = str(extra["@iot.count"])
    if shape.name == "CSV":
        return Response(await _csv(shape, pool, rows), media_type="text/csv; charset=utf-8",
                        headers=headers)
    features = await _features(shape, pool, rows)
    return JSONResponse({"type": "FeatureCollection", "features": features}, headers=headers,
                        media_type=GEOJSON_MEDIA_TYPE)


async def render_one(shape: Shape, pool: Any, row: dict[str, Any]) -> Response:
    """One entity in the format of `shape`: a GeoJSON Feature, or a page of one."""
    if shape.name != "GeoJSON":
        return await render(shape, pool, [row], {})
    (feature,) = await _features(shape, pool, [row])
    return JSONResponse(feature, media_type=GEOJSON_MEDIA_TYPE)


def _components(entity: EntityType, select: list[str] | None) -> list[str]:
    """Without $select every property after the id; with it exactly what it names."""
    if select is None:
        return ["id", *entity.props]
    return [n for n in select if n == "id" or n in entity.props]


def _data_array(rows: list[dict[str, Any]], components: list[str], base: str) -> dict[str, Any]:
    groups: dict[int, list[list[Any]]] = {}
    for row in rows:
        groups.setdefault(row["_datastream"], []).append(
            [value_json(row[c]) for c in components])
    return {"value": [
        {"Datastream@iot.navigationLink": f"{base}/Datastreams({datastream})",
         "components": components, "dataArray@iot.count": len(values), "dataArray": values}
        for datastream, values in groups.items()
    ]}


@dataclass(frozen=True)
class _Column:
    """A CSV column: its header, the expansions leading to its entity, and its key in
    that entity's JSON."""

    header: str
    path: tuple[str, ...]
    key: str

    def value(self, body: dict[str, Any]) -> Any:
        found: Any = body
        for step in self.path:
            found = found.get(step) if found is not None else None
        return found.get(self.key) if found is not None else None


def _columns_of(entity: EntityType, select: list[str] | None, items: tuple[Expansion, ...],
                settings: ApiSettings, path: tuple[str, ...]) -> list[_Column]:
    columns = [_Column("/".join((*path, name)), path, "@iot.id" if name == "id" else name)
               for name in _components(entity, select)]
    for item in items:  # one step each (api/expand.py)
        name = item.path[0]
        nav = entity.navs.get(name)
        if nav is None:
            raise BadRequest(f"$expand: {entity.name} has no navigation property {name!r}",
                             item.position)
        if not nav.to_one:
            raise BadRequest(
                f"$resultFormat=CSV flattens expansions of one entity (such as "
                f"Datastream/name) into columns, and {entity.name}/{name} is a collection: "
                f"expand it in JSON, or read {name} as CSV on its own", item.position)
        target = ENTITY_SETS[nav.target]
        inner = query.options(item.options, target, settings.page_size,
                              settings.max_page_size).select
        columns += _columns_of(target, inner, item.expand, settings, (*path, name))
    return columns


async def _csv(shape: Shape, pool: Any, rows: list[dict[str, Any]]) -> str:
    bodies = await _bodies(shape, pool, rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([c.header for c in shape.columns])
    for body in bodies:
        writer.writerow([_cell(c.value(body)) for c in shape.columns])
    return out.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value


async def _bodies(shape: Shape, pool: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows as JSON shows them, with their expansions."""
    bodies = [entity_json(row, shape.entity, shape.base, shape.select) for row in rows]
    if shape.expansions and rows:
        async with pool.acquire() as conn:
            await expand.expand(conn, shape.entity, rows, bodies, shape.expansions,
                                shape.base, shape.settings)
    return bodies


async def _features(shape: Shape, pool: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    bodies = await _bodies(shape, pool, rows)
    geometries = await _geometries(shape.entity, pool, rows)
    own = OWN_GEOMETRY.get(shape.entity.set_name)
    features = []
    for row, body in zip(rows, bodies, strict=True):
        if own is not None:
            body.pop(own, None)  # it is the feature's geometry
        features.append({"type": "Feature", "id": row["id"],
                         "geometry": geometries.get(row["id"]), "properties": body})
    return features


async def _geometries(entity: EntityType, pool: Any,
                      rows: list[dict[str, Any]]) -> dict[int, Any]:
    """Each row's GeoJSON geometry by id; a row without one is left out."""
    own = OWN_GEOMETRY.get(entity.set_name)
    if own is not None:
        return {row["id"]: row[own] for row in rows}
    if not rows:
        return {}
    ids = [row["id"] for row in rows]
    args: list[Any] = [ids]
    if entity.set_name == "Observations":
        # Their times bound the chunks of the hypertable to look in.
        times = [row["phenomenonTime"].lower for row in rows]
        args += [min(times), max(times)]
    async with pool.acquire() as conn:
        found = await conn.fetch(named_query("formats", RELATED_GEOMETRY[entity.set_name]),
                                 *args)
    return {r["id"]: r["geometry"] for r in found}
