"""The conformance dataset: three stations posted through the API by deep insert.

Every expectation of the suite is computed from these definitions, so a test states what
the standard requires, not what the server happened to answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

T0 = datetime(2026, 9, 21, 0, 0, tzinfo=UTC)
MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
COUNT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_CountObservation"
NO2 = {"name": "NO2", "definition": "http://vocab.nerc.ac.uk/collection/P07/current/CFSN0729/",
       "description": "Nitrogen dioxide in air"}


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Stream:
    name: str
    observed: dict[str, str]
    values: list[Any]
    observation_type: str = MEASUREMENT
    unit: dict[str, str] = field(default_factory=lambda: {
        "name": "microgram per cubic metre", "symbol": "µg/m³",
        "definition": "http://unitsofmeasure.org/ucum.html#para-30"})

    def times(self) -> list[str]:
        return [iso(T0 + timedelta(hours=i)) for i in range(len(self.values))]


@dataclass(frozen=True)
class Station:
    name: str
    lon: float
    lat: float
    role: str
    streams: list[Stream]


STATIONS = [
    Station("Conformance Hornsgatan", 18.0490, 59.3172, "street", [
        Stream("Hornsgatan NO2", NO2, [i * 1.5 for i in range(24)]),
        Stream("Hornsgatan PM10", {"name": "PM10", "definition": "urn:pm10",
                                   "description": "Particles under 10 µm"},
               [10.0 + i for i in range(12)]),
    ]),
    Station("Conformance Torkel Knutssonsgatan", 18.0576, 59.3162, "urban background", [
        Stream("Torkel NO2", NO2, [50.0 + 2 * i for i in range(12)]),
    ]),
    Station("Conformance Essingeleden counter", 17.9998, 59.3252, "road", [
        Stream("Essingeleden vehicles", {"name": "vehicles", "definition": "urn:vehicles",
                                         "description": "Vehicles passing"},
               [100 + 7 * i for i in range(10)], COUNT,
               {"name": "count", "symbol": "{vehicle}", "definition": "urn:count"}),
    ]),
]


@dataclass
class Dataset:
    """What the API answered while the dataset was posted: ids by name."""

    things: dict[str, int] = field(default_factory=dict)
    datastreams: dict[str, int] = field(default_factory=dict)
    observed_properties: dict[str, int] = field(default_factory=dict)

    def streams(self) -> list[Stream]:
        return [s for station in STATIONS for s in station.streams]

    def observations(self) -> list[tuple[str, str, Any]]:
        """(stream name, phenomenon time, result) of every Observation."""
        return [(s.name, t, v) for s in self.streams() for t, v in zip(s.times(), s.values,
                                                                       strict=True)]


def _stream_body(stream: Stream, dataset: Dataset) -> dict[str, Any]:
    known = dataset.observed_properties.get(stream.observed["name"])
    return {
        "name": stream.name, "description": f"{stream.name} at the station",
        "observationType": stream.observation_type, "unitOfMeasurement": stream.unit,
        "Sensor": {"name": f"{stream.name} sensor", "description": "Analyser",
                   "encodingType": "application/pdf", "metadata": "urn:datasheet"},
        "ObservedProperty": {"@iot.id": known} if known else stream.observed,
        "Observations": [{"phenomenonTime": t, "result": v}
                         for t, v in zip(stream.times(), stream.values, strict=True)],
    }


async def post_dataset(client: httpx.AsyncClient) -> Dataset:
    """Post every station with its Location, Datastreams and Observations in one request
    each; an ObservedProperty made by an earlier station is linked by id."""
    dataset = Dataset()
    for station in STATIONS:
        body = {
            "name": station.name, "description": f"{station.name} monitoring site",
            "properties": {"site_role": station.role},
            "Locations": [{"name": station.name, "description": "Where it stands",
                           "encodingType": "application/geo+json",
                           "location": {"type": "Point",
                                        "coordinates": [station.lon, station.lat]}}],
            "Datastreams": [_stream_body(s, dataset) for s in station.streams],
        }
        response = await client.post("/v1.1/Things", json=body)
        assert response.status_code == 201, response.text
        thing = response.json()
        dataset.things[station.name] = thing["@iot.id"]
        streams = (await client.get(
            f"/v1.1/Things({thing['@iot.id']})/Datastreams?$expand=ObservedProperty")).json()
        for ds in streams["value"]:
            dataset.datastreams[ds["name"]] = ds["@iot.id"]
            dataset.observed_properties[ds["ObservedProperty"]["name"]] = (
                ds["ObservedProperty"]["@iot.id"])
    return dataset
