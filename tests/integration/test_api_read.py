"""The readings API on the real database: entity sets, paths, paging, errors."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from api.app import create_app
from api.settings import ApiSettings
from tests.integration.readings import get, seed_hour

T0 = "2026-09-21T10:00:00Z"


async def test_the_service_root_lists_exactly_the_eight_entity_sets(
    client: httpx.AsyncClient,
) -> None:
    root = await get(client, "/v1.1")
    assert [e["name"] for e in root["value"]] == [
        "Things", "Locations", "HistoricalLocations", "Sensors", "ObservedProperties",
        "Datastreams", "Observations", "FeaturesOfInterest",
    ]
    assert root["value"][0]["url"] == "http://city/v1.1/Things"
    assert root["serverSettings"]["conformance"]


async def test_a_thing_has_its_id_self_link_properties_and_navigation_links(
    client: httpx.AsyncClient,
) -> None:
    things = await get(client, "/v1.1/Things?$orderby=name&$top=1")
    first = things["value"][0]
    assert first["name"] == "E4/E20 Lilla Essingen"
    thing = await get(client, f"/v1.1/Things({first['@iot.id']})")
    assert thing["@iot.selfLink"] == f"http://city/v1.1/Things({first['@iot.id']})"
    assert thing["Datastreams@iot.navigationLink"].endswith("/Datastreams")
    assert thing["properties"] == {"site_role": "street"}


async def test_pages_follow_next_links_until_the_last_which_has_none(
    client: httpx.AsyncClient,
) -> None:
    page = await get(client, "/v1.1/Things?$count=true&$orderby=name desc")
    assert page["@iot.count"] == 15
    names: list[str] = []
    while True:
        names += [t["name"] for t in page["value"]]
        if "@iot.nextLink" not in page:
            break
        assert "%24orderby=name+desc" in page["@iot.nextLink"]
        page = await get(client, page["@iot.nextLink"])
    assert len(names) == 15 and names == sorted(names, reverse=True)


async def test_navigation_reaches_related_entities_at_any_depth(
    client: httpx.AsyncClient, fleet_db: Any
) -> None:
    thing_id = await fleet_db.fetchval(
        "SELECT id FROM things WHERE device_id = 'aq-hornsgatan-108'")
    streams = await get(client, f"/v1.1/Things({thing_id})/Datastreams?$count=true&$top=20")
    assert streams["@iot.count"] == 9
    ds_id = streams["value"][0]["@iot.id"]
    sensor = await get(client, f"/v1.1/Things({thing_id})/Datastreams({ds_id})/Sensor")
    assert sensor["name"] == "Air-quality monitoring station"
    name = await get(client, f"/v1.1/Datastreams({ds_id})/Thing/name")
    assert name == {"name": "Hornsgatan 108"}
    raw = await client.get(f"/v1.1/Datastreams({ds_id})/Thing/name/$value")
    assert raw.text == "Hornsgatan 108"
    location = await get(client, f"/v1.1/Things({thing_id})/Locations")
    assert location["value"][0]["location"]["type"] == "Point"


async def test_observations_come_back_with_their_results_and_times(
    client: httpx.AsyncClient, fleet_db: Any
) -> None:
    ds_id = await fleet_db.fetchval("SELECT min(id) FROM datastreams")
    await fleet_db.execute(
        "INSERT INTO observations (phenomenon_time, datastream_id, result_integer) "
        "VALUES ($1::text::timestamptz, $2, 9223372036854775807)", T0, ds_id)
    obs = await get(client, f"/v1.1/Datastreams({ds_id})/Observations")
    assert [(o["phenomenonTime"], o["result"]) for o in obs["value"]] == [
        (T0, 9223372036854775807)]


@pytest.mark.parametrize(("url", "status", "code"), [
    ("/v1.1/Things(999999)", 404, "not_found"),
    ("/v1.1/Cars", 404, "not_found"),
    ("/v1.1/Things(abc)", 400, "bad_request"),
    ("/v1.1/Things?$top=-1", 400, "bad_request"),
    ("/v1.1/Things?$orderby=colour", 400, "bad_request"),
    ("/v1.1/Things?$count=maybe", 400, "bad_request"),
    ("/v1.1/Things?$frobnicate=1", 400, "bad_request"),
    ("/v1.1/Things(1)/Wheels", 404, "not_found"),
    ("/v1.1/Things/Datastreams", 400, "bad_request"),
    ("/v1.1/Things?$resultFormat=dataArray", 400, "bad_request"),
    ("/v1.1/Sensors?$resultFormat=GeoJSON", 400, "bad_request"),
    ("/v1.1/Observations?$resultFormat=XML", 400, "bad_request"),
    ("/v1.1/Things(9223372036854775808)", 400, "bad_request"),
    ("/v1.1/Things?$top=\u00b2", 400, "bad_request"),
    ("/v1.1/Things?$expand=Datastreams($skip=99999999999999999999)", 400, "bad_request"),
    ("/v1.1/Things?$expand=Datastreams($top=1),Datastreams($top=2)", 400, "bad_request"),
    ("/v1.1/Things?$filter=name eq", 400, "bad_request"),
    ("/v1.1/Things?$filter=colour eq 'red'", 400, "bad_request"),
    ("/v1.1/Things?$filter=length(5) gt 1", 400, "bad_request"),
    ("/v1.1/Things?$filter=Datastreams/colour eq 'x'", 400, "bad_request"),
    ("/v1.1/Things?$orderby=Datastreams/name", 400, "bad_request"),
    ("/v1.1/Things?$search=Hornsgatan", 501, "not_implemented"),
    ("/v1.1/Observations?$apply=aggregate(result with average as mean)", 501,
     "not_implemented"),
    ("/v1.1/Things?$expand=Datastreams($levels=2)", 501, "not_implemented"),
    ("/v1.1/Observations?$filter=phenomenonTime gt 99999-01-01T00:00:00Z", 400, "bad_request"),
])
async def test_a_bad_request_gets_a_json_error_never_a_500(
    client: httpx.AsyncClient, url: str, status: int, code: str
) -> None:
    body = await get(client, url, status)
    assert body["code"] == code and body["message"]


async def test_the_latest_reading_of_every_datastream_comes_in_one_request(
    client: httpx.AsyncClient, fleet_db: Any
) -> None:
    ds_id = await seed_hour(fleet_db)
    latest = await get(client, "/api/latest")
    assert len(latest["value"]) == 155
    mine = next(v for v in latest["value"] if v["datastream"] == ds_id)
    assert (mine["phenomenonTime"], mine["result"]) == ("2026-09-21T11:59:00Z", 119.0)
    assert mine["location"]["type"] == "Point"
    of_thing = await get(client, f"/api/latest?thing={mine['thing']}")
    assert len(of_thing["value"]) == 9


async def test_a_series_is_downsampled_per_interval(
    client: httpx.AsyncClient, fleet_db: Any
) -> None:
    ds_id = await seed_hour(fleet_db)
    hourly = await get(client, f"/api/Datastreams({ds_id})/series?interval=1 hour"
                               "&start=2026-09-21T10:00:00Z&end=2026-09-21T12:00:00Z")
    assert [(b["time"], b["avg"], b["min"], b["max"], b["count"]) for b in hourly["value"]] == [
        ("2026-09-21T10:00:00Z", 29.5, 0.0, 59.0, 60),
        ("2026-09-21T11:00:00Z", 89.5, 60.0, 119.0, 60),
    ]


@pytest.mark.parametrize(("url", "status"), [
    ("/api/Datastreams(999999)/series", 404),
    ("/api/Datastreams(1)/series?interval=fortnightly", 400),
    ("/api/Datastreams(1)/series?start=yesterday", 400),
    ("/api/Datastreams(1)/series?start=2026-09-21T10:00:00", 400),
    ("/api/Datastreams(1)/series?interval=1 minute&start=2000-01-01T00:00:00Z", 400),
    ("/api/latest?thing=abc", 400),
])
async def test_bad_series_requests_get_json_errors(
    client: httpx.AsyncClient, url: str, status: int
) -> None:
    body = await get(client, url, status)
    assert body["code"] in ("bad_request", "not_found") and body["message"]


@pytest.mark.parametrize(("url", "count"), [
    ("/v1.1/Things?$filter=name eq 'Hornsgatan 108'", 1),
    ("/v1.1/Things?$filter=properties/site_role eq 'street'", 3),
    ("/v1.1/Things?$filter=startswith(name, 'Essingeleden')", 2),
    # and binds tighter than or: H or (x and nope) holds for one Thing; (H or x) and nope
    # would hold for none.
    ("/v1.1/Things?$filter=name eq 'Hornsgatan 108' or name eq 'x' and description eq 'nope'",
     1),
    ("/v1.1/Locations?$filter=st_relate(location, geometry'POINT(18 59)', 'zzz')", 0),
    ("/v1.1/Locations?$filter=st_within(location, geography'POLYGON((18.0 59.31, "
     "18.06 59.31, 18.06 59.32, 18.0 59.32, 18.0 59.31))')", 4),
    ("/v1.1/Observations?$filter=result gt 100", 19),
    ("/v1.1/Observations?$filter=result div 2 ge 59.5", 1),
    ("/v1.1/Observations?$filter=Datastream/Thing/name eq 'Hornsgatan 108' and "
     "phenomenonTime ge 2026-09-21T11:00:00Z", 60),
    ("/v1.1/Observations?$filter=phenomenonTime ge 2026-09-21T13:00:00%2B02:00", 60),
    ("/v1.1/Observations?$filter=hour(phenomenonTime) eq 10 and minute(phenomenonTime) lt 5",
     5),
])
async def test_filters_select_exactly_the_matching_entities(
    client: httpx.AsyncClient, fleet_db: Any, url: str, count: int
) -> None:
    await seed_hour(fleet_db)
    body = await get(client, f"{url}&$count=true")
    assert body["@iot.count"] == count


async def test_next_links_keep_the_filter_and_order(
    client: httpx.AsyncClient, fleet_db: Any
) -> None:
    await seed_hour(fleet_db)
    url = "/v1.1/Observations?$filter=result lt 12&$orderby=result desc"
    seen: list[float] = []
    while url:
        page = await get(client, url)
        seen += [o["result"] for o in page["value"]]
        url = page.get("@iot.nextLink", "")
    assert seen == [float(v) for v in range(11, -1, -1)]


async def test_expand_nests_related_entities_with_their_own_options(
    client: httpx.AsyncClient, fleet_db: Any
) -> None:
    ds_id = await seed_hour(fleet_db)
    url = ("/v1.1/Things?$filter=name eq 'Hornsgatan 108'&$select=name"
           "&$expand=Datastreams($select=name;$filter=id eq " + str(ds_id) +
           ";$expand=Observations($top=2;$orderby=phenomenonTime desc;$select=result),"
           "Sensor($select=name)),Locations")
    body = await get(client, url)
    thing = body["value"][0]
    assert thing["name"] == "Hornsgatan 108"
    assert thing["Locations"][0]["location"]["type"] == "Point"
    (stream,) = thing["Datastreams"]
    assert stream["name"] == "Hornsgatan 108 – NO2"
    assert stream["Observations"] == [{"result": 119.0}, {"result": 118.0}]
    assert stream["Sensor"] == {"name": "Air-quality monitoring station"}


async def test_expand_applies_top_to_each_parent_and_a_path_expands_each_level(
    client: httpx.AsyncClient,
) -> None:
    body = await get(client, "/v1.1/Things?$top=3&$expand=Datastreams($top=2)")
    assert [len(t["Datastreams"]) for t in body["value"]] == [2, 2, 2]
    body = await get(client, "/v1.1/Things?$top=2&$expand=Datastreams/Sensor")
    assert [len(t["Datastreams"]) for t in body["value"]] == [5, 5]  # the page size
    assert all(d["Sensor"]["name"] for t in body["value"] for d in t["Datastreams"])


async def test_a_path_of_three_steps_expands_every_step_and_shares_its_first(
    client: httpx.AsyncClient,
) -> None:
    body = await get(client, "/v1.1/Observations?$top=2"
                             "&$expand=Datastream/Thing/Locations($select=name),"
                             "Datastream($select=name),Datastream/Sensor($select=name)")
    for observation in body["value"]:
        stream = observation["Datastream"]
        assert set(stream) == {"name", "Thing", "Sensor"}
        assert set(stream["Sensor"]) == {"name"}
        assert [set(place) for place in stream["Thing"]["Locations"]] == [{"name"}]
        assert "name" in stream["Thing"] and "description" in stream["Thing"]


async def test_a_to_one_expansion_is_an_object(client: httpx.AsyncClient) -> None:
    body = await get(client, "/v1.1/Datastreams?$top=1&$expand=Thing($select=name)")
    assert set(body["value"][0]["Thing"]) == {"name"}


@pytest.mark.parametrize("expand", [
    "Wheels", "Datastreams(", "Datastreams($top=x)", "Datastreams($filter=colour eq 1)",
])
async def test_a_bad_expand_is_a_400(client: httpx.AsyncClient, expand: str) -> None:
    body = await get(client, f"/v1.1/Things?$expand={expand}", 400)
    assert body["code"] == "bad_request"


async def test_a_query_past_the_statement_timeout_is_a_503_not_a_500(
    fleet_db: Any, db_url: str
) -> None:
    ds_id = await fleet_db.fetchval("SELECT min(id) FROM datastreams")
    await fleet_db.execute(  # enough rows that no scan of them ends within a millisecond
        "INSERT INTO observations (phenomenon_time, datastream_id, result_number) "
        "SELECT '2026-01-01'::timestamptz + make_interval(secs => s), $1, s "
        "FROM generate_series(1, 200000) s", ds_id)
    app = create_app(ApiSettings(database_url=db_url, statement_timeout_s=0.001))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://city") as slow:
            body = await get(slow, "/v1.1/Observations?$count=true&$filter=result mod 7 eq 3",
                             503)
    assert body["code"] == "too_slow"


async def test_observations_as_a_data_array_grouped_by_datastream(
    client: httpx.AsyncClient, fleet_db: Any
) -> None:
    ds_id = await seed_hour(fleet_db)
    body = await get(client, "/v1.1/Observations?$resultFormat=dataArray&$top=3&$count=true"
                             "&$select=phenomenonTime,result&$orderby=phenomenonTime")
    (group,) = body["value"]
    assert group["Datastream@iot.navigationLink"].endswith(f"/Datastreams({ds_id})")
    assert group["components"] == ["phenomenonTime", "result"]
    assert group["dataArray"] == [
        ["2026-09-21T10:00:00Z", 0.0], ["2026-09-21T10:01:00Z", 1.0],
        ["2026-09-21T10:02:00Z", 2.0]]
    assert body["@iot.count"] == 120 and "@iot.nextLink" in body


async def test_things_as_csv(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1.1/Things?$resultFormat=CSV&$select=name,properties"
                                "&$orderby=name&$top=2")
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert lines[0] == "name,properties"
    assert lines[1] == 'E4/E20 Lilla Essingen,"{""site_role"": ""street""}"'


async def test_locations_as_geojson(client: httpx.AsyncClient) -> None:
    body = await get(client, "/v1.1/Locations?$resultFormat=GeoJSON&$top=100")
    assert body["type"] == "FeatureCollection"
    assert len(body["features"]) == 15
    feature = body["features"][0]
    assert feature["geometry"]["type"] == "Point"
    assert set(feature["properties"]) >= {"name", "description"}


async def test_a_property_request_ignores_select_and_top_zero_has_no_next_link(
    client: httpx.AsyncClient,
) -> None:
    body = await get(client, "/v1.1/Things?$top=1&$orderby=name")
    thing = body["value"][0]["@iot.id"]
    assert await get(client, f"/v1.1/Things({thing})/name?$select=description") == {
        "name": "E4/E20 Lilla Essingen"}
    empty = await get(client, "/v1.1/Things?$top=0&$count=true")
    assert empty["value"] == [] and "@iot.nextLink" not in empty


async def test_csv_pages_carry_count_and_next_link_in_headers_and_geojson_keeps_geometry(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1.1/Things?$resultFormat=CSV&$count=true")
    assert response.headers["x-total-count"] == "15"
    assert 'rel="next"' in response.headers["link"]
    body = await get(client, "/v1.1/Locations?$resultFormat=GeoJSON&$select=name&$top=1")
    feature = body["features"][0]
    assert feature["geometry"]["type"] == "Point"
    assert set(feature["properties"]) == {"name"}


async def test_a_constant_sort_key_changes_nothing(client: httpx.AsyncClient) -> None:
    body = await get(client, "/v1.1/Things?$orderby=false,name desc&$top=1&$select=name")
    assert body["value"] == [{"name": "Valhallavägen westbound"}]


@pytest.mark.parametrize(("url", "names"), [
    ("/v1.1/Things?$filter=substring(name, 11, 3) eq '108'", ["Hornsgatan 108"]),
    ("/v1.1/Things?$filter=substring(name, 4) eq 'vägen 59'", ["Sveavägen 59"]),
])
async def test_substring_counts_from_zero(
    client: httpx.AsyncClient, url: str, names: list[str]
) -> None:
    body = await get(client, f"{url}&$select=name")
    assert [t["name"] for t in body["value"]] == names


async def test_a_substring_position_past_the_database_range_is_a_400(
    client: httpx.AsyncClient,
) -> None:
    body = await get(client, "/v1.1/Things?$filter=substring(name, 9999999999) eq 'x'", 400)
    assert body["code"] == "bad_request"


async def test_the_openapi_description_is_valid_and_describes_every_entity_path(
    client: httpx.AsyncClient,
) -> None:
    doc = await get(client, "/openapi.json")
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    for name in ("Things", "Observations", "FeaturesOfInterest"):
        assert set(doc["paths"][f"/v1.1/{name}"]) == {"get", "post"}
        assert {"get", "patch", "put", "delete"} <= set(doc["paths"][f"/v1.1/{name}({{id}})"])
    assert "/v1.1/{path}" not in doc["paths"]
    assert "/v1.1/CreateObservations" in doc["paths"] and "/v1.1/$batch" in doc["paths"]
