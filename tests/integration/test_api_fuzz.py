"""Generated and mutated query options against the real API: never a 500."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PIECES = [
    "name", "description", "result", "phenomenonTime", "Datastream/Thing/name",
    "properties/site_role", "id", " eq ", " ne ", " gt ", " and ", " or ", "not ", " add ",
    " div ", " mod ", "(", ")", ",", "'Hornsgatan'", "''", "12", "-3.5e2", "9999999999999999999",
    "true", "null", "2026-09-21T10:00:00Z", "duration'P1D'", "geography'POINT(18 59)'",
    "length(", "substringof(", "st_within(", "geo.distance(", "year(", "round(", "now()",
    "$", "/", "'", " asc", " desc",
    "Datastreams/name", "Datastreams/Observations/result", "Locations/location", "Things/name",
    "Datastreams/any(d: d/name eq 'x')", "Observations/all(o: o/result gt 1)", "any()",
    "/any(", "/all(", "d:", "d/", " in ", "('a', 'b')", "(1, 2.5, null)", "Datastream/Thing/",
    "Datastreams(", "Observations(", "$count=true", "$top=1", "$skip=2", ";", "$levels=2",
    "WyJkZWZhdWx0IiwgIjIwMjYtMDktMjFUMTA6MDA6MDBaIiwgMV0",
]

queries = st.one_of(
    st.lists(st.sampled_from(PIECES), max_size=12).map("".join),
    st.text(max_size=40),
)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(option=st.sampled_from(["$filter", "$orderby", "$select", "$top", "$expand",
                               "$skiptoken"]),
       text=queries,
       entity=st.sampled_from(["Things", "Observations", "Locations", "Datastreams"]))
async def test_no_query_option_makes_the_api_fail(
    client: httpx.AsyncClient, option: str, text: str, entity: str
) -> None:
    response = await client.get(f"/v1.1/{entity}?{option}={quote(text, safe='')}")
    assert response.status_code in (200, 400, 404, 501), response.text
    body: Any = response.json()
    assert isinstance(body, dict)


# Writes: generated JSON bodies, and valid bodies with one part taken out, changed or added.

WRITE_STATUSES = (200, 201, 400, 404, 405, 409, 415, 424)
NAMES = [
    "name", "description", "properties", "encodingType", "location", "feature", "metadata",
    "definition", "observationType", "unitOfMeasurement", "phenomenonTime", "resultTime",
    "result", "resultQuality", "validTime", "parameters", "time", "@iot.id", "Thing", "Things",
    "Locations", "HistoricalLocations", "Datastreams", "Datastream", "Sensor",
    "ObservedProperty", "Observations", "FeatureOfInterest", "type", "coordinates",
    "geometries", "geometry", "symbol", "components", "dataArray", "requests", "id", "method",
    "url", "body", "headers", "atomicityGroup", "dependsOn", "op", "path", "value", "from",
]
LEAVES = [
    "2026-09-21T10:00:00Z", "2026-09-21T12:00:00+02:00/2026-09-21T13:00:00+02:00",
    "2026-09-21T10:00:00", "application/geo+json", "Point", "Polygon", "Feature", "post",
    "patch", "Things", "$1/Datastreams", "Datastreams(1)/Observations", "/name",
    "/properties/x", "replace", "add", "test", "FeatureOfInterest/id", "\u0000",
    2**63, -(2**63) - 1, 10**400, 1e308,
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12) | st.sampled_from(LEAVES),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(NAMES) | st.text(max_size=8), inner, max_size=5),
    max_leaves=20,
)
POINT = {"type": "Point", "coordinates": [18.07, 59.33]}
VALID: dict[str, Any] = {
    "Things": {
        "name": "Mast", "description": "A mast", "properties": {"floor": 1},
        "Locations": [{"name": "Odenplan", "description": "Mast", "encodingType":
                       "application/geo+json", "location": POINT}],
        "Datastreams": [{
            "name": "T", "description": "Temperature", "observationType": "OM_Measurement",
            "unitOfMeasurement": {"name": "degree Celsius", "symbol": "Cel",
                                  "definition": "ucum:Cel"},
            "Sensor": {"name": "S", "description": "d", "encodingType": "text/html",
                       "metadata": "m"},
            "ObservedProperty": {"@iot.id": 1},
            "Observations": [{"phenomenonTime": "2026-09-21T10:00:00Z", "result": 1.5}],
        }],
    },
    "Observations": {"phenomenonTime": "2026-09-21T10:00:00Z/2026-09-21T10:05:00Z",
                     "result": {"a": [1]}, "Datastream": {"@iot.id": 1},
                     "FeatureOfInterest": {"name": "F", "description": "d", "encodingType":
                                           "application/geo+json", "feature": POINT}},
    "CreateObservations": [{"Datastream": {"@iot.id": 1},
                            "components": ["phenomenonTime", "result"],
                            "dataArray": [["2026-09-21T11:00:00Z", 1], ["x", 2]]}],
    "$batch": {"requests": [
        {"id": "1", "method": "post", "url": "Things", "atomicityGroup": "g",
         "body": {"name": "M", "description": "d"}},
        {"id": "2", "method": "get", "url": "Things(1)"},
    ]},
}
TARGETS = [
    ("POST", "Things"), ("POST", "Locations"), ("POST", "HistoricalLocations"),
    ("POST", "Sensors"), ("POST", "ObservedProperties"), ("POST", "Datastreams"),
    ("POST", "Observations"), ("POST", "FeaturesOfInterest"), ("POST", "Things(1)/Locations"),
    ("POST", "Datastreams(1)/Observations"), ("POST", "CreateObservations"),
    ("POST", "$batch"), ("PATCH", "Things(1)"), ("PUT", "Datastreams(1)"),
    ("PATCH", "Locations(1)"), ("POST", "Things(1)"),
]


def _containers(value: Any, out: list[Any]) -> list[Any]:
    """Every object and list inside `value`, itself first."""
    if isinstance(value, dict | list):
        out.append(value)
        for item in value.values() if isinstance(value, dict) else value:
            _containers(item, out)
    return out


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(target=st.sampled_from(TARGETS), body=json_values,
       patch=st.booleans())
async def test_no_generated_body_makes_a_write_fail(
    client: httpx.AsyncClient, target: tuple[str, str], body: Any, patch: bool
) -> None:
    method, path = target
    content_type = "application/json-patch+json" if patch and method == "PATCH" \
        else "application/json"
    response = await client.request(method, f"/v1.1/{path}", json=body,
                                    headers={"content-type": content_type})
    assert response.status_code in WRITE_STATUSES, response.text
    assert isinstance(response.json(), dict | list) or response.content == b""


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(target=st.sampled_from(sorted(VALID)), data=st.data())
async def test_no_mutated_valid_body_makes_a_write_fail(
    client: httpx.AsyncClient, target: str, data: st.DataObject
) -> None:
    body = _copy(VALID[target])
    place = data.draw(st.sampled_from(_containers(body, [])))
    if isinstance(place, dict):
        key = data.draw(st.sampled_from([*place, *NAMES[:8]]))
        if key in place and data.draw(st.booleans()):
            del place[key]
        else:
            place[key] = data.draw(json_values)
    elif place:
        place[data.draw(st.integers(0, len(place) - 1))] = data.draw(json_values)
    response = await client.post(f"/v1.1/{target}", json=body)
    assert response.status_code in WRITE_STATUSES, response.text


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=60))
async def test_no_raw_body_makes_a_write_fail(client: httpx.AsyncClient, raw: bytes) -> None:
    response = await client.post("/v1.1/Things", content=raw,
                                  headers={"content-type": "application/json"})
    assert response.status_code in (201, 400), response.text


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
