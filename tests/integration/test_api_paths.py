"""Resource paths as standard clients use them, on the seeded Stockholm fleet: the service
root with a trailing slash, 404 for a path through an entity that is absent, unrelated or
hidden, 204 for a null property, and absent optional properties left out of the JSON."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import frost_sta_client.utils
import httpx
import pytest

from api.app import create_app
from api.settings import ApiSettings
from tests.integration.readings import datastream, get

T0 = "2026-09-21T10:00:00Z"
LARGEST_ID = 2**63 - 1


@dataclass(frozen=True)
class Fleet:
    """Ids in the fleet: Hornsgatan 108, one of its Datastreams, a Datastream of another
    Thing, and a restricted Datastream with the Thing it belongs to."""

    thing: int
    own: int
    other: int
    restricted: int
    restricted_thing: int


@pytest.fixture
async def fleet(fleet_db: Any) -> Fleet:
    restricted = await fleet_db.fetchrow(
        "SELECT id, thing_id FROM datastreams WHERE access = 'restricted' ORDER BY id LIMIT 1")
    own = await datastream(fleet_db, "aq-hornsgatan-108", "no2")
    return Fleet(
        thing=await fleet_db.fetchval("SELECT thing_id FROM datastreams WHERE id = $1", own),
        own=own,
        other=await datastream(fleet_db, "aq-sveavagen-59", "no2"),
        restricted=restricted["id"], restricted_thing=restricted["thing_id"])


@pytest.fixture
async def anonymous(fleet_db: Any, db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The API reached without a key: open data only."""
    app = create_app(ApiSettings(database_url=db_url, mqtt_enabled=False))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://city") as c:
            yield c


async def not_found(client: httpx.AsyncClient, url: str) -> str:
    """The message of the 404 that `url` must answer."""
    body = await get(client, url, 404)
    assert body["code"] == "not_found"
    return str(body["message"])


async def test_the_service_root_is_served_with_or_without_a_trailing_slash(
    client: httpx.AsyncClient,
) -> None:
    plain = await get(client, "/v1.1")
    slashed = await get(client, "/v1.1/")
    assert slashed == plain
    assert slashed["value"][0] == {"name": "Things", "url": "http://city/v1.1/Things"}


@pytest.mark.parametrize("options", [
    "", "?$top=0&$count=true", "?$resultFormat=CSV", "/$ref",
])
async def test_a_collection_below_an_entity_that_does_not_exist_is_404_naming_it(
    client: httpx.AsyncClient, options: str
) -> None:
    message = await not_found(client, f"/v1.1/Things({LARGEST_ID})/Datastreams{options}")
    assert message == f"no Thing at /Things({LARGEST_ID})"


async def test_a_datastream_of_another_thing_in_a_path_is_404_naming_it(
    client: httpx.AsyncClient, fleet: Fleet
) -> None:
    named = f"no Datastream at /Things({fleet.thing})/Datastreams({fleet.other})"
    through = f"/v1.1/Things({fleet.thing})/Datastreams({fleet.other})"
    assert await not_found(client, f"{through}/Observations") == named
    assert await not_found(client, f"{through}/Observations/$ref") == named
    assert await not_found(client, f"{through}/Sensor") == named
    assert await not_found(client, f"{through}/name/$value") == named
    # The first step that fails is named, however deep the path goes on.
    deep = f"/v1.1/Datastreams({fleet.other})/Thing/Datastreams({fleet.own})/Observations"
    assert await not_found(client, deep) == (
        f"no Datastream at /Datastreams({fleet.other})/Thing/Datastreams({fleet.own})")


async def test_an_empty_collection_of_entities_that_exist_is_still_200(
    client: httpx.AsyncClient, fleet: Fleet
) -> None:
    own = f"/v1.1/Things({fleet.thing})/Datastreams({fleet.own})/Observations"
    assert (await get(client, own))["value"] == []
    assert (await get(client, f"{own}?$top=0&$count=true"))["@iot.count"] == 0
    past_the_end = await get(client, f"/v1.1/Things({fleet.thing})/Datastreams?$skip=100")
    assert past_the_end["value"] == []
    filtered = await get(client, f"/v1.1/Things({fleet.thing})/Datastreams"
                                 "?$filter=name eq 'nothing'")
    assert filtered["value"] == []


async def test_a_hidden_datastream_in_a_path_is_404_as_if_absent(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient, fleet: Fleet
) -> None:
    hidden = f"/v1.1/Things({fleet.restricted_thing})/Datastreams({fleet.restricted})"
    assert await not_found(anonymous, f"{hidden}/Observations") == (
        f"no Datastream at /Things({fleet.restricted_thing})/Datastreams({fleet.restricted})")
    assert await not_found(anonymous, f"/v1.1/Datastreams({fleet.restricted})/Observations"
                                      "?$count=true") == (
        f"no Datastream at /Datastreams({fleet.restricted})")
    # The admin's key sees it, and its (empty) collection.
    assert (await get(client, f"{hidden}/Observations"))["value"] == []


@pytest.mark.parametrize("segment", [
    f"Things({LARGEST_ID + 1})", f"Things({-LARGEST_ID - 2})", f"Things({'9' * 5000})",
    "Things(1_0)", "Things( 1)", "Things(1.0)",
])
async def test_an_id_outside_64_bits_or_not_an_integer_is_a_400_never_a_500(
    client: httpx.AsyncClient, segment: str
) -> None:
    for url in (f"/v1.1/{segment}", f"/v1.1/{segment}/Datastreams"):
        body = await get(client, url, 400)
        assert body["code"] == "bad_request"


async def test_ids_at_the_ends_of_the_64_bit_range_and_signed_ones_are_ids(
    client: httpx.AsyncClient, fleet: Fleet
) -> None:
    assert await not_found(client, f"/v1.1/Things({-LARGEST_ID - 1})/Datastreams") == (
        f"no Thing at /Things({-LARGEST_ID - 1})")
    signed = await get(client, f"/v1.1/Things(+{fleet.thing})/name")
    assert signed == {"name": "Hornsgatan 108"}


async def test_a_null_property_and_its_raw_value_are_204_no_content(
    client: httpx.AsyncClient, fleet_db: Any, fleet: Fleet
) -> None:
    sensor = await fleet_db.fetchval("SELECT sensor_id FROM datastreams WHERE id = $1",
                                     fleet.own)
    await fleet_db.execute("UPDATE sensors SET properties = NULL WHERE id = $1", sensor)
    await fleet_db.execute(
        "INSERT INTO observations (phenomenon_time, datastream_id, result_number) "
        "VALUES ($1::text::timestamptz, $2, 23.4)", T0, fleet.own)
    reading = await fleet_db.fetchval(
        "SELECT id FROM observations WHERE datastream_id = $1", fleet.own)
    for url in (f"/v1.1/Sensors({sensor})/properties/$value",
                f"/v1.1/Sensors({sensor})/properties",
                f"/v1.1/Observations({reading})/resultTime/$value"):
        response = await client.get(url)
        assert (response.status_code, response.content) == (204, b""), url
    # Values that are there keep coming back as before.
    raw = await client.get(f"/v1.1/Things({fleet.thing})/properties/$value")
    assert (raw.status_code, raw.text) == (200, '{"site_role": "street"}')
    name = await client.get(f"/v1.1/Things({fleet.thing})/name/$value")
    assert (name.status_code, name.text) == (200, "Hornsgatan 108")


async def test_absent_optional_properties_are_left_out_even_when_selected(
    client: httpx.AsyncClient, fleet_db: Any, fleet: Fleet
) -> None:
    sensor = await fleet_db.fetchval("SELECT sensor_id FROM datastreams WHERE id = $1",
                                     fleet.own)
    await fleet_db.execute("UPDATE sensors SET properties = NULL WHERE id = $1", sensor)
    await fleet_db.execute(
        "UPDATE datastreams SET properties = NULL, observed_area = NULL, "
        "phenomenon_time_start = NULL, phenomenon_time_end = NULL, "
        "result_time_start = NULL, result_time_end = NULL WHERE id = $1", fleet.own)
    body = await get(client, f"/v1.1/Sensors({sensor})")
    assert "properties" not in body
    assert {"name", "description", "encodingType", "metadata"} <= set(body)
    selected = await get(client, f"/v1.1/Sensors({sensor})?$select=name,properties")
    assert set(selected) == {"name"}
    stream = await get(client, f"/v1.1/Datastreams({fleet.own})")
    assert not {"properties", "observedArea", "phenomenonTime", "resultTime"} & set(stream)
    assert stream["unitOfMeasurement"]["symbol"] == "µg/m³"
    # The same Datastream expanded below its Thing.
    thing = await get(client, f"/v1.1/Things({fleet.thing})?$expand=Datastreams("
                              f"$filter=id eq {fleet.own})")
    (expanded,) = thing["Datastreams"]
    assert "phenomenonTime" not in expanded


async def test_an_observation_shows_a_null_result_time_and_leaves_out_what_it_lacks(
    client: httpx.AsyncClient, fleet_db: Any, fleet: Fleet
) -> None:
    await fleet_db.execute(
        "INSERT INTO observations (phenomenon_time, datastream_id, result_number) "
        "VALUES ($1::text::timestamptz, $2, 23.4), ($1::text::timestamptz + interval '1 min',"
        " $2, 24.5)", T0, fleet.own)
    await fleet_db.execute(
        "UPDATE observations SET result_time = phenomenon_time, parameters = '{\"gain\": 2}',"
        " result_quality = '\"good\"', valid_time_start = phenomenon_time,"
        " valid_time_end = phenomenon_time + interval '1 hour' "
        "WHERE datastream_id = $1 AND result_number = 24.5", fleet.own)
    page = await get(client, f"/v1.1/Datastreams({fleet.own})/Observations"
                             "?$orderby=phenomenonTime")
    bare, full = page["value"]
    assert bare["resultTime"] is None  # mandatory, null until known
    assert not {"validTime", "resultQuality", "parameters"} & set(bare)
    assert (full["resultTime"], full["validTime"], full["resultQuality"], full["parameters"]) \
        == ("2026-09-21T10:01:00Z", "2026-09-21T10:01:00Z/2026-09-21T11:01:00Z", "good",
            {"gain": 2})


@pytest.mark.parametrize(("entity_set", "model"), [
    ("Sensors", "sensor.Sensor"), ("ObservedProperties", "observedproperty.ObservedProperty"),
    ("Datastreams", "datastream.Datastream"), ("Things", "thing.Thing"),
    ("Locations", "location.Location"),
    ("FeaturesOfInterest", "feature_of_interest.FeatureOfInterest"),
    ("Observations", "observation.Observation"),
])
async def test_the_frost_client_parses_entities_without_optional_properties(
    client: httpx.AsyncClient, fleet_db: Any, fleet: Fleet, entity_set: str, model: str
) -> None:
    await fleet_db.execute(
        "INSERT INTO observations (phenomenon_time, datastream_id, result_number) "
        "VALUES ($1::text::timestamptz, $2, 23.4)", T0, fleet.own)
    for table in ("things", "locations", "sensors", "observed_properties", "datastreams",
                  "features_of_interest"):
        await fleet_db.execute(f"UPDATE {table} SET properties = NULL")
    page = await get(client, f"/v1.1/{entity_set}?$top=1")
    (body,) = page["value"]
    parsed = frost_sta_client.utils.transform_json_to_entity(
        body, f"frost_sta_client.model.{model}")
    assert parsed.id == body["@iot.id"]
    assert not {"properties", "parameters"} & set(body)
