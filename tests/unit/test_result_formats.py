"""Which $resultFormat a read asks for, and what each format refuses before any query."""

import pytest

from api import expand, formats, paths
from api.errors import BadRequest
from api.formats import Shape
from api.settings import ApiSettings

SETTINGS = ApiSettings(mqtt_enabled=False)


def requested(raw: str | None, path: str, expansions: str | None = None,
              select: list[str] | None = None) -> Shape | None:
    return formats.requested(raw, paths.parse(path), select, expand.parse(expansions),
                             "http://city/v1.1", SETTINGS)


@pytest.mark.parametrize(("raw", "name"), [
    ("GeoJSON", "GeoJSON"), ("geojson", "GeoJSON"), ("GEOJSON", "GeoJSON"),
    ("csv", "CSV"), ("Csv", "CSV"),
    ("DATAARRAY", "dataArray"), ("dataarray", "dataArray"),
])
def test_format_names_match_whatever_their_case(raw: str, name: str) -> None:
    shape = requested(raw, "Observations")
    assert shape is not None and shape.name == name


def test_no_format_asked_for_is_none() -> None:
    assert requested(None, "Things") is None


@pytest.mark.parametrize("path", [
    "Things", "Things(1)", "Observations", "Datastreams(1)/Observations", "Locations",
    "FeaturesOfInterest(3)", "Datastreams", "Observations(7)/FeatureOfInterest",
])
def test_geojson_serves_every_set_with_a_geometry_of_its_own_or_of_where_it_is(
    path: str,
) -> None:
    assert requested("GeoJSON", path) is not None


@pytest.mark.parametrize(("raw", "path", "complaint"), [
    ("XML", "Things", "must be one of dataArray, CSV, GeoJSON, not 'XML'"),
    ("dataArray", "Things", "dataArray is for Observations"),
    ("GeoJSON", "Sensors", "Sensors have no geometry"),
    ("GeoJSON", "Things(1)/name", "not a property or \\$ref"),
    ("CSV", "Things/$ref", "not a property or \\$ref"),
])
def test_a_format_that_does_not_fit_the_request_is_refused(
    raw: str, path: str, complaint: str,
) -> None:
    with pytest.raises(BadRequest, match=complaint):
        requested(raw, path)


@pytest.mark.parametrize("expansions", [
    "Datastream", "Datastream($select=name)", "Datastream($expand=Thing($select=name))",
    "FeatureOfInterest,Datastream/Sensor",
])
def test_csv_takes_expansions_of_one_entity(expansions: str) -> None:
    assert requested("CSV", "Observations", expansions) is not None


@pytest.mark.parametrize(("path", "expansions", "collection"), [
    ("Things", "Datastreams", "Thing/Datastreams"),
    ("Observations", "Datastream($expand=Observations)", "Datastream/Observations"),
    ("Observations", "Datastream/Thing/Locations", "Thing/Locations"),
])
def test_csv_refuses_an_expanded_collection_naming_it(
    path: str, expansions: str, collection: str,
) -> None:
    with pytest.raises(BadRequest, match=f"{collection} is a collection"):
        requested("CSV", path, expansions)


def test_csv_refuses_an_expansion_of_a_navigation_that_does_not_exist() -> None:
    with pytest.raises(BadRequest, match="no navigation property 'Wheels'"):
        requested("CSV", "Observations", "Wheels")


@pytest.mark.parametrize(("path", "select", "read"), [
    ("Locations", ["name"], ["name", "location"]),
    ("Locations", ["name", "location"], ["name", "location"]),
    ("Datastreams", ["name"], ["name", "observedArea"]),
    ("Observations", ["result"], ["result", "phenomenonTime"]),
    ("Things", ["name"], ["name"]),
    ("Locations", None, None),
])
def test_geojson_reads_what_its_geometry_needs_even_if_not_selected(
    path: str, select: list[str] | None, read: list[str] | None,
) -> None:
    shape = requested("GeoJSON", path, select=select)
    assert formats.needed_columns(shape, select) == read


def test_other_formats_read_what_is_selected() -> None:
    shape = requested("CSV", "Locations", select=["name"])
    assert formats.needed_columns(shape, ["name"]) == ["name"]
