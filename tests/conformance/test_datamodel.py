"""Conformance class Sensing Core, data model: every entity carries the properties and
navigation links the standard gives its type, and results keep their type."""

from __future__ import annotations

import httpx
import pytest

from tests.conformance.conftest import BASE, all_pages, get
from tests.conformance.dataset import Dataset

CONFORMANCE_CLASS = "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel"

# Mandatory properties and navigation properties by entity set (the standard's tables).
MODEL = {
    "Things": (["name", "description"], ["Locations", "HistoricalLocations", "Datastreams"]),
    "Locations": (["name", "description", "encodingType", "location"],
                  ["Things", "HistoricalLocations"]),
    "HistoricalLocations": (["time"], ["Thing", "Locations"]),
    "Datastreams": (["name", "description", "unitOfMeasurement", "observationType"],
                    ["Thing", "Sensor", "ObservedProperty", "Observations"]),
    "Sensors": (["name", "description", "encodingType", "metadata"], ["Datastreams"]),
    "ObservedProperties": (["name", "definition", "description"], ["Datastreams"]),
    "Observations": (["phenomenonTime", "result", "resultTime"],
                     ["Datastream", "FeatureOfInterest"]),
    "FeaturesOfInterest": (["name", "description", "encodingType", "feature"],
                           ["Observations"]),
}


@pytest.mark.parametrize("entity_set", list(MODEL))
async def test_every_entity_has_its_properties_and_navigation_links(
    api: httpx.AsyncClient, dataset: Dataset, entity_set: str
) -> None:
    properties, navigations = MODEL[entity_set]
    entities = (await get(api, f"/v1.1/{entity_set}"))["value"]
    assert entities, f"the dataset made no {entity_set}"
    for entity in entities:
        self_link = f"{BASE}/v1.1/{entity_set}({entity['@iot.id']})"
        assert entity["@iot.selfLink"] == self_link
        assert set(properties) <= set(entity), entity
        for nav in navigations:
            assert entity[f"{nav}@iot.navigationLink"] == f"{self_link}/{nav}"


async def test_the_dataset_made_exactly_the_entities_posted(
    api: httpx.AsyncClient, dataset: Dataset
) -> None:
    counts = {name: (await get(api, f"/v1.1/{name}?$count=true&$top=0"))["@iot.count"]
              for name in MODEL}
    assert counts == {
        "Things": 3, "Locations": 3, "HistoricalLocations": 3,
        "Datastreams": len(dataset.streams()), "Sensors": len(dataset.streams()),
        # The two NO2 Datastreams share one ObservedProperty, linked by id.
        "ObservedProperties": len(dataset.streams()) - 1,
        "Observations": len(dataset.observations()),
        # One feature per station, made from its Location and reused by every Observation.
        "FeaturesOfInterest": 3,
    }


async def test_results_come_back_with_the_value_and_type_they_were_posted_with(
    api: httpx.AsyncClient, dataset: Dataset
) -> None:
    for stream in dataset.streams():
        ds = dataset.datastreams[stream.name]
        got = await all_pages(api, f"/v1.1/Datastreams({ds})/Observations"
                                   "?$orderby=phenomenonTime&$top=7")
        assert [(o["phenomenonTime"], o["result"]) for o in got] == list(
            zip(stream.times(), stream.values, strict=True))
        assert [type(o["result"]) for o in got] == [type(v) for v in stream.values]


async def test_a_datastream_unit_of_measurement_is_an_object(
    api: httpx.AsyncClient, dataset: Dataset
) -> None:
    for stream in dataset.streams():
        ds = await get(api, f"/v1.1/Datastreams({dataset.datastreams[stream.name]})")
        assert ds["unitOfMeasurement"] == stream.unit
        assert ds["observationType"] == stream.observation_type
