"""Writes as common SensorThings clients send them, through the API on the real database:
whole fetched entities as links, instants and intervals that start together, hand-written
HistoricalLocations, and batch requests that link what an earlier request made."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.writes import (
    T0,
    Api,
    batch_request,
    counts,
    datastream,
    grown,
    location,
    new_datastream,
    observed_property,
    sensor,
    thing,
)

HOUR_LATER = "2026-09-21T11:00:00Z"


def request(ident: str, method: str, url: str, body: Any = None,
            group: str | None = "g") -> dict[str, Any]:
    """A request of a `$batch`, in one changeset unless told otherwise."""
    return batch_request(ident, method, url, body, group)


# A fetched entity as a link

async def test_an_observation_linking_a_whole_fetched_datastream_is_created_in_it(
    api: Api, fleet_db: Any
) -> None:
    fetched = await new_datastream(api)
    sent = {**fetched, "name": "Renamed by the client", "description": 5}
    made = await api.post("/v1.1/Observations",
                          {"phenomenonTime": T0, "result": 3.5, "Datastream": sent})
    linked = await api.get(f"/v1.1/Observations({made['@iot.id']})/Datastream")
    assert (linked["@iot.id"], linked["name"], linked["description"]) == (
        fetched["@iot.id"], fetched["name"], fetched["description"])


async def test_a_deep_insert_links_fetched_entities_and_leaves_them_unchanged(
    api: Api, fleet_db: Any
) -> None:
    mast = await api.post("/v1.1/Things", thing("Mast"))
    probe = await api.post("/v1.1/Sensors", sensor("Probe"))
    warmth = await api.post("/v1.1/ObservedProperties", observed_property())
    before = await counts(fleet_db)
    made = await api.post("/v1.1/Datastreams", datastream(
        Thing={**mast, "name": "Other", "Datastreams": [datastream()]},
        Sensor={**probe, "metadata": None}, ObservedProperty=warmth))
    assert grown(before, await counts(fleet_db)) == {"datastreams": 1}
    stream = made["@iot.id"]
    assert await api.get(f"/v1.1/Datastreams({stream})/Thing") == mast
    assert await api.get(f"/v1.1/Datastreams({stream})/Sensor") == probe


async def test_a_patch_links_a_whole_fetched_entity(api: Api) -> None:
    stream = (await new_datastream(api))["@iot.id"]
    other = await api.post("/v1.1/Sensors", sensor("Spare"))
    await api.send("PATCH", f"/v1.1/Datastreams({stream})",
                   {"Sensor": {**other, "name": "Ignored"}})
    assert await api.get(f"/v1.1/Datastreams({stream})/Sensor") == other


async def test_a_batch_part_links_a_whole_fetched_entity(api: Api) -> None:
    fetched = await new_datastream(api)
    answer = await api.post("/v1.1/$batch", {"requests": [request(
        "1", "post", "Observations",
        {"phenomenonTime": T0, "result": 1, "Datastream": {**fetched, "name": "x"}})]},
        status=200)
    assert answer["responses"][0]["status"] == 201, answer
    observations = await api.get(f"/v1.1/Datastreams({fetched['@iot.id']})/Observations")
    assert [o["result"] for o in observations["value"]] == [1]


# Instants and intervals at one phenomenonTime

async def test_an_instant_and_an_interval_that_start_together_are_both_stored(
    api: Api
) -> None:
    stream = (await new_datastream(api))["@iot.id"]
    path = f"/v1.1/Datastreams({stream})/Observations"
    await api.post(path, {"phenomenonTime": T0, "result": 20.5})
    await api.post(path, {"phenomenonTime": f"{T0}/{HOUR_LATER}", "result": 21.0})
    await api.post(path, {"phenomenonTime": f"{T0}/2026-09-21T10:30:00Z", "result": 20.8})
    shown = await api.get(f"{path}?$select=phenomenonTime,result")
    assert [(o["phenomenonTime"], o["result"]) for o in shown["value"]] == [
        (T0, 20.5), (f"{T0}/2026-09-21T10:30:00Z", 20.8), (f"{T0}/{HOUR_LATER}", 21.0)]


@pytest.mark.parametrize("time", [T0, f"{T0}/{HOUR_LATER}"])
async def test_a_repeated_observation_is_a_409_naming_the_datastream_and_time(
    api: Api, fleet_db: Any, time: str
) -> None:
    stream = (await new_datastream(api))["@iot.id"]
    path = f"/v1.1/Datastreams({stream})/Observations"
    await api.post(path, {"phenomenonTime": time, "result": 20.5})
    refused = await api.post(path, {"phenomenonTime": time, "result": 99}, status=409)
    assert refused == {"code": "conflict", "message": f"Observation: Datastream {stream} has "
                       f"an Observation at phenomenonTime {time} already"}
    assert await fleet_db.fetchval(
        "SELECT count(*) FROM observations WHERE datastream_id = $1", stream) == 1


async def test_an_update_onto_a_taken_phenomenon_time_is_a_409_and_changes_nothing(
    api: Api
) -> None:
    stream = (await new_datastream(api))["@iot.id"]
    path = f"/v1.1/Datastreams({stream})/Observations"
    await api.post(path, {"phenomenonTime": T0, "result": 1})
    moved = (await api.post(path, {"phenomenonTime": HOUR_LATER, "result": 2}))["@iot.id"]
    refused = await api.send("PATCH", f"/v1.1/Observations({moved})", {"phenomenonTime": T0},
                             status=409)
    assert "Conflict" not in refused["message"] and "Key (" not in refused["message"]
    assert refused["message"] == (f"Observation: Datastream {stream} has an Observation at "
                                  f"phenomenonTime {T0} already")
    kept = await api.get(f"/v1.1/Observations({moved})")
    assert (kept["phenomenonTime"], kept["result"]) == (HOUR_LATER, 2)


@pytest.mark.parametrize("orderby", ["", "&$orderby=phenomenonTime",
                                     "&$orderby=phenomenonTime desc"])
async def test_pages_of_one_observation_show_instants_and_intervals_that_start_together(
    api: Api, orderby: str
) -> None:
    stream = (await new_datastream(api))["@iot.id"]
    path = f"/v1.1/Datastreams({stream})/Observations"
    for n, time in enumerate([T0, f"{T0}/{HOUR_LATER}", HOUR_LATER, f"{T0}/2026-09-22T00:00:00Z"]):
        await api.post(path, {"phenomenonTime": time, "result": n})
    seen, url = [], f"{path}?$top=1&$select=result{orderby}"
    while url:
        page = await api.get(url.removeprefix("http://city"))
        seen += [o["result"] for o in page["value"]]
        url = page.get("@iot.nextLink")
    assert seen == ([2, 3, 1, 0] if "desc" in orderby else [0, 1, 3, 2])


# HistoricalLocations posted by hand

async def test_a_later_historical_location_moves_the_thing_and_an_earlier_one_does_not(
    api: Api, fleet_db: Any
) -> None:
    mast = (await api.post("/v1.1/Things", thing(Locations=[location("Odenplan")])))["@iot.id"]
    slussen = (await api.post("/v1.1/Locations", location("Slussen")))["@iot.id"]
    tensta = (await api.post("/v1.1/Locations", location("Tensta")))["@iot.id"]
    later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    await api.post("/v1.1/HistoricalLocations", {
        "time": later, "Thing": {"@iot.id": mast}, "Locations": [{"@iot.id": slussen}]})
    now_at = await api.get(f"/v1.1/Things({mast})/Locations")
    assert [place["@iot.id"] for place in now_at["value"]] == [slussen]
    api.notified.changes.clear()
    await api.post(f"/v1.1/Things({mast})/HistoricalLocations", {
        "time": "2020-01-01T00:00:00Z", "Locations": [{"@iot.id": tensta}]})
    now_at = await api.get(f"/v1.1/Things({mast})/Locations")
    assert [place["@iot.id"] for place in now_at["value"]] == [slussen]
    assert ("Things", mast) not in [(c.entity_set, c.id) for c in api.notified.changes]
    history = await api.get(f"/v1.1/Things({mast})/HistoricalLocations?$orderby=time"
                            "&$expand=Locations($select=name)")
    assert [[place["name"] for place in h["Locations"]] for h in history["value"]] == [
        ["Tensta"], ["Odenplan"], ["Slussen"]]


async def test_a_later_historical_location_is_notified_as_a_change_of_the_things_locations(
    api: Api
) -> None:
    mast = (await api.post("/v1.1/Things", thing(Locations=[location("Odenplan")])))["@iot.id"]
    slussen = (await api.post("/v1.1/Locations", location("Slussen")))["@iot.id"]
    api.notified.changes.clear()
    await api.post(f"/v1.1/Things({mast})/HistoricalLocations", {
        "time": "2099-01-01T00:00:00Z", "Locations": [{"@iot.id": slussen}]})
    changed = {(c.entity_set, c.id): c.changed for c in api.notified.changes}
    assert changed[("Things", mast)] == ("Locations",)


async def test_a_location_linked_to_the_latest_historical_location_joins_the_things_places(
    api: Api
) -> None:
    mast = (await api.post("/v1.1/Things", thing(Locations=[location("Odenplan")])))["@iot.id"]
    odenplan = (await _places(api, mast))[0]
    latest = await _history(api, mast)
    earlier = (await api.post(f"/v1.1/Things({mast})/HistoricalLocations", {
        "time": "2020-01-01T00:00:00Z", "Locations": [{"@iot.id": odenplan}]}))["@iot.id"]
    tensta = (await api.post("/v1.1/Locations", {
        **location("Tensta"), "HistoricalLocations": [{"@iot.id": earlier}]}))["@iot.id"]
    assert await _places(api, mast) == [odenplan]
    api.notified.changes.clear()
    slussen = (await api.post("/v1.1/Locations", {
        **location("Slussen"), "HistoricalLocations": [{"@iot.id": latest}]}))["@iot.id"]
    assert await _places(api, mast) == [odenplan, slussen]
    assert ("Things", mast, ("Locations",)) in [
        (c.entity_set, c.id, c.changed) for c in api.notified.changes]
    await api.send("PATCH", f"/v1.1/Locations({tensta})",
                   {"HistoricalLocations": [{"@iot.id": latest}]})
    assert await _places(api, mast) == sorted([odenplan, slussen, tensta])


async def test_a_patched_historical_location_time_moves_the_thing_to_the_latest_one(
    api: Api
) -> None:
    mast = (await api.post("/v1.1/Things", thing(Locations=[location("Odenplan")])))["@iot.id"]
    odenplan = (await _places(api, mast))[0]
    tensta = (await api.post("/v1.1/Locations", location("Tensta")))["@iot.id"]
    moved = (await api.post(f"/v1.1/Things({mast})/HistoricalLocations", {
        "time": "2020-01-01T00:00:00Z", "Locations": [{"@iot.id": tensta}]}))["@iot.id"]
    assert await _places(api, mast) == [odenplan]
    await api.send("PATCH", f"/v1.1/HistoricalLocations({moved})",
                   {"time": "2099-01-01T00:00:00Z"})
    assert await _places(api, mast) == [tensta]
    await api.send("PATCH", f"/v1.1/HistoricalLocations({moved})",
                   {"time": "2020-01-01T00:00:00Z"})
    assert await _places(api, mast) == [odenplan]


async def test_the_latest_historical_location_given_new_locations_or_thing_moves_the_things(
    api: Api
) -> None:
    mast = (await api.post("/v1.1/Things", thing(Locations=[location("Odenplan")])))["@iot.id"]
    odenplan = (await _places(api, mast))[0]
    other = (await api.post("/v1.1/Things", thing("Other mast")))["@iot.id"]
    slussen = (await api.post("/v1.1/Locations", location("Slussen")))["@iot.id"]
    tensta = (await api.post("/v1.1/Locations", location("Tensta")))["@iot.id"]
    latest = (await api.post(f"/v1.1/Things({mast})/HistoricalLocations", {
        "time": "2099-01-01T00:00:00Z", "Locations": [{"@iot.id": slussen}]}))["@iot.id"]
    await api.send("PATCH", f"/v1.1/HistoricalLocations({latest})",
                   {"Locations": [{"@iot.id": tensta}]})
    assert await _places(api, mast) == [tensta]
    await api.send("PATCH", f"/v1.1/HistoricalLocations({latest})",
                   {"Thing": {"@iot.id": other}})
    assert (await _places(api, mast), await _places(api, other)) == ([odenplan], [tensta])
    await api.send("PATCH", f"/v1.1/Things({mast})",
                   {"HistoricalLocations": [{"@iot.id": latest}]})
    assert await _places(api, mast) == [tensta]


async def test_a_deleted_latest_historical_location_leaves_the_thing_where_it_is(
    api: Api
) -> None:
    mast = (await api.post("/v1.1/Things", thing(Locations=[location("Odenplan")])))["@iot.id"]
    slussen = (await api.post("/v1.1/Locations", location("Slussen")))["@iot.id"]
    await api.send("PATCH", f"/v1.1/Things({mast})", {"Locations": [{"@iot.id": slussen}]})
    await api.send("DELETE", f"/v1.1/HistoricalLocations({await _history(api, mast)})")
    assert await _places(api, mast) == [slussen]


async def _places(api: Api, thing_id: int) -> list[int]:
    """The ids of the Thing's current Locations."""
    found = await api.get(f"/v1.1/Things({thing_id})/Locations?$select=id&$orderby=id")
    return [place["@iot.id"] for place in found["value"]]


async def _history(api: Api, thing_id: int) -> int:
    """The id of the Thing's latest HistoricalLocation."""
    found = await api.get(f"/v1.1/Things({thing_id})/HistoricalLocations"
                          "?$select=id&$orderby=time desc&$top=1")
    return int(found["value"][0]["@iot.id"])


# References to earlier requests of a batch

async def test_a_batch_body_links_the_entity_an_earlier_request_created(
    api: Api, fleet_db: Any
) -> None:
    mast = (await api.post("/v1.1/Things", thing(Locations=[location()])))["@iot.id"]
    warmth = (await api.post("/v1.1/ObservedProperties", observed_property()))["@iot.id"]
    answer = await api.post("/v1.1/$batch", {"requests": [
        request("sensor1", "post", "Sensors", sensor("DS18B20")),
        request("stream1", "post", f"Things({mast})/Datastreams", datastream(
            Sensor={"@iot.id": "$sensor1"}, ObservedProperty={"@iot.id": warmth})),
        request("thing2", "post", "Things", thing("Second", Datastreams=[datastream(
            Sensor={"@iot.id": "$sensor1"}, ObservedProperty={"@iot.id": warmth})])),
        request("obs1", "post", "$stream1/Observations", {"phenomenonTime": T0, "result": 1}),
    ]}, status=200)
    assert [r["status"] for r in answer["responses"]] == [201] * 4, answer
    probe = answer["responses"][0]["body"]["@iot.id"]
    stream = answer["responses"][1]["body"]["@iot.id"]
    assert (await api.get(f"/v1.1/Datastreams({stream})/Sensor"))["@iot.id"] == probe
    second = answer["responses"][2]["body"]["@iot.id"]
    deep = await api.get(f"/v1.1/Things({second})/Datastreams?$expand=Sensor($select=id)")
    assert [s["Sensor"]["@iot.id"] for s in deep["value"]] == [probe]
    readings = await api.get(f"/v1.1/Datastreams({stream})/Observations")
    assert [o["result"] for o in readings["value"]] == [1]


async def test_a_batch_patch_links_the_entity_an_earlier_request_created(api: Api) -> None:
    stream = (await new_datastream(api))["@iot.id"]
    answer = await api.post("/v1.1/$batch", {"requests": [
        request("s", "post", "Sensors", sensor("New")),
        request("p", "patch", f"Datastreams({stream})", {"Sensor": {"@iot.id": "$s"}}),
    ]}, status=200)
    assert [r["status"] for r in answer["responses"]] == [201, 200], answer
    assert (await api.get(f"/v1.1/Datastreams({stream})/Sensor"))["name"] == "New"


@pytest.mark.parametrize(("link", "status", "message"), [
    ({"@iot.id": "$p"}, 400, "Datastream.Sensor: $p is not one of the Sensors but of the "
     "ObservedProperties"),
    ({"@iot.id": "$nowhere"}, 400, "Datastream.Sensor: $nowhere names no entity created "
     "before it in this batch"),
    ({"@iot.id": "$bad"}, 424, "Datastream.Sensor: $bad names request 'bad', which failed"),
])
async def test_a_batch_link_to_no_earlier_entity_of_its_kind_is_refused(
    api: Api, fleet_db: Any, link: dict[str, Any], status: int, message: str
) -> None:
    mast = (await api.post("/v1.1/Things", thing()))["@iot.id"]
    before = await counts(fleet_db)
    answer = await api.post("/v1.1/$batch", {"requests": [
        request("p", "post", "ObservedProperties", observed_property(), group=None),
        request("bad", "post", "Sensors", {"name": "incomplete"}, group=None),
        request("d", "post", f"Things({mast})/Datastreams", datastream(
            Sensor=link, ObservedProperty={"@iot.id": "$p"}), group=None),
    ]}, status=200)
    assert [r["status"] for r in answer["responses"]] == [201, 400, status]
    assert answer["responses"][2]["body"]["message"] == message
    assert grown(before, await counts(fleet_db)) == {"observed_properties": 1}


async def test_a_dollar_link_outside_a_batch_is_a_400(api: Api) -> None:
    stream = (await new_datastream(api))["@iot.id"]
    refused = await api.send("PATCH", f"/v1.1/Datastreams({stream})",
                             {"Sensor": {"@iot.id": "$sensor1"}}, status=400)
    assert refused["message"] == "Datastream.Sensor: @iot.id must be an integer"
