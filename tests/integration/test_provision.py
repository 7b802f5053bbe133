from typing import Any

from devices.fleet import fleet, stockholm
from devices.provision import list_devices, provision


async def _count(db: Any, table: str) -> int:
    return int(await db.fetchval(f"SELECT count(*) FROM {table}"))


async def test_stockholm_fleet_lands_in_the_registry(db: Any) -> None:
    result = await provision(db, stockholm())
    expected_streams = 5 * 9 + 2 * 3 * 5 + 8 * 2 * 5
    assert result.counts["devices"] == (15, 15)
    assert result.counts["datastreams"] == (expected_streams, expected_streams)
    assert await _count(db, "things") == 15
    assert await _count(db, "datastreams") == expected_streams
    # The fleet's three, 'city', which owns the Things created through the API, and
    # 'public', under which requests without a key are metered.
    assert await _count(db, "agencies") == 5
    assert await _count(db, "gateways") == 4
    assert await _count(db, "thing_locations") == 15
    assert await _count(db, "historical_locations") == 15
    assert await _count(db, "features_of_interest") == 15


async def test_lane_occupancy_is_restricted_and_an_operators_change_survives_reprovisioning(
    db: Any,
) -> None:
    await provision(db, stockholm())
    access = await db.fetch(
        "SELECT access, bool_and(record_name LIKE '%/occupancy') AS occupancy, count(*) AS n "
        "FROM datastreams GROUP BY 1 ORDER BY 1")
    assert [(r["access"], r["occupancy"], r["n"]) for r in access] == [
        ("open", False, 5 * 9 + 2 * 3 * 4 + 8 * 2 * 4), ("restricted", True, 2 * 3 + 8 * 2)]
    opened = await db.fetchval(
        "WITH one AS (SELECT id FROM datastreams WHERE access = 'restricted' LIMIT 1) "
        "UPDATE datastreams d SET access = 'open' FROM one WHERE d.id = one.id RETURNING d.id")
    await provision(db, stockholm())
    assert await db.fetchval("SELECT access FROM datastreams WHERE id = $1", opened) == "open"


async def test_devices_and_datastreams_belong_to_the_agency_that_runs_them(db: Any) -> None:
    await provision(db, stockholm())
    owners = await db.fetch(
        "SELECT t.model, a.code, count(*) AS n FROM datastreams ds "
        "JOIN things t ON t.id = ds.thing_id JOIN agencies a ON a.id = ds.agency_id "
        "GROUP BY 1, 2 ORDER BY 1"
    )
    assert [(r["model"], r["code"]) for r in owners] == [
        ("air-quality-station", "miljoforvaltningen"),
        ("traffic-counter", "trafikkontoret"),
    ]
    gateway_owners = await db.fetch(
        "SELECT DISTINCT a.code FROM gateways g JOIN agencies a ON a.id = g.agency_id"
    )
    assert [r["code"] for r in gateway_owners] == ["stokab"]


async def test_provisioning_again_changes_nothing(db: Any) -> None:
    await provision(db, stockholm())
    before = {t: await _count(db, t) for t in (
        "things", "datastreams", "locations", "historical_locations", "sensors",
        "observed_properties", "features_of_interest")}
    again = await provision(db, stockholm())
    after = {t: await _count(db, t) for t in before}
    assert after == before
    assert all(new == 0 for _, new in again.counts.values())


async def test_a_device_is_placed_where_it_stands(db: Any) -> None:
    await provision(db, stockholm())
    devices = {d["device_id"]: d for d in await list_devices(db)}
    hornsgatan = devices["aq-hornsgatan-108"]
    assert abs(hornsgatan["latitude"] - 59.31721) < 1e-6
    assert abs(hornsgatan["longitude"] - 18.04880) < 1e-6
    assert devices["tc-essingeleden-n"]["gateway_id"] == "gw-essingen"
    assert devices["aq-hornsgatan-108"]["gateway_id"] is None


async def test_scale_adds_synthetic_devices_behind_synthetic_gateways(db: Any) -> None:
    await provision(db, fleet("stockholm", scale=1200))
    assert await _count(db, "things") == 15 + 1200
    assert await _count(db, "gateways") == 4 + 12
    behind = await db.fetchval(
        "SELECT count(*) FROM things t JOIN gateways g ON g.id = t.gateway_id "
        "WHERE g.gateway_id = 'syn-gw-0012'"
    )
    assert behind == 100


async def test_datastream_units_match_what_devices_publish(db: Any) -> None:
    await provision(db, stockholm())
    rows = await db.fetch(
        "SELECT ds.record_name, ds.senml_unit, ds.unit_symbol FROM datastreams ds "
        "JOIN things t ON t.id = ds.thing_id WHERE t.device_id = 'aq-sveavagen-59' "
        "AND ds.record_name IN ('no2', 'temp')"
    )
    assert sorted(tuple(r) for r in rows) == [("no2", "ug/m3", "µg/m³"), ("temp", "Cel", "°C")]
