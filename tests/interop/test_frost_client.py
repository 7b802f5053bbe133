"""frost-sta-client, the SensorThings client of the FROST project, against the API: each
flow as the client's README shows it, over HTTP Basic with a writer's key, and what it
made or read checked against the database."""

from __future__ import annotations

import json
from typing import Any

import frost_sta_client as fsc
import pytest
import requests
from geojson import Point

from tests.conformance.dataset import MEASUREMENT, STATIONS, Dataset, iso

TORKEL = "Conformance Torkel Knutssonsgatan"
ESSINGELEDEN = "Conformance Essingeleden counter"

# The client asks furl for a property furl has deprecated; the warning is the client's.
pytestmark = pytest.mark.filterwarnings("ignore:furl.pathstr is deprecated:DeprecationWarning")


def _result(row: Any) -> Any:
    """The result of an observations row, whichever column holds it."""
    return next(row[c] for c in ("result_number", "result_integer", "result_string",
                                 "result_boolean") if row[c] is not None)


async def test_things_list_with_their_locations_expanded(
    service: fsc.SensorThingsService, dataset: Dataset, db: Any
) -> None:
    things = service.things().query().expand("Locations").list()

    listed = {(t.id, t.name): [(loc.name, loc.encoding_type, loc.location)
                               for loc in t.locations.entities] for t in things}
    rows = await db.fetch(
        "SELECT t.id, t.name, l.name AS place, l.encoding_type, "
        "ST_AsGeoJSON(l.location) AS geometry FROM things t "
        "JOIN thing_locations tl ON tl.thing_id = t.id JOIN locations l ON l.id = tl.location_id")
    assert listed == {(r["id"], r["name"]): [(r["place"], r["encoding_type"],
                                               json.loads(r["geometry"]))] for r in rows}
    assert {name for _, name in listed} == {s.name for s in STATIONS}


async def test_iterating_a_listing_follows_next_links_past_the_first_page(
    service: fsc.SensorThingsService, dataset: Dataset, db: Any
) -> None:
    ident = dataset.datastreams["Hornsgatan NO2"]
    datastream = service.datastreams().find(ident)

    listing = datastream.get_observations().query().top(10).list()
    assert len(listing.entities) == 10
    assert listing.next_link is not None
    read = [(o.phenomenon_time, o.result) for o in listing]

    rows = await db.fetch("SELECT * FROM observations WHERE datastream_id = $1 "
                          "ORDER BY phenomenon_time", ident)
    assert len(rows) == 24  # three pages of ten
    assert read == [(iso(r["phenomenon_time"]), _result(r)) for r in rows]


async def test_filtered_observations_come_in_the_order_asked_for_in_capitals(
    service: fsc.SensorThingsService, dataset: Dataset, db: Any
) -> None:
    listing = (service.observations().query().filter("result gt 20")
               .orderby("phenomenonTime", "ASC").list())
    read = [(o.phenomenon_time, o.result) for o in listing]

    rows = await db.fetch("SELECT * FROM observations")
    matching = [(iso(r["phenomenon_time"]), _result(r)) for r in rows if _result(r) > 20]
    assert sorted(read) == sorted(matching)
    # Across Datastreams, so the default order (Datastream, then time) would not be this.
    assert [t for t, _ in read] == sorted(t for t, _ in matching)


async def test_a_thing_found_by_id_is_the_stored_one(
    service: fsc.SensorThingsService, dataset: Dataset, db: Any
) -> None:
    ident = dataset.things[TORKEL]

    thing = service.things().find(ident)

    row = await db.fetchrow("SELECT * FROM things WHERE id = $1", ident)
    assert (thing.id, thing.name, thing.description, thing.properties) == (
        ident, row["name"], row["description"], json.loads(row["properties"]))
    assert thing.properties == {"site_role": "urban background"}


async def test_deep_insert_creates_a_thing_with_its_location_datastream_sensor_and_property(
    service: fsc.SensorThingsService, db: Any
) -> None:
    thing = fsc.Thing(name="Weather mast Odenplan", description="Temperature at 4 m",
                      properties={"height_m": 4})
    thing.locations = [fsc.Location(name="Odenplan", description="Mast on the square",
                                    location=Point((18.0493, 59.343)),
                                    encoding_type="application/geo+json")]
    thing.datastreams = [fsc.Datastream(
        name="Odenplan air temperature", description="Each minute",
        observation_type=MEASUREMENT,
        unit_of_measurement=fsc.UnitOfMeasurement(
            name="degree Celsius", symbol="°C",
            definition="http://unitsofmeasure.org/ucum.html#Cel"),
        sensor=fsc.Sensor(name="PT100", description="Platinum resistance thermometer",
                          encoding_type="text/html", metadata="https://example.org/pt100"),
        observed_property=fsc.ObservedProperty(
            name="Air temperature", description="Temperature of the air",
            definition="http://vocab.nerc.ac.uk/collection/P07/current/CFSN0023/"),
    )]

    service.create(thing)

    stored = await db.fetchrow(
        "SELECT t.name, t.description, t.properties, a.code AS agency FROM things t "
        "JOIN agencies a ON a.id = t.agency_id WHERE t.id = $1", thing.id)
    assert (stored["name"], stored["description"], json.loads(stored["properties"]),
            stored["agency"]) == ("Weather mast Odenplan", "Temperature at 4 m",
                                  {"height_m": 4}, "city")
    places = await db.fetch(
        "SELECT l.name, l.encoding_type, ST_X(l.location) AS lon, ST_Y(l.location) AS lat "
        "FROM thing_locations tl JOIN locations l ON l.id = tl.location_id "
        "WHERE tl.thing_id = $1", thing.id)
    assert [tuple(p) for p in places] == [
        ("Odenplan", "application/geo+json", 18.0493, 59.343)]
    streams = await db.fetch(
        "SELECT d.name, d.observation_type, d.unit_name, d.unit_symbol, d.unit_definition, "
        "s.name AS sensor, s.encoding_type, s.metadata, o.name AS property, o.definition "
        "FROM datastreams d JOIN sensors s ON s.id = d.sensor_id "
        "JOIN observed_properties o ON o.id = d.observed_property_id WHERE d.thing_id = $1",
        thing.id)
    assert [tuple(s) for s in streams] == [(
        "Odenplan air temperature", MEASUREMENT, "degree Celsius", "°C",
        "http://unitsofmeasure.org/ucum.html#Cel", "PT100", "text/html",
        "https://example.org/pt100", "Air temperature",
        "http://vocab.nerc.ac.uk/collection/P07/current/CFSN0023/")]
    assert await db.fetchval("SELECT count(*) FROM historical_locations WHERE thing_id = $1",
                             thing.id) == 1


async def test_an_observation_of_a_fetched_datastream_is_stored_in_it(
    service: fsc.SensorThingsService, dataset: Dataset, db: Any
) -> None:
    ident = dataset.datastreams["Torkel NO2"]
    datastream = service.datastreams().find(ident)
    observation = fsc.Observation(result=41.5, phenomenon_time="2026-09-22T08:00:00Z",
                                  datastream=datastream)

    service.create(observation)

    row = await db.fetchrow("SELECT * FROM observations WHERE id = $1", observation.id)
    assert (row["datastream_id"], iso(row["phenomenon_time"]), _result(row)) == (
        ident, "2026-09-22T08:00:00Z", 41.5)
    assert row["feature_id"] is not None  # made from the Thing's Location


async def test_a_data_array_creates_every_row_with_its_feature_of_interest(
    service: fsc.SensorThingsService, dataset: Dataset, db: Any
) -> None:
    ident = dataset.datastreams["Hornsgatan PM10"]
    feature_id = await db.fetchval(
        "SELECT min(feature_id) FROM observations WHERE datastream_id = $1", ident)
    datastream = service.datastreams().find(ident)
    feature = service.features_of_interest().find(feature_id)
    dav = fsc.DataArrayValue()
    dav.components = {dav.Property.PHENOMENON_TIME, dav.Property.RESULT,
                      dav.Property.FEATURE_OF_INTEREST}
    dav.datastream = datastream
    dav.add_observation(fsc.Observation(result=3, phenomenon_time="2026-09-23T10:00:00Z",
                                        datastream=datastream, feature_of_interest=feature))
    # An instant and an interval that start together, as in the client's README.
    dav.add_observation(fsc.Observation(
        result=5, phenomenon_time="2026-09-23T10:00:00Z/2026-09-23T11:00:00Z",
        datastream=datastream, feature_of_interest=feature))
    document = fsc.DataArrayDocument()
    document.add_data_array_value(dav)

    created = service.observations().create(document)

    links = [o.self_link for o in created]  # a row the server refused reads "error"
    assert [link.startswith(f"{service.url.url}/Observations(") for link in links] == [
        True, True], links
    ids = [fsc.utils.extract_value(link) for link in links]
    rows = [await db.fetchrow("SELECT * FROM observations WHERE id = $1", i) for i in ids]
    assert [(r["datastream_id"], r["feature_id"], iso(r["phenomenon_time"]),
             r["phenomenon_time_end"] and iso(r["phenomenon_time_end"]), _result(r))
            for r in rows] == [
        (ident, feature_id, "2026-09-23T10:00:00Z", None, 3),
        (ident, feature_id, "2026-09-23T10:00:00Z", "2026-09-23T11:00:00Z", 5)]


async def test_a_json_patch_changes_what_it_names_and_nothing_else(
    service: fsc.SensorThingsService, dataset: Dataset, db: Any
) -> None:
    ident = dataset.things[TORKEL]
    thing = service.things().find(ident)

    service.patch(thing, [{"op": "replace", "path": "/description", "value": "Moved indoors"},
                          {"op": "add", "path": "/properties/height_m", "value": 3}])

    row = await db.fetchrow("SELECT * FROM things WHERE id = $1", ident)
    assert (row["name"], row["description"], json.loads(row["properties"])) == (
        TORKEL, "Moved indoors", {"site_role": "urban background", "height_m": 3})


async def test_an_update_replaces_the_fetched_thing_with_the_changed_one(
    service: fsc.SensorThingsService, dataset: Dataset, db: Any
) -> None:
    ident = dataset.things[TORKEL]
    thing = service.things().find(ident)
    thing.name = "Torkel Knutssonsgatan roof"
    thing.properties = {"site_role": "rooftop"}

    service.update(thing)

    row = await db.fetchrow("SELECT * FROM things WHERE id = $1", ident)
    assert (row["name"], row["description"], json.loads(row["properties"])) == (
        "Torkel Knutssonsgatan roof", f"{TORKEL} monitoring site", {"site_role": "rooftop"})
    assert await db.fetchval("SELECT count(*) FROM datastreams WHERE thing_id = $1", ident) == 1


async def test_a_deleted_thing_is_gone_with_its_datastreams(
    service: fsc.SensorThingsService, dataset: Dataset, db: Any
) -> None:
    ident = dataset.things[ESSINGELEDEN]
    thing = service.things().find(ident)

    service.delete(thing)

    assert await db.fetchval("SELECT count(*) FROM things WHERE id = $1", ident) == 0
    assert await db.fetchval("SELECT count(*) FROM datastreams WHERE thing_id = $1", ident) == 0
    assert await db.fetchval("SELECT count(*) FROM observations WHERE datastream_id = $1",
                             dataset.datastreams["Essingeleden vehicles"]) == 0
    with pytest.raises(requests.HTTPError) as answer:
        service.things().find(ident)
    assert answer.value.response.status_code == 404
    assert {t.name for t in service.things().query().list()} == {
        s.name for s in STATIONS} - {ESSINGELEDEN}


async def test_sensors_list_as_stored(
    service: fsc.SensorThingsService, dataset: Dataset, db: Any
) -> None:
    sensors = service.sensors().query().list()

    listed = {(s.id, s.name, s.description, s.encoding_type, s.metadata) for s in sensors}
    rows = await db.fetch("SELECT id, name, description, encoding_type, metadata FROM sensors")
    assert listed == {tuple(r) for r in rows}
    assert {name for _, name, *_ in listed} == {
        f"{stream.name} sensor" for stream in dataset.streams()}
