"""Conformance class Sensing Core, resource paths: the service root, entities by id,
related entities to any depth, properties, $value and $ref."""

from __future__ import annotations

import httpx
import pytest

from tests.conformance.conftest import BASE, get
from tests.conformance.dataset import STATIONS, Dataset

CONFORMANCE_CLASS = (
    "http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities")

SETS = ["Things", "Locations", "HistoricalLocations", "Sensors", "ObservedProperties",
        "Datastreams", "Observations", "FeaturesOfInterest"]


async def test_the_service_root_lists_the_entity_sets_with_their_urls(
    api: httpx.AsyncClient,
) -> None:
    root = await get(api, "/v1.1")
    assert root["value"] == [{"name": s, "url": f"{BASE}/v1.1/{s}"} for s in SETS]


async def test_an_entity_is_addressed_by_its_id(api: httpx.AsyncClient, dataset: Dataset) -> None:
    station = STATIONS[0]
    thing = await get(api, f"/v1.1/Things({dataset.things[station.name]})")
    assert thing["name"] == station.name
    assert thing["properties"] == {"site_role": station.role}


@pytest.mark.parametrize("entity_set", SETS)
async def test_an_unknown_id_is_404(
    api: httpx.AsyncClient, dataset: Dataset, entity_set: str
) -> None:
    body = await get(api, f"/v1.1/{entity_set}(987654321)", 404)
    assert body["message"]


async def test_related_entities_are_reached_to_any_depth(
    api: httpx.AsyncClient, dataset: Dataset
) -> None:
    station = STATIONS[0]
    thing = dataset.things[station.name]
    stream = station.streams[0]
    ds = dataset.datastreams[stream.name]
    streams = await get(api, f"/v1.1/Things({thing})/Datastreams")
    assert sorted(d["name"] for d in streams["value"]) == sorted(
        s.name for s in station.streams)
    observed = await get(api, f"/v1.1/Things({thing})/Datastreams({ds})/ObservedProperty")
    assert observed["name"] == stream.observed["name"]
    # Up through the Datastream to the Thing and on to its Locations.
    places = await get(api, f"/v1.1/Observations?$top=1&$filter=Datastream/id eq {ds}")
    obs = places["value"][0]["@iot.id"]
    located = await get(api, f"/v1.1/Observations({obs})/Datastream/Thing/Locations")
    assert [loc["location"]["coordinates"] for loc in located["value"]] == [
        [station.lon, station.lat]]
    # Both NO2 Datastreams through their shared ObservedProperty.
    op = dataset.observed_properties["NO2"]
    shared = await get(api, f"/v1.1/ObservedProperties({op})/Datastreams")
    assert sorted(d["name"] for d in shared["value"]) == ["Hornsgatan NO2", "Torkel NO2"]


async def test_a_property_its_raw_value_and_references(
    api: httpx.AsyncClient, dataset: Dataset
) -> None:
    station = STATIONS[1]
    thing = dataset.things[station.name]
    assert await get(api, f"/v1.1/Things({thing})/name") == {"name": station.name}
    raw = await api.get(f"/v1.1/Things({thing})/name/$value")
    assert raw.status_code == 200 and raw.text == station.name
    refs = await get(api, f"/v1.1/Things({thing})/Datastreams/$ref")
    assert refs["value"] == [
        {"@iot.selfLink": f"{BASE}/v1.1/Datastreams({dataset.datastreams[s.name]})"}
        for s in station.streams]
    one = await get(api, f"/v1.1/Things({thing})/$ref")
    assert one == {"@iot.selfLink": f"{BASE}/v1.1/Things({thing})"}
