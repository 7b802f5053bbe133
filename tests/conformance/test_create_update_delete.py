"""Conformance class Create-Update-Delete: POST with deep insert and links, automatic
HistoricalLocations and FeaturesOfInterest, PATCH, PUT, JSON-Patch, DELETE with cascades,
and the Datastream times the server maintains."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conformance.conftest import get
from tests.conformance.dataset import STATIONS, Dataset

CONFORMANCE_CLASS = "http://www.opengis.net/spec/iot_sensing/1.1/req/create-update-delete"

POINT = {"type": "Point", "coordinates": [18.0686, 59.3293]}


async def post(api: httpx.AsyncClient, url: str, body: Any, status: int = 201) -> Any:
    response = await api.post(url, json=body)
    assert response.status_code == status, response.text
    if status == 201:
        created = response.json()
        assert response.headers["location"] == created["@iot.selfLink"]
        return created
    return response.json()


async def total(api: httpx.AsyncClient, entity_set: str) -> int:
    return int((await get(api, f"/v1.1/{entity_set}?$count=true&$top=0"))["@iot.count"])


def thing_body(name: str) -> dict[str, Any]:
    return {"name": name, "description": "Made by a conformance test",
            "Locations": [{"name": f"{name} place", "description": "Sergels torg",
                           "encodingType": "application/geo+json", "location": POINT}]}


def stream_body(dataset: Dataset, name: str) -> dict[str, Any]:
    return {"name": name, "description": "A stream made by a test",
            "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/"
                               "OM_Measurement",
            "unitOfMeasurement": {"name": "degree Celsius", "symbol": "°C",
                                  "definition": "urn:celsius"},
            "Sensor": {"name": "Thermometer", "description": "PT100",
                       "encodingType": "application/pdf", "metadata": "urn:pt100"},
            "ObservedProperty": {"@iot.id": dataset.observed_properties["NO2"]}}


async def test_a_created_entity_is_answered_and_can_be_read_back(
    api: httpx.AsyncClient, dataset: Dataset
) -> None:
    created = await post(api, "/v1.1/Sensors", {
        "name": "Anemometer", "description": "Wind speed", "encodingType": "application/pdf",
        "metadata": "urn:anemometer", "properties": {"serial": 7}})
    read = await get(api, f"/v1.1/Sensors({created['@iot.id']})")
    assert read == created
    assert read["properties"] == {"serial": 7}


async def test_a_missing_mandatory_property_is_400_naming_it(
    api: httpx.AsyncClient, dataset: Dataset
) -> None:
    before = await total(api, "Sensors")
    body = await post(api, "/v1.1/Sensors", {"name": "x", "description": "y",
                                             "encodingType": "application/pdf"}, 400)
    assert "metadata" in body["message"]
    assert await total(api, "Sensors") == before


async def test_deep_insert_is_all_or_nothing(api: httpx.AsyncClient, dataset: Dataset) -> None:
    before = {s: await total(api, s) for s in ("Things", "Locations", "Datastreams", "Sensors")}
    broken = thing_body("Half a station")
    bad_stream = stream_body(dataset, "No unit")
    del bad_stream["unitOfMeasurement"]
    broken["Datastreams"] = [stream_body(dataset, "Fine"), bad_stream]
    body = await post(api, "/v1.1/Things", broken, 400)
    assert "unitOfMeasurement" in body["message"]
    assert {s: await total(api, s) for s in before} == before


async def test_deep_insert_links_existing_entities_by_id(
    api: httpx.AsyncClient, dataset: Dataset
) -> None:
    thing = await post(api, "/v1.1/Things", {**thing_body("Linked"),
                                             "Datastreams": [stream_body(dataset, "Temp")]})
    streams = await get(api, f"/v1.1/Things({thing['@iot.id']})/Datastreams"
                             "?$expand=ObservedProperty")
    assert [s["ObservedProperty"]["@iot.id"] for s in streams["value"]] == [
        dataset.observed_properties["NO2"]]
    missing = stream_body(dataset, "Dangling")
    missing["ObservedProperty"] = {"@iot.id": 987654321}
    await post(api, f"/v1.1/Things({thing['@iot.id']})/Datastreams", missing, 400)


async def test_posting_under_a_navigation_links_to_the_parent(
    api: httpx.AsyncClient, dataset: Dataset
) -> None:
    thing = dataset.things[STATIONS[1].name]
    created = await post(api, f"/v1.1/Things({thing})/Datastreams",
                         stream_body(dataset, "Torkel temperature"))
    parent = await get(api, f"/v1.1/Datastreams({created['@iot.id']})/Thing")
    assert parent["@iot.id"] == thing


async def test_a_new_location_of_a_thing_is_recorded_as_a_historical_location(
    api: httpx.AsyncClient, dataset: Dataset
) -> None:
    thing = await post(api, "/v1.1/Things", thing_body("Moving"))
    first = await get(api, f"/v1.1/Things({thing['@iot.id']})/HistoricalLocations")
    assert len(first["value"]) == 1
    moved = await post(api, f"/v1.1/Things({thing['@iot.id']})/Locations", {
        "name": "Slussen", "description": "After the move",
        "encodingType": "application/geo+json",
        "location": {"type": "Point", "coordinates": [18.0717, 59.3195]}})
    history = await get(api, f"/v1.1/Things({thing['@iot.id']})/HistoricalLocations"
                             "?$orderby=time desc&$expand=Locations")
    assert len(history["value"]) == 2
    assert [loc["@iot.id"] for loc in history["value"][0]["Locations"]] == [moved["@iot.id"]]


async def test_an_observation_without_a_feature_gets_one_from_its_location_once(
    api: httpx.AsyncClient, dataset: Dataset
) -> None:
    thing = await post(api, "/v1.1/Things", {**thing_body("Featured"),
                                             "Datastreams": [stream_body(dataset, "Temp")]})
    ds = (await get(api, f"/v1.1/Things({thing['@iot.id']})/Datastreams"))["value"][0]
    features_before = await total(api, "FeaturesOfInterest")
    one = await post(api, f"/v1.1/Datastreams({ds['@iot.id']})/Observations",
                     {"phenomenonTime": "2026-10-01T12:00:00Z", "result": 7.5})
    two = await post(api, "/v1.1/Observations", {
        "phenomenonTime": "2026-10-01T12:10:00+02:00", "result": 8,
        "Datastream": {"@iot.id": ds["@iot.id"]}})
    f1 = await get(api, f"/v1.1/Observations({one['@iot.id']})/FeatureOfInterest")
    f2 = await get(api, f"/v1.1/Observations({two['@iot.id']})/FeatureOfInterest")
    assert f1["@iot.id"] == f2["@iot.id"]
    assert f1["feature"] == POINT
    assert await total(api, "FeaturesOfInterest") == features_before + 1
    # A time with an offset is an instant.
    assert two["phenomenonTime"] == "2026-10-01T10:10:00Z"


async def test_the_server_maintains_datastream_times_and_observed_area(
    api: httpx.AsyncClient, dataset: Dataset
) -> None:
    stream = STATIONS[0].streams[0]
    ds = await get(api, f"/v1.1/Datastreams({dataset.datastreams[stream.name]})")
    times = stream.times()
    assert ds["phenomenonTime"] == f"{times[0]}/{times[-1]}"
    assert ds["observedArea"] == {"type": "Point",
                                  "coordinates": [STATIONS[0].lon, STATIONS[0].lat]}


async def test_patch_changes_only_what_it_names_and_put_replaces(
    api: httpx.AsyncClient, dataset: Dataset
) -> None:
    thing = await post(api, "/v1.1/Things", {**thing_body("Patched"),
                                             "properties": {"a": 1, "b": 2}})
    url = f"/v1.1/Things({thing['@iot.id']})"
    patched = await api.patch(url, json={"name": "Patched again"})
    assert patched.status_code == 200, patched.text
    now = await get(api, url)
    assert (now["name"], now["description"], now["properties"]) == (
        "Patched again", "Made by a conformance test", {"a": 1, "b": 2})
    put = await api.put(url, json={"name": "Replaced", "description": "All new"})
    assert put.status_code == 200, put.text
    now = await get(api, url)
    assert (now["name"], now["description"], now.get("properties")) == (
        "Replaced", "All new", None)
    # Locations are kept: PUT replaces properties, not relations it does not name.
    assert len((await get(api, f"{url}/Locations"))["value"]) == 1


async def test_json_patch_applies_its_operations(
    api: httpx.AsyncClient, dataset: Dataset
) -> None:
    thing = await post(api, "/v1.1/Things", {**thing_body("JSON patched"),
                                             "properties": {"colour": "red"}})
    url = f"/v1.1/Things({thing['@iot.id']})"
    response = await api.patch(url, content=(
        b'[{"op": "replace", "path": "/properties/colour", "value": "blue"},'
        b' {"op": "add", "path": "/properties/size", "value": 3}]'),
        headers={"content-type": "application/json-patch+json"})
    assert response.status_code == 200, response.text
    assert (await get(api, url))["properties"] == {"colour": "blue", "size": 3}
    bad = await api.patch(url, content=b'[{"op": "remove", "path": "/nope/x"}]',
                          headers={"content-type": "application/json-patch+json"})
    assert bad.status_code == 400, bad.text


async def test_deleting_a_thing_takes_its_datastreams_observations_and_history(
    api: httpx.AsyncClient, dataset: Dataset
) -> None:
    thing = await post(api, "/v1.1/Things", {**thing_body("Doomed"),
                                             "Datastreams": [stream_body(dataset, "Temp")]})
    url = f"/v1.1/Things({thing['@iot.id']})"
    ds = (await get(api, f"{url}/Datastreams"))["value"][0]["@iot.id"]
    obs = await post(api, f"/v1.1/Datastreams({ds})/Observations",
                     {"phenomenonTime": "2026-10-01T12:00:00Z", "result": 1.0})
    history = (await get(api, f"{url}/HistoricalLocations"))["value"][0]["@iot.id"]
    location = (await get(api, f"{url}/Locations"))["value"][0]["@iot.id"]
    response = await api.delete(url)
    assert response.status_code == 200, response.text
    for gone in (url, f"/v1.1/Datastreams({ds})", f"/v1.1/Observations({obs['@iot.id']})",
                 f"/v1.1/HistoricalLocations({history})"):
        await get(api, gone, 404)
    # A Location may serve other Things; it stays.
    await get(api, f"/v1.1/Locations({location})")
    assert (await api.delete(url)).status_code == 404


async def test_deleting_a_sensor_or_feature_takes_what_depends_on_it(
    api: httpx.AsyncClient, dataset: Dataset
) -> None:
    thing = await post(api, "/v1.1/Things", {**thing_body("Sensor gone"),
                                             "Datastreams": [stream_body(dataset, "Temp")]})
    ds = (await get(api, f"/v1.1/Things({thing['@iot.id']})/Datastreams"
                         "?$expand=Sensor"))["value"][0]
    obs = await post(api, f"/v1.1/Datastreams({ds['@iot.id']})/Observations",
                     {"phenomenonTime": "2026-10-01T12:00:00Z", "result": 1.0})
    feature = await get(api, f"/v1.1/Observations({obs['@iot.id']})/FeatureOfInterest")
    assert (await api.delete(f"/v1.1/FeaturesOfInterest({feature['@iot.id']})")
            ).status_code == 200
    await get(api, f"/v1.1/Observations({obs['@iot.id']})", 404)
    await get(api, f"/v1.1/Datastreams({ds['@iot.id']})")
    assert (await api.delete(f"/v1.1/Sensors({ds['Sensor']['@iot.id']})")).status_code == 200
    await get(api, f"/v1.1/Datastreams({ds['@iot.id']})", 404)


async def test_a_body_that_is_not_json_is_400(api: httpx.AsyncClient, dataset: Dataset) -> None:
    response = await api.post("/v1.1/Things", content=b"{name: 'x'",
                              headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["message"]


