"""The eight SensorThings entity sets and how each sits in the schema.

Each entity type names its table, its properties (SensorThings name → SQL expression over
the table alias `e`, with a type tag), and its navigation properties (how to reach the
related rows). Only these fixed expressions ever become SQL text; user input reaches the
database as parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from api.odata import ColumnType


@dataclass(frozen=True)
class Prop:
    """A property: its SQL expression over alias `e`, its type tag, and, where filtering
    needs another expression than the output (a geometry, not its GeoJSON), that one.

    `optional` properties (multiplicity 0..1 in the data model) are left out of an entity's
    JSON when absent, rather than shown as null where a client expects an object.
    """

    sql: str
    kind: ColumnType
    filter_sql: str | None = None
    optional: bool = False


@dataclass(frozen=True)
class Nav:
    """A navigation property: the target set, and a condition joining target `t` to `e`.

    `to_one` navigations (Datastream/Thing) give one entity, the others a collection.
    """

    target: str
    join: str
    to_one: bool = False


@dataclass(frozen=True)
class EntityType:
    name: str  # singular, e.g. "Thing"
    set_name: str  # plural, e.g. "Things"
    table: str
    props: dict[str, Prop]
    navs: dict[str, Nav] = field(default_factory=dict)
    default_order: str = "e.id"
    # What makes an order total after $orderby. For Observations (datastream, time,
    # interval end) is unique and matches the index, which the id does not.
    tiebreak: str = "e.id"


def _geojson(column: str, optional: bool = False) -> Prop:
    return Prop(f"ST_AsGeoJSON({column})::jsonb", "geometry", filter_sql=column,
                optional=optional)


def _interval(start: str, end: str) -> Prop:
    """An optional time interval, shown as ISO 8601 `start/end` (api/serialize.py);
    filters and orders by its start."""
    return Prop(f"CASE WHEN {start} IS NOT NULL THEN tstzrange({start}, {end}, '[]') END",
                "datetime", filter_sql=start, optional=True)


# Every entity's `properties`: a JSON object, optional.
_PROPERTIES = Prop("e.properties", "json", optional=True)


THINGS = EntityType("Thing", "Things", "things", {
    "name": Prop("e.name", "string"),
    "description": Prop("e.description", "string"),
    "properties": _PROPERTIES,
}, {
    "Locations": Nav("Locations", "t.id IN (SELECT location_id FROM thing_locations "
                                  "WHERE thing_id = e.id)"),
    "HistoricalLocations": Nav("HistoricalLocations", "t.thing_id = e.id"),
    "Datastreams": Nav("Datastreams", "t.thing_id = e.id"),
})

LOCATIONS = EntityType("Location", "Locations", "locations", {
    "name": Prop("e.name", "string"),
    "description": Prop("e.description", "string"),
    "encodingType": Prop("e.encoding_type", "string"),
    "location": _geojson("e.location"),
    "properties": _PROPERTIES,
}, {
    "Things": Nav("Things", "t.id IN (SELECT thing_id FROM thing_locations "
                            "WHERE location_id = e.id)"),
    "HistoricalLocations": Nav("HistoricalLocations", "t.id IN (SELECT historical_location_id "
                               "FROM historical_location_locations WHERE location_id = e.id)"),
})

HISTORICAL_LOCATIONS = EntityType("HistoricalLocation", "HistoricalLocations",
                                  "historical_locations", {
    "time": Prop("e.time", "datetime"),
}, {
    "Thing": Nav("Things", "t.id = e.thing_id", to_one=True),
    "Locations": Nav("Locations", "t.id IN (SELECT location_id FROM "
                     "historical_location_locations WHERE historical_location_id = e.id)"),
})

SENSORS = EntityType("Sensor", "Sensors", "sensors", {
    "name": Prop("e.name", "string"),
    "description": Prop("e.description", "string"),
    "encodingType": Prop("e.encoding_type", "string"),
    "metadata": Prop("e.metadata", "string"),
    "properties": _PROPERTIES,
}, {
    "Datastreams": Nav("Datastreams", "t.sensor_id = e.id"),
})

OBSERVED_PROPERTIES = EntityType("ObservedProperty", "ObservedProperties",
                                 "observed_properties", {
    "name": Prop("e.name", "string"),
    "definition": Prop("e.definition", "string"),
    "description": Prop("e.description", "string"),
    "properties": _PROPERTIES,
}, {
    "Datastreams": Nav("Datastreams", "t.observed_property_id = e.id"),
})

DATASTREAMS = EntityType("Datastream", "Datastreams", "datastreams", {
    "name": Prop("e.name", "string"),
    "description": Prop("e.description", "string"),
    "observationType": Prop("e.observation_type", "string"),
    "unitOfMeasurement": Prop("jsonb_build_object('name', e.unit_name, 'symbol', "
                              "e.unit_symbol, 'definition', e.unit_definition)", "json"),
    "observedArea": _geojson("e.observed_area", optional=True),
    "phenomenonTime": _interval("e.phenomenon_time_start", "e.phenomenon_time_end"),
    "resultTime": _interval("e.result_time_start", "e.result_time_end"),
    "properties": _PROPERTIES,
}, {
    "Thing": Nav("Things", "t.id = e.thing_id", to_one=True),
    "Sensor": Nav("Sensors", "t.id = e.sensor_id", to_one=True),
    "ObservedProperty": Nav("ObservedProperties", "t.id = e.observed_property_id",
                            to_one=True),
    "Observations": Nav("Observations", "t.datastream_id = e.id"),
})

# The result is whichever typed column holds it, as JSON so every kind keeps its type.
RESULT = ("COALESCE(to_jsonb(e.result_number), to_jsonb(e.result_integer), "
          "to_jsonb(e.result_string), to_jsonb(e.result_boolean), e.result_json)")
# As shown, a floating-point number keeps a fractional digit (5.0, 1500…0.0 for 1.5e300):
# JSON numbers in jsonb never have an exponent, and without the digit 5.0 would read back
# as the integer 5. The text of a float8 is its shortest exact form, so no digit is lost.
_NUMBER = "e.result_number::text::numeric"
RESULT_SHOWN = (f"COALESCE(to_jsonb(round({_NUMBER}, greatest(scale({_NUMBER}), 1))), "
                "to_jsonb(e.result_integer), to_jsonb(e.result_string), "
                "to_jsonb(e.result_boolean), e.result_json)")

# Default order by Datastream, then time: the unique index serves it, so a page of all
# Observations reads only that page (time first, it sorted a year of rows: 4.5 s).
OBSERVATIONS = EntityType("Observation", "Observations", "observations", {
    # An instant, or an interval when the Observation has an end.
    "phenomenonTime": Prop("tstzrange(e.phenomenon_time, e.phenomenon_time_end, '[]')",
                           "datetime", filter_sql="e.phenomenon_time"),
    # Mandatory, yet null until known, as the standard says: shown as null, not left out.
    "resultTime": Prop("e.result_time", "datetime"),
    "validTime": _interval("e.valid_time_start", "e.valid_time_end"),
    "result": Prop(RESULT_SHOWN, "json", filter_sql=RESULT),
    "resultQuality": Prop("e.result_quality", "json", optional=True),
    "parameters": Prop("e.parameters", "json", optional=True),
}, {
    "Datastream": Nav("Datastreams", "t.id = e.datastream_id", to_one=True),
    "FeatureOfInterest": Nav("FeaturesOfInterest", "t.id = e.feature_id", to_one=True),
}, default_order="e.datastream_id, e.phenomenon_time, e.phenomenon_time_end NULLS FIRST",
   tiebreak="e.datastream_id, e.phenomenon_time, e.phenomenon_time_end NULLS FIRST")

FEATURES_OF_INTEREST = EntityType("FeatureOfInterest", "FeaturesOfInterest",
                                  "features_of_interest", {
    "name": Prop("e.name", "string"),
    "description": Prop("e.description", "string"),
    "encodingType": Prop("e.encoding_type", "string"),
    "feature": _geojson("e.feature"),
    "properties": _PROPERTIES,
}, {
    "Observations": Nav("Observations", "t.feature_id = e.id"),
})

ENTITY_SETS: dict[str, EntityType] = {
    e.set_name: e for e in (
        THINGS, LOCATIONS, HISTORICAL_LOCATIONS, SENSORS, OBSERVED_PROPERTIES, DATASTREAMS,
        OBSERVATIONS, FEATURES_OF_INTEREST,
    )
}
