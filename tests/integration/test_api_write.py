"""Create, update and delete through the SensorThings API on the real database: deep
inserts, links, the automatic entities, Datastream summaries, updates, cascades, results."""

from __future__ import annotations

from typing import Any

import pytest

from core.database import connect
from devices.fleet import stockholm
from devices.provision import provision
from tests.integration.conftest import eventually
from tests.integration.readings import datastream as fleet_datastream
from tests.integration.writes import (
    BASE,
    POINT,
    T0,
    Api,
    counts,
    datastream,
    grown,
    location,
    new_datastream,
    observed_property,
    sensor,
    thing,
)

JSON_PATCH = "application/json-patch+json"


def feature_at(coordinates: list[float], name: str = "Street") -> dict[str, Any]:
    return {"name": name, "description": "The street outside",
            "encodingType": "application/geo+json",
            "feature": {"type": "Point", "coordinates": coordinates}}


def two_observations(first: Any = 21.5, second: Any = 21.7) -> list[dict[str, Any]]:
    return [{"phenomenonTime": T0, "result": first},
            {"phenomenonTime": "2026-09-21T10:01:00Z", "result": second}]


async def test_a_deep_insert_creates_exactly_the_rows_it_describes(
    api: Api, fleet_db: Any
) -> None:
    before = await counts(fleet_db)
    response = await api.client.post("/v1.1/Things", json=thing(
        properties={"mast": "A"}, Locations=[location()],
        Datastreams=[
            datastream("Temperature", Sensor=sensor(), ObservedProperty=observed_property(),
                       Observations=two_observations()),
            datastream("Humidity", Sensor=sensor("Hygrometer"),
                       ObservedProperty=observed_property("Relative humidity")),
        ]))
    assert response.status_code == 201, response.text
    made = response.json()
    assert response.headers["location"] == made["@iot.selfLink"] \
        == f"{BASE}/Things({made['@iot.id']})"
    assert (made["name"], made["properties"]) == ("Weather mast", {"mast": "A"})
    assert grown(before, await counts(fleet_db)) == {
        "things": 1, "locations": 1, "thing_locations": 1, "historical_locations": 1,
        "historical_location_locations": 1, "sensors": 2, "observed_properties": 2,
        "datastreams": 2, "observations": 2, "features_of_interest": 1,
    }
    streams = await api.get(f"/v1.1/Things({made['@iot.id']})/Datastreams?$orderby=name")
    assert [s["name"] for s in streams["value"]] == ["Humidity", "Temperature"]
    owners = await fleet_db.fetch(
        "SELECT DISTINCT a.code FROM agencies a JOIN datastreams ds ON ds.agency_id = a.id "
        "JOIN things t ON t.agency_id = a.id WHERE t.id = $1 AND ds.thing_id = t.id",
        made["@iot.id"])
    assert [r["code"] for r in owners] == ["city"]


async def test_a_deep_insert_leaves_nothing_behind_when_a_part_fails(
    api: Api, fleet_db: Any
) -> None:
    before = await counts(fleet_db)
    body = thing(Locations=[location()], Datastreams=[datastream(
        Sensor=sensor(), ObservedProperty=observed_property(),
        Observations=[{"phenomenonTime": T0, "result": 1},
                      {"phenomenonTime": T0, "result": 2}])])  # the database refuses this
    refused = await api.post("/v1.1/Things", body, status=409)
    assert refused["code"] == "conflict"
    assert refused["message"].startswith("Thing.Datastreams[0].Observations[1]: Datastream ")
    assert refused["message"].endswith(" has an Observation at phenomenonTime "
                                       "2026-09-21T10:00:00Z already")
    del body["Datastreams"][0]["Sensor"]["metadata"]
    refused = await api.post("/v1.1/Things", body, status=400)
    assert refused == {"code": "bad_request", "message": "Thing.Datastreams[0].Sensor: the "
                       "mandatory property 'metadata' is missing"}
    assert await counts(fleet_db) == before
    assert api.notified.changes == []


async def test_posting_to_a_navigation_collection_links_the_new_entity_to_its_parent(
    api: Api, fleet_db: Any
) -> None:
    mast = (await api.post("/v1.1/Things", thing()))["@iot.id"]
    other = (await api.post("/v1.1/Things", thing("Other mast")))["@iot.id"]
    probe = (await api.post("/v1.1/Sensors", sensor()))["@iot.id"]
    warmth = (await api.post("/v1.1/ObservedProperties", observed_property()))["@iot.id"]
    made = await api.post(f"/v1.1/Things({mast})/Datastreams", datastream(
        Sensor={"@iot.id": probe}, ObservedProperty={"@iot.id": warmth}))
    stream = made["@iot.id"]
    assert (await api.get(f"/v1.1/Datastreams({stream})/Thing"))["@iot.id"] == mast
    assert (await api.get(f"/v1.1/Datastreams({stream})/Sensor"))["@iot.id"] == probe
    assert await fleet_db.fetchval(
        "SELECT ds.agency_id = t.agency_id FROM datastreams ds JOIN things t "
        "ON t.id = ds.thing_id WHERE ds.id = $1", stream)
    reading = await api.post(f"/v1.1/Things({mast})/Datastreams({stream})/Observations",
                             {"phenomenonTime": T0, "result": 4, "FeatureOfInterest":
                              feature_at([18.0, 59.3])})
    assert (await api.get(f"/v1.1/Observations({reading['@iot.id']})/Datastream")
            )["@iot.id"] == stream
    await api.post(f"/v1.1/Things({other})/Datastreams({stream})/Observations",
                   {"phenomenonTime": T0, "result": 5}, status=404)
    await api.post("/v1.1/Things(999999)/Datastreams", datastream(
        Sensor={"@iot.id": probe}, ObservedProperty={"@iot.id": warmth}), status=404)
    twice = await api.post(f"/v1.1/Things({mast})/Datastreams", datastream(
        Thing={"@iot.id": other}, Sensor={"@iot.id": probe},
        ObservedProperty={"@iot.id": warmth}), status=400)
    assert twice["message"] == ("Datastream.Thing: given by where the entity is created; "
                                "leave it out")
    one = await api.post(f"/v1.1/Datastreams({stream})/Thing", thing(), status=405)
    assert one["code"] == "method_not_allowed"


@pytest.mark.parametrize(("link", "message"), [
    ({"@iot.id": 999999}, "Datastream.Thing: there is no Thing with @iot.id 999999"),
    ({"@iot.id": "3"}, "Datastream.Thing: @iot.id must be an integer"),
    ({"@iot.id": "$1", "name": "Mast"}, "Datastream.Thing: @iot.id must be an integer"),
])
async def test_a_link_must_name_an_existing_entity_by_its_integer_id(
    api: Api, link: dict[str, Any], message: str
) -> None:
    probe = (await api.post("/v1.1/Sensors", sensor()))["@iot.id"]
    warmth = (await api.post("/v1.1/ObservedProperties", observed_property()))["@iot.id"]
    refused = await api.post("/v1.1/Datastreams", datastream(
        Thing=link, Sensor={"@iot.id": probe}, ObservedProperty={"@iot.id": warmth}),
        status=400)
    assert refused["message"] == message


@pytest.mark.parametrize(("entity_set", "body", "message"), [
    ("Things", {"description": "d"}, "Thing: the mandatory property 'name' is missing"),
    ("Things", {**thing(), "colour": "red"}, "Thing: unknown property 'colour'"),
    ("Things", {**thing(), "name": 5}, "Thing.name must be a string"),
    ("Things", {**thing(), "properties": [1]}, "Thing.properties must be a JSON object"),
    ("Things", [thing()], "Thing must be a JSON object"),
    ("Things", {**thing(), "@iot.id": 5}, "Thing: @iot.id is given by the server; leave it "
     "out to create an entity, or give only @iot.id to link an existing one"),
    ("Things", thing(Datastreams={"name": "x"}), "Thing.Datastreams must be a list of objects"),
    ("Locations", location(point={"type": "Point", "coordinates": [18]}),
     "Location.location.coordinates must be a position: [longitude, latitude] or with height"),
    ("Locations", {**location(), "encodingType": "text/plain"},
     "Location.encodingType must be 'application/geo+json' (or the older "
     "'application/vnd.geo+json'); this server keeps geometries as GeoJSON"),
    ("Locations", location(point={"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 1]]]}),
     "Location.location.coordinates[0]: a polygon ring needs at least four positions, the "
     "last equal to the first"),
    ("Locations", location(point={"type": [], "coordinates": [0, 0]}),
     "Location.location: [] is not a GeoJSON geometry type (Point, MultiPoint, "
     "LineString, MultiLineString, Polygon, MultiPolygon, GeometryCollection)"),
    ("Locations", location(point={"type": "Circle", "coordinates": [0, 0]}),
     "Location.location: 'Circle' is not a GeoJSON geometry type (Point, MultiPoint, "
     "LineString, MultiLineString, Polygon, MultiPolygon, GeometryCollection)"),
    ("Datastreams", {**datastream(), "unitOfMeasurement": {"name": "x", "scale": 2}},
     "Datastream.unitOfMeasurement: unknown member 'scale'; a unit has name, symbol and "
     "definition"),
    ("Datastreams", datastream(), "Datastream: the mandatory link 'Thing' is missing; give "
     '{"@iot.id": ...} of an existing one or create one inline'),
    ("Observations", {"result": 1, "phenomenonTime": "2026-09-21T10:00:00"},
     "Observation.phenomenonTime must be an ISO 8601 time with a zone, as "
     "2026-09-21T10:00:00Z or 2026-09-21T12:00:00+02:00, not '2026-09-21T10:00:00'"),
    ("Observations", {"result": 1, "phenomenonTime": "2026-09-21T11:00:00Z/"
                      "2026-09-21T10:00:00Z"},
     "Observation.phenomenonTime: the interval ends before it starts"),
    ("Observations", {"phenomenonTime": T0}, "Observation: the mandatory property 'result' "
     "is missing"),
])
async def test_a_malformed_body_is_a_400_naming_what_is_wrong(
    api: Api, entity_set: str, body: Any, message: str
) -> None:
    refused = await api.post(f"/v1.1/{entity_set}", body, status=400)
    assert refused == {"code": "bad_request", "message": message}


@pytest.mark.parametrize(("raw", "message"), [
    (b'{"name": "Mast", ', "the body is not valid JSON: Expecting property name enclosed "
     "in double quotes: line 1 column 18 (char 17)"),
    (b'{"name": NaN}', "the body is not valid JSON: NaN is not a JSON number"),
    (b'{"name": 1e999}', "the body is not valid JSON: 1e999 is out of range for a number"),
    (b'{"name": "\\ud800"}', "the body holds text that is not valid Unicode"),
    (b"", "the body is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
])
async def test_a_body_that_is_not_json_is_a_400(api: Api, raw: bytes, message: str) -> None:
    response = await api.client.post("/v1.1/Things", content=raw,
                                     headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"code": "bad_request", "message": message}


async def test_a_body_in_another_format_is_a_415(api: Api) -> None:
    response = await api.client.post("/v1.1/Things", content=b"name=Mast",
                                     headers={"content-type": "text/plain"})
    assert response.status_code == 415
    assert response.json()["message"] == "POST takes application/json, not text/plain"


async def test_a_thing_records_each_change_of_its_locations_as_a_historical_location(
    api: Api, fleet_db: Any
) -> None:
    mast = (await api.post("/v1.1/Things", thing(Locations=[location("Odenplan")])))["@iot.id"]
    first = (await api.get(f"/v1.1/Things({mast})/Locations"))["value"][0]["@iot.id"]
    second = (await api.post(f"/v1.1/Things({mast})/Locations", location(
        "Slussen", {"type": "Point", "coordinates": [18.0717, 59.3195]})))["@iot.id"]
    now_at = await api.get(f"/v1.1/Things({mast})/Locations")
    assert [place["@iot.id"] for place in now_at["value"]] == [second]
    await api.send("PATCH", f"/v1.1/Things({mast})", {"Locations": [{"@iot.id": first}]})
    await api.send("PATCH", f"/v1.1/Things({mast})", {"Locations": [{"@iot.id": first}]})
    history = await api.get(f"/v1.1/Things({mast})/HistoricalLocations?$orderby=id"
                            "&$expand=Locations($select=id)")
    assert [[place["@iot.id"] for place in h["Locations"]] for h in history["value"]] == [
        [first], [second], [first]]
    times = [h["time"] for h in history["value"]]
    assert times == sorted(times)


async def test_an_observation_without_a_feature_gets_one_from_its_things_location_once(
    api: Api, fleet_db: Any
) -> None:
    stream = (await new_datastream(api))["@iot.id"]
    before = await counts(fleet_db)
    url = f"/v1.1/Datastreams({stream})/Observations"
    first = await api.post(url, {"phenomenonTime": T0, "result": 1})
    second = await api.post(url, {"phenomenonTime": "2026-09-21T10:01:00Z", "result": 2})
    features = [await api.get(f"/v1.1/Observations({o['@iot.id']})/FeatureOfInterest")
                for o in (first, second)]
    assert features[0] == features[1]
    assert (features[0]["name"], features[0]["feature"]) == ("Odenplan", POINT)
    assert grown(before, await counts(fleet_db)) == {"observations": 2,
                                                     "features_of_interest": 1}


async def test_a_device_observation_gets_the_feature_provisioning_made_for_the_device(
    api: Api, fleet_db: Any
) -> None:
    stream = await fleet_datastream(fleet_db, "aq-hornsgatan-108", "no2")
    before = await counts(fleet_db)
    made = await api.post(f"/v1.1/Datastreams({stream})/Observations",
                          {"phenomenonTime": T0, "result": 23.4})
    feature = await api.get(f"/v1.1/Observations({made['@iot.id']})/FeatureOfInterest")
    assert await fleet_db.fetchval("SELECT key FROM features_of_interest WHERE id = $1",
                                   feature["@iot.id"]) == "device:aq-hornsgatan-108"
    assert grown(before, await counts(fleet_db)) == {"observations": 1}


async def test_an_observation_without_a_feature_of_a_thing_without_a_location_is_refused(
    api: Api,
) -> None:
    stream = (await new_datastream(api, located=False))["@iot.id"]
    refused = await api.post(f"/v1.1/Datastreams({stream})/Observations",
                             {"phenomenonTime": T0, "result": 1}, status=400)
    assert refused["message"] == (
        f"Observation: no FeatureOfInterest is given and the Thing of Datastream {stream} "
        "has no Location to make one from; give a FeatureOfInterest or a Location of the "
        "Thing")


async def test_a_datastreams_times_and_observed_area_follow_its_observations(
    api: Api,
) -> None:
    stream = await new_datastream(api)
    assert not {"phenomenonTime", "resultTime", "observedArea"} & set(stream)  # absent
    url = f"/v1.1/Datastreams({stream['@iot.id']})"
    first = await api.post(f"{url}/Observations", {
        "phenomenonTime": "2026-09-21T10:00:00Z", "resultTime": "2026-09-21T10:00:05Z",
        "result": 1})
    await api.post(f"{url}/Observations", {
        "phenomenonTime": "2026-09-21T11:00:00Z/2026-09-21T11:30:00Z",
        "resultTime": "2026-09-21T11:30:01Z", "result": 2,
        "FeatureOfInterest": feature_at([18.1, 59.35])})
    earliest = await api.post(f"{url}/Observations", {
        "phenomenonTime": "2026-09-21T10:30:00+02:00", "result": 3,
        "FeatureOfInterest": feature_at([18.0, 59.3])})
    got = await api.get(url)
    assert got["phenomenonTime"] == "2026-09-21T08:30:00Z/2026-09-21T11:30:00Z"
    assert got["resultTime"] == "2026-09-21T10:00:05Z/2026-09-21T11:30:01Z"
    assert got["observedArea"]["type"] == "Polygon"
    assert {tuple(p) for p in got["observedArea"]["coordinates"][0]} == {
        (18.0686, 59.3293), (18.1, 59.35), (18.0, 59.3)}

    await api.send("DELETE", f"/v1.1/Observations({earliest['@iot.id']})")
    got = await api.get(url)
    assert got["phenomenonTime"] == "2026-09-21T10:00:00Z/2026-09-21T11:30:00Z"
    assert got["observedArea"]["type"] == "LineString"
    assert {tuple(p) for p in got["observedArea"]["coordinates"]} == {
        (18.0686, 59.3293), (18.1, 59.35)}

    await api.send("PATCH", f"/v1.1/Observations({first['@iot.id']})",
                   {"phenomenonTime": "2026-09-21T12:00:00Z"})
    got = await api.get(url)
    assert got["phenomenonTime"] == "2026-09-21T11:00:00Z/2026-09-21T12:00:00Z"
    assert got["resultTime"] == "2026-09-21T10:00:05Z/2026-09-21T11:30:01Z"


async def test_patch_merges_json_patch_edits_and_put_replaces(api: Api) -> None:
    made = await api.post("/v1.1/Things", thing(properties={"floor": 1}))
    url = f"/v1.1/Things({made['@iot.id']})"
    patched = await api.send("PATCH", url, {"description": "Moved indoors"})
    assert (patched["name"], patched["description"], patched["properties"]) == (
        "Weather mast", "Moved indoors", {"floor": 1})
    edited = await api.send("PATCH", url, [
        {"op": "test", "path": "/name", "value": "Weather mast"},
        {"op": "replace", "path": "/name", "value": "Mast 2"},
        {"op": "add", "path": "/properties/floor", "value": 2},
    ], content_type=JSON_PATCH)
    assert (edited["name"], edited["properties"]) == ("Mast 2", {"floor": 2})
    failed = await api.send("PATCH", url, [{"op": "test", "path": "/name", "value": "x"}],
                            status=409, content_type=JSON_PATCH)
    assert failed["code"] == "conflict"
    await api.send("PATCH", url, [{"op": "remove", "path": "/nothing"}], status=400,
                   content_type=JSON_PATCH)
    await api.send("PATCH", url, {"op": "remove"}, status=400, content_type=JSON_PATCH)
    replaced = await api.send("PUT", url, {"name": "Mast 3", "description": "New"})
    assert (replaced["name"], replaced["description"]) == ("Mast 3", "New")
    assert "properties" not in replaced
    assert await api.get(url) == replaced
    assert await api.send("PUT", url, replaced) == replaced  # what a GET gives, put back
    missing = await api.send("PUT", url, {"name": "Mast 4"}, status=400)
    assert missing["message"] == "Thing: the mandatory property 'description' is missing"
    unknown = await api.send("PATCH", url, {"colour": "red"}, status=400)
    assert unknown["message"] == "Thing: unknown property 'colour'"
    await api.send("PATCH", "/v1.1/Things(999999)", {"name": "x"}, status=404)
    await api.send("PATCH", "/v1.1/Things", {"name": "x"}, status=405)
    assert [c.changed for c in api.notified.changes] == [
        None, ("description",), ("name", "properties"), ("name", "description", "properties")]


async def test_a_datastream_patch_can_move_it_to_another_thing_and_sensor(api: Api) -> None:
    stream = await new_datastream(api)
    other = (await api.post("/v1.1/Things", thing("Other mast")))["@iot.id"]
    probe = (await api.post("/v1.1/Sensors", sensor("Better thermometer")))["@iot.id"]
    url = f"/v1.1/Datastreams({stream['@iot.id']})"
    moved = await api.send("PATCH", url, {"Thing": {"@iot.id": other},
                                          "Sensor": {"@iot.id": probe}, "name": "Moved"})
    assert moved["name"] == "Moved"
    assert (await api.get(f"{url}/Thing"))["@iot.id"] == other
    assert (await api.get(f"{url}/Sensor"))["@iot.id"] == probe
    inline = await api.send("PATCH", url, {"Sensor": sensor()}, status=400)
    assert inline["message"] == ('Datastream.Sensor: an update links existing entities by '
                                 '{"@iot.id": ...} only')


async def test_existing_entities_linked_by_id_join_the_new_or_updated_one(
    api: Api, fleet_db: Any
) -> None:
    place = (await api.post("/v1.1/Locations", location()))["@iot.id"]
    mast = (await api.post("/v1.1/Things", thing(Locations=[{"@iot.id": place}])))["@iot.id"]
    history = await api.get(f"/v1.1/Things({mast})/HistoricalLocations?$expand=Locations")
    assert [[p["@iot.id"] for p in h["Locations"]] for h in history["value"]] == [[place]]
    source = await new_datastream(api)
    reading = await api.post(f"/v1.1/Datastreams({source['@iot.id']})/Observations",
                             {"phenomenonTime": T0, "result": 1})
    target = await new_datastream(api)
    await api.send("PATCH", f"/v1.1/Datastreams({target['@iot.id']})",
                   {"Observations": [{"@iot.id": reading["@iot.id"]}]})
    assert (await api.get(f"/v1.1/Observations({reading['@iot.id']})/Datastream")
            )["@iot.id"] == target["@iot.id"]
    assert "phenomenonTime" not in await api.get(f"/v1.1/Datastreams({source['@iot.id']})")
    assert (await api.get(f"/v1.1/Datastreams({target['@iot.id']})"))["phenomenonTime"] == \
        f"{T0}/{T0}"
    missing = await api.send("PATCH", f"/v1.1/Datastreams({target['@iot.id']})",
                             {"Observations": [{"@iot.id": 999999}]}, status=400)
    assert missing["message"] == ("Datastream.Observations: there is no Observation with "
                                  "@iot.id 999999")


async def test_an_updated_observation_keeps_its_id(api: Api) -> None:
    stream = (await new_datastream(api))["@iot.id"]
    made = await api.post(f"/v1.1/Datastreams({stream})/Observations",
                          {"phenomenonTime": T0, "result": 1, "parameters": {"run": 1}})
    url = f"/v1.1/Observations({made['@iot.id']})"
    changed = await api.send("PATCH", url, {"phenomenonTime": "2026-10-05T00:00:00Z",
                                            "result": "recalibrated"})
    assert (changed["@iot.id"], changed["phenomenonTime"], changed["result"],
            changed["parameters"]) == (made["@iot.id"], "2026-10-05T00:00:00Z",
                                       "recalibrated", {"run": 1})
    assert await api.get(url) == changed
    listed = await api.get(f"/v1.1/Datastreams({stream})/Observations")
    assert [o["@iot.id"] for o in listed["value"]] == [made["@iot.id"]]


async def _mast_with_readings(api: Api) -> dict[str, int]:
    """A Thing at a Location with one Datastream of two Observations; the ids."""
    made = await api.post("/v1.1/Things", thing(Locations=[location()], Datastreams=[
        datastream(Sensor=sensor(), ObservedProperty=observed_property(),
                   Observations=two_observations())]))
    mast = made["@iot.id"]
    stream = (await api.get(f"/v1.1/Things({mast})/Datastreams"))["value"][0]["@iot.id"]
    readings = (await api.get(f"/v1.1/Datastreams({stream})/Observations"))["value"]
    ids = {"Things": mast, "Datastreams": stream, "Observations": readings[0]["@iot.id"]}
    for name, nav in (("Sensors", "Sensor"), ("ObservedProperties", "ObservedProperty")):
        ids[name] = (await api.get(f"/v1.1/Datastreams({stream})/{nav}"))["@iot.id"]
    ids["FeaturesOfInterest"] = (await api.get(
        f"/v1.1/Observations({ids['Observations']})/FeatureOfInterest"))["@iot.id"]
    ids["Locations"] = (await api.get(f"/v1.1/Things({mast})/Locations"))["value"][0][
        "@iot.id"]
    ids["HistoricalLocations"] = (await api.get(f"/v1.1/Things({mast})/HistoricalLocations")
                                  )["value"][0]["@iot.id"]
    return ids


@pytest.mark.parametrize(("entity_set", "gone"), [
    ("Things", {"things": -1, "thing_locations": -1, "historical_locations": -1,
                "historical_location_locations": -1, "datastreams": -1, "observations": -2}),
    ("Datastreams", {"datastreams": -1, "observations": -2}),
    ("Sensors", {"sensors": -1, "datastreams": -1, "observations": -2}),
    ("ObservedProperties", {"observed_properties": -1, "datastreams": -1,
                            "observations": -2}),
    ("FeaturesOfInterest", {"features_of_interest": -1, "observations": -2}),
    ("Observations", {"observations": -1}),
    ("HistoricalLocations", {"historical_locations": -1, "historical_location_locations": -1}),
    ("Locations", {"locations": -1, "thing_locations": -1, "historical_locations": -1,
                   "historical_location_locations": -1}),
])
async def test_a_delete_takes_exactly_what_depends_on_the_entity(
    api: Api, fleet_db: Any, entity_set: str, gone: dict[str, int]
) -> None:
    ids = await _mast_with_readings(api)
    before = await counts(fleet_db)
    response = await api.client.delete(f"/v1.1/{entity_set}({ids[entity_set]})")
    assert (response.status_code, response.content) == (200, b"")
    assert grown(before, await counts(fleet_db)) == gone
    await api.get(f"/v1.1/{entity_set}({ids[entity_set]})", status=404)
    await api.send("DELETE", f"/v1.1/{entity_set}({ids[entity_set]})", status=404)


async def test_a_deleted_feature_takes_its_observations_out_of_the_datastreams_summary(
    api: Api,
) -> None:
    ids = await _mast_with_readings(api)
    url = f"/v1.1/Datastreams({ids['Datastreams']})"
    assert (await api.get(url))["phenomenonTime"] == f"{T0}/2026-09-21T10:01:00Z"
    await api.send("DELETE", f"/v1.1/FeaturesOfInterest({ids['FeaturesOfInterest']})")
    got = await api.get(url)
    assert not {"phenomenonTime", "resultTime", "observedArea"} & set(got)


async def test_a_deleted_location_keeps_history_that_has_another_location(
    api: Api, fleet_db: Any
) -> None:
    ids = await _mast_with_readings(api)
    first = ids["Locations"]
    second = (await api.post(f"/v1.1/Things({ids['Things']})/Locations",
                             location("Slussen")))["@iot.id"]
    both = (await api.post("/v1.1/HistoricalLocations", {
        "time": T0, "Thing": {"@iot.id": ids["Things"]},
        "Locations": [{"@iot.id": first}, {"@iot.id": second}]}))["@iot.id"]
    before = await counts(fleet_db)
    await api.send("DELETE", f"/v1.1/Locations({first})")
    assert grown(before, await counts(fleet_db)) == {
        "locations": -1, "historical_locations": -1, "historical_location_locations": -2}
    kept = await api.get(f"/v1.1/HistoricalLocations({both})/Locations")
    assert [place["@iot.id"] for place in kept["value"]] == [second]
    assert await fleet_db.fetchval("SELECT location_id FROM features_of_interest WHERE id = $1",
                                   ids["FeaturesOfInterest"]) is None


@pytest.mark.parametrize("result", [
    23.4, 0.1 + 0.2, 1.5e300, -0.5, 7, 0, 2**63 - 1, -(2**63), 2**64 + 1, "23.4", "",
    "värden ok — sensor cleaned", True, False, None, [1, "two", None, 2.5],
    {"a": [1, 2.5, None, "x"], "b": {"c": True, "d": {"e": [2**63 - 1]}}},
])
async def test_every_kind_of_result_comes_back_exactly_as_it_went_in(
    api: Api, result: Any
) -> None:
    stream = (await new_datastream(api))["@iot.id"]
    made = await api.post(f"/v1.1/Datastreams({stream})/Observations",
                          {"phenomenonTime": T0, "result": result})
    got = await api.get(f"/v1.1/Observations({made['@iot.id']})")
    assert made["result"] == got["result"] == result
    assert type(got["result"]) is type(result)


async def test_times_with_offsets_are_instants_and_intervals_come_back_as_intervals(
    api: Api,
) -> None:
    stream = (await new_datastream(api))["@iot.id"]
    made = await api.post(f"/v1.1/Datastreams({stream})/Observations", {
        "phenomenonTime": "2026-09-21T12:00:00+02:00/2026-09-21T12:15:00.250+02:00",
        "resultTime": "2026-09-21T07:16:00-05:00", "result": 1,
        "validTime": "2026-09-21T10:00:00Z/2026-09-22T10:00:00Z"})
    got = await api.get(f"/v1.1/Observations({made['@iot.id']})")
    assert (got["phenomenonTime"], got["resultTime"], got["validTime"]) == (
        "2026-09-21T10:00:00Z/2026-09-21T10:15:00.250000Z", "2026-09-21T12:16:00Z",
        "2026-09-21T10:00:00Z/2026-09-22T10:00:00Z")


async def test_every_created_entity_is_notified_with_its_body_and_parents(api: Api) -> None:
    made = await api.post("/v1.1/Things", thing(Locations=[location()], Datastreams=[
        datastream(Sensor=sensor(), ObservedProperty=observed_property(),
                   Observations=[{"phenomenonTime": T0, "result": 1}])]))
    changes = {c.entity_set: c for c in api.notified.changes}
    assert sorted(changes) == sorted([
        "Things", "Locations", "HistoricalLocations", "Sensors", "ObservedProperties",
        "Datastreams", "FeaturesOfInterest", "Observations"])
    assert len(api.notified.changes) == 8
    assert all(c.changed is None for c in changes.values())
    for change in changes.values():
        assert change.body == await api.get(change.body["@iot.selfLink"].removeprefix(
            "http://city"))
    ident = {name: c.id for name, c in changes.items()}
    assert changes["Things"].id == made["@iot.id"]
    assert changes["Things"].parents == (("Locations", ident["Locations"]),)
    assert changes["Locations"].parents == (("Things", ident["Things"]),)
    assert changes["HistoricalLocations"].parents == (
        ("Things", ident["Things"]), ("Locations", ident["Locations"]))
    assert changes["Datastreams"].parents == (
        ("Things", ident["Things"]), ("Sensors", ident["Sensors"]),
        ("ObservedProperties", ident["ObservedProperties"]))
    assert changes["Observations"].parents == (
        ("Datastreams", ident["Datastreams"]),
        ("FeaturesOfInterest", ident["FeaturesOfInterest"]))
    assert changes["Datastreams"].body["phenomenonTime"] == f"{T0}/{T0}"


async def test_provisioned_features_stand_for_the_device_locations_after_every_run(
    fleet_db: Any,
) -> None:
    query = ("SELECT f.key AS feature, l.key AS place FROM features_of_interest f "
             "JOIN locations l ON l.id = f.location_id ORDER BY f.key")
    linked = [tuple(r) for r in await fleet_db.fetch(query)]
    devices = await fleet_db.fetchval("SELECT count(*) FROM things WHERE device_id IS NOT NULL")
    assert len(linked) == devices and all(f == p for f, p in linked)
    await provision(fleet_db, stockholm())
    assert [tuple(r) for r in await fleet_db.fetch(query)] == linked


async def test_only_changes_ingest_reads_reload_its_registry(
    fleet_db: Any, db_url: str
) -> None:
    heard: list[str] = []
    listener = await connect(db_url)
    try:
        await listener.add_listener("registry_changed",
                                    lambda *args: heard.append(args[3]))
        await fleet_db.execute(
            "UPDATE datastreams SET phenomenon_time_start = now(), "
            "phenomenon_time_end = now(), observed_area = NULL")
        await fleet_db.execute(
            "UPDATE datastreams SET name = name || '.' WHERE id = (SELECT min(id) "
            "FROM datastreams)")

        async def heard_one() -> bool:
            return bool(heard)

        await eventually(heard_one)
        assert heard == ["datastreams"]
    finally:
        await listener.close()


async def test_an_update_is_announced_in_every_collection_that_holds_the_entity(
    api: Api,
) -> None:
    made = await api.post("/v1.1/Things", thing(Locations=[location()]))
    first = await api.get(f"/v1.1/Things({made['@iot.id']})/Locations")
    other = await api.post("/v1.1/Locations", location("Slussen"))
    api.notified.changes.clear()
    await api.send("PATCH", f"/v1.1/Things({made['@iot.id']})", {"name": "Renamed"})
    (renamed,) = api.notified.changes
    assert (renamed.changed, renamed.parents) == (
        ("name",), (("Locations", first["value"][0]["@iot.id"]),))
    api.notified.changes.clear()
    await api.send("PATCH", f"/v1.1/Things({made['@iot.id']})",
                   {"Locations": [{"@iot.id": other["@iot.id"]}]})
    moved = next(c for c in api.notified.changes if c.entity_set == "Things")
    assert moved.parents == (("Locations", other["@iot.id"]),)


async def test_entities_nested_too_deep_are_a_400(api: Api) -> None:
    body: dict[str, Any] = thing()
    inner = body
    for _ in range(12):  # Thing → Location → HistoricalLocation → Thing → …
        place = location()
        inner["Locations"] = [place]
        history = {"time": T0, "Thing": thing()}
        place["HistoricalLocations"] = [history]
        inner = history["Thing"]
    response = await api.client.post("/v1.1/Things", json=body)
    assert response.status_code == 400 and "nest deeper" in response.json()["message"]
