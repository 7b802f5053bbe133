"""Many writes in one request: CreateObservations row by row, and the OData JSON $batch
with atomicity groups, on the real database."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.writes import (
    BASE,
    T0,
    Api,
    batch_request,
    counts,
    datastream,
    grown,
    new_datastream,
    observed_property,
    sensor,
    thing,
)


async def test_create_observations_stores_the_good_rows_and_marks_the_bad_ones(
    api: Api, fleet_db: Any
) -> None:
    stream = (await new_datastream(api))["@iot.id"]
    before = await counts(fleet_db)
    links = await api.post("/v1.1/CreateObservations", [
        {"Datastream": {"@iot.id": stream},
         "components": ["phenomenonTime", "result", "resultTime"],
         "dataArray@iot.count": 4,
         "dataArray": [
             [T0, 20.5, None],
             ["2026-09-21T10:01:00Z", "warm", "2026-09-21T10:01:02Z"],
             ["yesterday", 21.0, None],  # not a time
             [T0, 22.0, None],  # that time is taken by the first row
             ["2026-09-21T10:02:00Z", 21.5],  # a value short
             ["2026-09-21T10:03:00Z", {"nested": [1, 2]}, None],
         ]},
        {"Datastream": {"@iot.id": 999999}, "components": ["phenomenonTime", "result"],
         "dataArray": [[T0, 1.0]]},
    ])
    made = await fleet_db.fetch(
        "SELECT id FROM observations WHERE datastream_id = $1 ORDER BY phenomenon_time",
        stream)
    ids = [r["id"] for r in made]
    assert links == [f"{BASE}/Observations({ids[0]})", f"{BASE}/Observations({ids[1]})",
                     "error", "error", "error", f"{BASE}/Observations({ids[2]})", "error"]
    assert grown(before, await counts(fleet_db)) == {"observations": 3,
                                                     "features_of_interest": 1}
    results = await api.get(f"/v1.1/Datastreams({stream})/Observations?$select=result")
    assert [o["result"] for o in results["value"]] == [20.5, "warm", {"nested": [1, 2]}]
    assert [c.entity_set for c in api.notified.changes[-4:]] == [
        "FeaturesOfInterest", "Observations", "Observations", "Observations"]
    got = await api.get(f"/v1.1/Datastreams({stream})")
    assert got["phenomenonTime"] == f"{T0}/2026-09-21T10:03:00Z"


async def test_create_observations_links_a_feature_by_id(api: Api) -> None:
    stream = (await new_datastream(api))["@iot.id"]
    feature = (await api.post("/v1.1/FeaturesOfInterest", {
        "name": "Lake", "description": "The water", "encodingType": "application/geo+json",
        "feature": {"type": "Point", "coordinates": [18.0, 59.3]}}))["@iot.id"]
    links = await api.post("/v1.1/CreateObservations", [{
        "Datastream": {"@iot.id": stream},
        "components": ["result", "phenomenonTime", "FeatureOfInterest/id"],
        "dataArray": [[4, T0, feature], [5, "2026-09-21T10:01:00Z", 999999]]}])
    assert links[1] == "error"
    linked = await api.get(f"{links[0].removeprefix('http://city')}/FeatureOfInterest")
    assert linked["@iot.id"] == feature


@pytest.mark.parametrize(("body", "message"), [
    ({"Datastream": {"@iot.id": 1}}, "the body of CreateObservations is a list of "
     "{Datastream, components, dataArray} objects"),
    ([{"Datastream": {"@iot.id": 1}, "components": ["result", "colour"], "dataArray": []}],
     "[0].components must be a list of phenomenonTime, result, resultTime, resultQuality, "
     "validTime, parameters, FeatureOfInterest/id"),
    ([{"Datastream": {"@iot.id": 1}, "components": ["phenomenonTime"], "dataArray": []}],
     "[0].components must name result, and each component once"),
    ([{"Datastream": 1, "components": ["result"], "dataArray": []}],
     '[0].Datastream must be {"@iot.id": ...} of a Datastream'),
])
async def test_a_create_observations_body_of_the_wrong_shape_is_a_400(
    api: Api, body: Any, message: str
) -> None:
    refused = await api.post("/v1.1/CreateObservations", body, status=400)
    assert refused == {"code": "bad_request", "message": message}


async def _parts(api: Api) -> tuple[int, int]:
    probe = (await api.post("/v1.1/Sensors", sensor()))["@iot.id"]
    warmth = (await api.post("/v1.1/ObservedProperties", observed_property()))["@iot.id"]
    return probe, warmth


async def test_batch_requests_outside_a_group_succeed_or_fail_alone(
    api: Api, fleet_db: Any
) -> None:
    before = await counts(fleet_db)
    answer = await api.post("/v1.1/$batch", {"requests": [
        batch_request("1", "post", "Things", thing("First")),
        batch_request("2", "post", "/v1.1/Things", {"description": "no name"}),
        batch_request("3", "POST", f"{BASE}/Things", thing("Third")),
        batch_request("4", "get", "Things?$filter=name eq 'Third'&$select=name"),
        batch_request("5", "delete", "Things(999999)"),
    ]}, status=200)
    statuses = [(r["id"], r["status"]) for r in answer["responses"]]
    assert statuses == [("1", 201), ("2", 400), ("3", 201), ("4", 200), ("5", 404)]
    first = answer["responses"][0]
    assert first["headers"]["location"] == first["body"]["@iot.selfLink"]
    assert answer["responses"][1]["body"] == {
        "code": "bad_request", "message": "Thing: the mandatory property 'name' is missing"}
    assert answer["responses"][3]["body"]["value"] == [{"name": "Third"}]
    assert grown(before, await counts(fleet_db)) == {"things": 2}


async def test_a_batch_atomicity_group_commits_together_or_not_at_all(
    api: Api, fleet_db: Any
) -> None:
    probe, warmth = await _parts(api)
    links = {"Sensor": {"@iot.id": probe}, "ObservedProperty": {"@iot.id": warmth}}
    before = await counts(fleet_db)
    answer = await api.post("/v1.1/$batch", {"requests": [
        batch_request("a1", "post", "Things", thing("Doomed"), group="g1"),
        batch_request("a2", "post", "$a1/Datastreams", datastream(**links), group="g1"),
        batch_request("a3", "post", "$a1/Datastreams", {"name": "incomplete"}, group="g1"),
        batch_request("b1", "post", "Things", thing("Kept"), group="g2"),
        batch_request("b2", "post", "$b1/Datastreams", datastream(**links), group="g2"),
        batch_request("c1", "post", "$a1/Datastreams", datastream(**links)),
    ]}, status=200)
    statuses = [(r["id"], r.get("atomicityGroup"), r["status"]) for r in answer["responses"]]
    assert statuses == [("a1", "g1", 424), ("a2", "g1", 424), ("a3", "g1", 400),
                        ("b1", "g2", 201), ("b2", "g2", 201), ("c1", None, 424)]
    assert answer["responses"][0]["body"]["message"] == (
        "rolled back: request 'a3' of atomicity group 'g1' failed")
    assert grown(before, await counts(fleet_db)) == {"things": 1, "datastreams": 1}
    kept = answer["responses"][3]["body"]["@iot.id"]
    streams = await api.get(f"/v1.1/Things({kept})/Datastreams")
    assert [s["@iot.id"] for s in streams["value"]] == [answer["responses"][4]["body"]["@iot.id"]]
    assert {c.entity_set for c in api.notified.changes[-2:]} == {"Things", "Datastreams"}
    assert "Doomed" not in [c.body.get("name") for c in api.notified.changes]


async def test_a_batch_request_after_a_failed_one_it_depends_on_is_not_run(api: Api) -> None:
    answer = await api.post("/v1.1/$batch", {"requests": [
        batch_request("1", "post", "Things", {"name": "no description"}),
        {**batch_request("2", "post", "Things", thing()), "dependsOn": ["1"]},
        batch_request("3", "patch", "Things(999999)", {"name": "x"}),
    ]}, status=200)
    assert [r["status"] for r in answer["responses"]] == [400, 424, 404]


@pytest.mark.parametrize(("body", "message"), [
    ({"requests": {}}, 'a JSON batch is an object {"requests": [...]}'),
    ({"requests": [batch_request("1", "post", "Things"), batch_request("1", "post", "Things")]},
     "requests[1].id '1' is used before in the batch"),
    ({"requests": [batch_request("1", "head", "Things")]},
     "requests[0].method must be one of GET, POST, PATCH, PUT, DELETE"),
    ({"requests": [batch_request("1", "post", "Things", group="g"),
                   batch_request("2", "get", "Things"),
                   batch_request("3", "post", "Things", group="g")]},
     "requests[2]: the requests of atomicity group 'g' must be adjacent"),
    ({"requests": [batch_request("1", "post", "$2/Datastreams")]},
     "requests[0].url names $2, which is no request before it"),
])
async def test_a_malformed_batch_is_a_400(api: Api, body: Any, message: str) -> None:
    refused = await api.post("/v1.1/$batch", body, status=400)
    assert refused == {"code": "bad_request", "message": message}
