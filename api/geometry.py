"""GeoJSON geometries in request bodies (RFC 7946), checked before PostGIS reads them, so that
a malformed one is a 400 that says what is wrong rather than a database error."""

from __future__ import annotations

import json
import math
from typing import Any

from api.errors import BadRequest

GEOJSON_TYPES = ("application/geo+json", "application/vnd.geo+json")

# Per geometry type: how deep the coordinates nest, and the fewest positions per list.
_NESTING = {
    "Point": 0, "MultiPoint": 1, "LineString": 1, "MultiLineString": 2, "Polygon": 2,
    "MultiPolygon": 3,
}
# Far beyond any longitude, latitude or height; keeps huge integers from PostGIS.
_LARGEST = 1e9


def geojson_text(value: Any, where: str) -> str:
    """The geometry `value` (or a Feature's geometry) as GeoJSON text, members other than
    the geometry's own left out.

    Raises:
        BadRequest: `value` is no GeoJSON geometry; the message names `where`.
    """
    return json.dumps(_geometry(value, where, depth=0))


def _geometry(value: Any, where: str, depth: int) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"{where} must be a GeoJSON geometry object")
    kind = value.get("type")
    if kind == "Feature" and depth == 0:
        return _geometry(value.get("geometry"), f"{where}.geometry", depth + 1)
    if kind == "GeometryCollection":
        members = value.get("geometries")
        if not isinstance(members, list) or depth > 2:
            raise BadRequest(f"{where}: a GeometryCollection needs a list of geometries")
        return {"type": kind, "geometries": [
            _geometry(m, f"{where}.geometries[{i}]", depth + 1) for i, m in enumerate(members)
        ]}
    if not isinstance(kind, str) or kind not in _NESTING:
        raise BadRequest(f"{where}: {kind!r} is not a GeoJSON geometry type "
                         f"({', '.join([*_NESTING, 'GeometryCollection'])})")
    coordinates = value.get("coordinates")
    _check(coordinates, _NESTING[kind], kind, f"{where}.coordinates")
    return {"type": kind, "coordinates": coordinates}


def _check(coordinates: Any, nesting: int, kind: str, where: str) -> None:
    if nesting == 0:
        _position(coordinates, where)
        return
    if not isinstance(coordinates, list):
        raise BadRequest(f"{where} must be a list")
    for i, item in enumerate(coordinates):
        _check(item, nesting - 1, kind, f"{where}[{i}]")
    if kind in ("LineString", "MultiLineString") and nesting == 1 and len(coordinates) < 2:
        raise BadRequest(f"{where}: a line needs at least two positions")
    if kind in ("Polygon", "MultiPolygon") and nesting == 1 \
            and (len(coordinates) < 4 or coordinates[0] != coordinates[-1]):
        raise BadRequest(f"{where}: a polygon ring needs at least four positions, "
                         "the last equal to the first")
    if kind in ("Polygon", "MultiPolygon") and nesting == 2 and not coordinates:
        raise BadRequest(f"{where}: a polygon needs at least one ring")


def _position(value: Any, where: str) -> None:
    if not isinstance(value, list) or not 2 <= len(value) <= 3:
        raise BadRequest(f"{where} must be a position: [longitude, latitude] or with height")
    for number in value:
        if isinstance(number, bool) or not isinstance(number, int | float) \
                or not (isinstance(number, int) or math.isfinite(number)) \
                or abs(number) > _LARGEST:
            raise BadRequest(f"{where}: coordinates must be numbers of at most {_LARGEST:g}")
