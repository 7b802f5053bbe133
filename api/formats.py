"""Other shapes of a collection than the default JSON: the standard's dataArray for
Observations, CSV, and GeoJSON (RFC 7946) for entities that have a geometry."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from fastapi.responses import JSONResponse, Response

from api.entities import EntityType
from api.errors import BadRequest
from api.serialize import value_json

FORMATS = ("dataArray", "CSV", "GeoJSON")
GEOMETRY = {"Locations": "location", "FeaturesOfInterest": "feature",
            "Datastreams": "observedArea"}


def check(name: str | None, entity: EntityType) -> None:
    """400 for a $resultFormat this server does not have, or that does not fit the set."""
    if name is None:
        return
    if name not in FORMATS:
        raise BadRequest(f"$resultFormat must be one of {', '.join(FORMATS)}, not {name!r}")
    if name == "dataArray" and entity.set_name != "Observations":
        raise BadRequest("$resultFormat=dataArray is for Observations")
    if name == "GeoJSON" and entity.set_name not in GEOMETRY:
        raise BadRequest(f"{entity.set_name} have no geometry for GeoJSON; "
                         f"use {', '.join(GEOMETRY)}")


def render(
    name: str, entity: EntityType, rows: list[dict[str, Any]], select: list[str] | None,
    base: str, extra: dict[str, Any],
) -> Response:
    """The page `rows` in format `name`; `extra` holds @iot.count and @iot.nextLink."""
    # Without $select every property after the id; with it exactly what it names.
    components = (["id", *entity.props] if select is None else
                  [n for n in select if n == "id" or n in entity.props])
    if name == "dataArray":
        return JSONResponse({**_data_array(rows, components, base), **extra})
    # CSV has no place for them in the body: count and next page travel as headers.
    headers = {}
    if "@iot.nextLink" in extra:
        headers["Link"] = f'<{extra["@iot.nextLink"]}>; rel="next"'
    if "@iot.count" in extra:
        headers["X-Total-Count"] = str(extra["@iot.count"])
    if name == "CSV":
        return Response(_csv(rows, components), media_type="text/csv; charset=utf-8",
                        headers=headers)
    return JSONResponse(_geojson(entity, rows, components), headers=headers,
                        media_type="application/geo+json")


def needed_columns(name: str | None, entity: EntityType,
                   select: list[str] | None) -> list[str] | None:
    """The properties to read: a GeoJSON feature needs its geometry even if not selected."""
    if name != "GeoJSON" or select is None:
        return select
    geometry = GEOMETRY[entity.set_name]
    return select if geometry in select else [*select, geometry]


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


def _csv(rows: list[dict[str, Any]], components: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(components)
    for row in rows:
        writer.writerow([_cell(value_json(row[c])) for c in components])
    return out.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value


def _geojson(entity: EntityType, rows: list[dict[str, Any]],
             components: list[str]) -> dict[str, Any]:
    geometry = GEOMETRY[entity.set_name]
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": row["id"], "geometry": row.get(geometry),
         "properties": {c: value_json(row[c]) for c in components
                        if c not in ("id", geometry)}}
        for row in rows
    ]}
