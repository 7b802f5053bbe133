"""The OpenAPI 3.1 description of the API.

The SensorThings paths are served by a few generic routes (any resource path of any
depth), which say little on their own; this module describes each entity set, entity and
navigation as its own path, with the query options, the body schemas and the answers, so
that generated clients and the interactive docs at /docs show the real API.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.entities import ENTITY_SETS, EntityType

_JSON_TYPES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "datetime": {"type": "string", "description": "ISO 8601 instant, or interval start/end"},
    "geometry": {"type": "object", "description": "GeoJSON geometry (RFC 7946)"},
    "json": {},
}

_OPTIONS = [
    ("$filter", "string", "OData filter expression, e.g. `result gt 40 and "
     "phenomenonTime ge 2026-10-01T00:00:00Z`"),
    ("$expand", "string", "related entities inline, nested with their own options, e.g. "
     "`Datastreams($expand=Observations($top=1;$orderby=phenomenonTime desc))`"),
    ("$select", "string", "comma-separated properties to return; `@iot.id` or `id` for the id"),
    ("$orderby", "string", "comma-separated properties, each `asc` or `desc` in any case"),
    ("$top", "integer", "page size"),
    ("$skip", "integer", "entities to skip"),
    ("$skiptoken", "string", "where the next page of Observations starts; taken from "
     "@iot.nextLink, never written by hand"),
    ("$count", "boolean", "add `@iot.count`, the number of entities matching $filter"),
    ("$resultFormat", "string", "`dataArray` (Observations), `CSV` (any set) or `GeoJSON` "
     "(Things, Locations, Datastreams, Observations, FeaturesOfInterest), in any case"),
]


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Error"}}}}


def _schema(entity: EntityType) -> dict[str, Any]:
    props: dict[str, Any] = {
        "@iot.id": {"type": "integer", "readOnly": True},
        "@iot.selfLink": {"type": "string", "format": "uri", "readOnly": True},
    }
    for name, prop in entity.props.items():
        props[name] = dict(_JSON_TYPES.get(prop.kind, {}))
    for name, nav in entity.navs.items():
        props[f"{name}@iot.navigationLink"] = {"type": "string", "format": "uri",
                                              "readOnly": True}
        target = {"$ref": f"#/components/schemas/{ENTITY_SETS[nav.target].name}"}
        props[name] = target if nav.to_one else {"type": "array", "items": target}
    return {"type": "object", "properties": props}


def _collection(entity: EntityType) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{entity.name}"}
    return {"type": "object", "properties": {
        "@iot.count": {"type": "integer"},
        "@iot.nextLink": {"type": "string", "format": "uri"},
        "value": {"type": "array", "items": ref},
    }}


def _paths(entity: EntityType) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{entity.name}"}
    one = {"application/json": {"schema": ref}}
    tag = [entity.set_name]
    query = [{"name": name, "in": "query", "required": False, "description": text,
              "schema": {"type": kind}} for name, kind, text in _OPTIONS]
    ident = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}]
    paths: dict[str, Any] = {
        f"/v1.1/{entity.set_name}": {
            "get": {"tags": tag, "summary": f"List {entity.set_name}", "parameters": query,
                    "responses": {"200": {"description": "a page", "content": {
                        "application/json": {"schema": _collection(entity)}}},
                        "400": _error("a malformed query option")}},
            "post": {"tags": tag, "summary": f"Create a {entity.name} (with deep insert)",
                     "requestBody": {"required": True, "content": one},
                     "responses": {"201": {"description": "created", "content": one},
                                   "400": _error("a malformed or incomplete body")}},
        },
        f"/v1.1/{entity.set_name}({{id}})": {
            "parameters": ident,
            "get": {"tags": tag, "summary": f"One {entity.name}", "parameters": query[1:3],
                    "responses": {"200": {"description": "the entity", "content": one},
                                  "404": _error("no such entity")}},
            "patch": {"tags": tag, "summary": f"Update a {entity.name} (merge, or "
                      "application/json-patch+json)",
                      "requestBody": {"required": True, "content": one},
                      "responses": {"200": {"description": "updated", "content": one},
                                    "404": _error("no such entity")}},
            "put": {"tags": tag, "summary": f"Replace a {entity.name}",
                    "requestBody": {"required": True, "content": one},
                    "responses": {"200": {"description": "replaced", "content": one},
                                  "404": _error("no such entity")}},
            "delete": {"tags": tag, "summary": f"Delete a {entity.name} and what depends on it",
                       "responses": {"200": {"description": "deleted"},
                                     "404": _error("no such entity")}},
        },
    }
    for name, prop in entity.props.items():
        paths[f"/v1.1/{entity.set_name}({{id}})/{name}"] = {"parameters": ident, "get": {
            "tags": tag, "summary": f"The {name} of a {entity.name} (`/$value` for the "
            "bare value)",
            "responses": {"200": {"description": "the property", "content": {
                "application/json": {"schema": {"type": "object", "properties": {
                    name: _JSON_TYPES.get(prop.kind, {})}}}}}}}}
    for name, nav in entity.navs.items():
        target = ENTITY_SETS[nav.target]
        schema = ({"$ref": f"#/components/schemas/{target.name}"} if nav.to_one
                  else _collection(target))
        paths[f"/v1.1/{entity.set_name}({{id}})/{name}"] = {"parameters": ident, "get": {
            "tags": tag, "summary": f"The {name} of a {entity.name}",
            "parameters": query if not nav.to_one else query[1:3],
            "responses": {"200": {"description": name, "content": {
                "application/json": {"schema": schema}}}}}}
    return paths


_METHODS = ("get", "post", "patch", "put", "delete")
BEARER, BASIC = "bearer", "basic"
# Paths whose POST need not carry a key: a $batch of GETs reads what a GET reads.
_KEY_OPTIONAL_POSTS = ("/v1.1/$batch",)


def _secure(doc: dict[str, Any]) -> None:
    """The API key as the bearer or basic security scheme: optional for reads (without
    one, open data), required for writes and for /admin."""
    doc["components"]["securitySchemes"] = {
        BEARER: {"type": "http", "scheme": "bearer",
                 "description": "An API key of an agency, `sp_<key_id>_<secret>`, made with "
                                "`stadspuls keys create`; never in the URL"},
        BASIC: {"type": "http", "scheme": "basic",
                "description": "The same API key as HTTP Basic: the key id (`k…`) as "
                               "username, the whole key as password"}}
    keyed: list[dict[str, list[str]]] = [{BEARER: []}, {BASIC: []}]
    for path, item in doc["paths"].items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            optional = ((method == "get" and not path.startswith("/admin"))
                        or (method == "post" and path in _KEY_OPTIONAL_POSTS))
            operation["security"] = [{}, *keyed] if optional else list(keyed)
            responses = operation.setdefault("responses", {})
            responses.setdefault("401", _error("a key that is not valid, or none where one "
                                               "is needed"))
            if not optional:
                responses.setdefault("403", _error("the key may not do this"))
            responses.setdefault("429", _error("past the rate limit; see Retry-After"))


def document(app: FastAPI) -> dict[str, Any]:
    """The whole description: the routes FastAPI knows, and every SensorThings path."""
    if app.openapi_schema is None:
        doc = get_openapi(title=app.title, version=app.version, routes=app.routes,
                          description="OGC SensorThings API v1.1 (Sensing) for the city's "
                          "sensor data, with its MQTT extension, and extras under /api.")
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        schemas["Error"] = {"type": "object", "required": ["code", "message"], "properties": {
            "code": {"type": "string"}, "message": {"type": "string"},
            "position": {"type": "integer", "description": "where in the expression"}}}
        for entity in ENTITY_SETS.values():
            schemas[entity.name] = _schema(entity)
            doc["paths"].update(_paths(entity))
        _secure(doc)
        app.openapi_schema = doc
    return app.openapi_schema
