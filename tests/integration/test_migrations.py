import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from core.database import connect, quote_ident
from core.errors import MigrationError
from core.migrations import applied_versions, available, migrate
from core.queries import query
from deploy.settings import database_url
from deploy.stack import LocalStack
from devices.fleet import stockholm
from devices.provision import provision

T0 = datetime(2026, 3, 10, 7, 30, tzinfo=UTC)
KEY_0002 = "btree (datastream_id, phenomenon_time)"
KEY_0010 = ("btree (datastream_id, phenomenon_time, phenomenon_time_end NULLS FIRST) "
            "NULLS NOT DISTINCT")


@pytest.fixture
async def db_at_0009(stack: LocalStack) -> AsyncIterator[Any]:
    """A new database migrated up to 0009 only, as one deployed before 0010."""
    name = f"upgrade_{uuid.uuid4().hex[:8]}"
    admin = await connect(stack.settings.admin_database_url)
    try:
        await admin.execute(f"CREATE DATABASE {quote_ident(name)}")
        conn = await connect(database_url(stack.settings.db_port, name))
        try:
            await migrate(conn, up_to=9)
            yield conn
        finally:
            await conn.close()
            await admin.execute(f"DROP DATABASE {quote_ident(name)} WITH (FORCE)")
    finally:
        await admin.close()


async def _datastream(db: Any) -> int:
    await provision(db, stockholm())
    return int(await db.fetchval(
        "SELECT ds.id FROM datastreams ds JOIN things t ON t.id = ds.thing_id "
        "WHERE t.device_id = 'aq-hornsgatan-108' AND ds.record_name = 'no2'"
    ))


async def _bare_datastream(db: Any) -> int:
    """One Datastream made by the SQL of the schema at hand, for a database migrated only
    part way (provisioning writes the schema of the latest migration)."""
    return int(await db.fetchval(
        "WITH a AS (INSERT INTO agencies (code, name) VALUES ('a', 'A') RETURNING id), "
        "t AS (INSERT INTO things (agency_id, name) SELECT id, 'T' FROM a RETURNING id), "
        "s AS (INSERT INTO sensors (name) VALUES ('S') RETURNING id), "
        "p AS (INSERT INTO observed_properties (name, definition) VALUES ('P', 'd') "
        "      RETURNING id) "
        "INSERT INTO datastreams (agency_id, thing_id, sensor_id, observed_property_id, name, "
        "                         observation_type) "
        "SELECT a.id, t.id, s.id, p.id, 'D', 'OM_Measurement' FROM a, t, s, p RETURNING id"))


async def test_running_migrations_again_applies_nothing(db: Any) -> None:
    assert await migrate(db) == []
    assert await applied_versions(db) == [m.version for m in available()]


async def test_a_migration_renamed_after_it_was_applied_is_refused(db: Any) -> None:
    await db.execute("UPDATE schema_migrations SET name = 'old_name' WHERE version = 1")
    with pytest.raises(MigrationError, match="old_name"):
        await migrate(db)


async def test_observations_is_a_hypertable_with_seven_day_chunks(db: Any) -> None:
    row = await db.fetchrow(
        "SELECT column_name, time_interval FROM timescaledb_information.dimensions "
        "WHERE hypertable_name = 'observations'"
    )
    assert row["column_name"] == "phenomenon_time"
    assert row["time_interval"] == timedelta(days=7)


async def test_observations_keep_only_the_indexes_reads_need(db: Any) -> None:
    indexes = await db.fetch(
        "SELECT indexdef FROM pg_indexes WHERE tablename = 'observations' ORDER BY indexname"
    )
    assert [r["indexdef"].split(" USING ")[1] for r in indexes] == [
        "btree (datastream_id, phenomenon_time, phenomenon_time_end NULLS FIRST) "
        "NULLS NOT DISTINCT",
        "btree (id)",
    ]


async def test_registry_tables_have_the_columns_the_code_uses(db: Any) -> None:
    rows = await db.fetch(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'public'"
    )
    columns: dict[str, set[str]] = {}
    for r in rows:
        columns.setdefault(r["table_name"], set()).add(r["column_name"])
    expected = {
        "agencies": {"id", "code", "name"},
        "gateways": {"id", "gateway_id", "agency_id"},
        "things": {"id", "agency_id", "device_id", "gateway_id", "properties"},
        "locations": {"id", "location", "encoding_type"},
        "thing_locations": {"thing_id", "location_id"},
        "historical_locations": {"id", "thing_id", "time"},
        "historical_location_locations": {"historical_location_id", "location_id"},
        "sensors": {"id", "name", "encoding_type", "metadata"},
        "observed_properties": {"id", "name", "definition"},
        "datastreams": {"id", "thing_id", "sensor_id", "observed_property_id", "unit_symbol",
                        "record_name", "senml_unit", "access", "observed_area"},
        "features_of_interest": {"id", "feature", "encoding_type"},
        "observations": {"phenomenon_time", "phenomenon_time_end", "result_time",
                         "datastream_id", "result_number", "result_integer", "result_string",
                         "result_boolean", "result_json", "result_quality", "parameters",
                         "feature_id"},
        "rejected_messages": {"received_at", "topic", "payload", "reason", "device_id"},
    }
    for table, wanted in expected.items():
        assert wanted <= columns.get(table, set()), table


async def test_locations_are_postgis_geometries_in_wgs84(db: Any) -> None:
    srid = await db.fetchval(
        "SELECT srid FROM geometry_columns WHERE f_table_name = 'locations'"
    )
    assert srid == 4326


@pytest.mark.parametrize(("column", "value"), [
    ("result_number", 23.4),
    ("result_number", 0.1 + 0.2),
    ("result_integer", 2**63 - 1),
    ("result_integer", -(2**63)),
    ("result_string", "sensor cleaned 08:00 — värden ok"),
    ("result_boolean", False),
    ("result_json", '{"a": [1, 2.5, null, "x"], "b": {"c": true}}'),
    ("result_json", "null"),
])
async def test_each_kind_of_result_comes_back_exactly(db: Any, column: str, value: Any) -> None:
    datastream = await _datastream(db)
    await db.execute(
        f"INSERT INTO observations (phenomenon_time, datastream_id, {column}) "
        "VALUES ($1, $2, $3)", T0, datastream, value,
    )
    assert await db.fetchval(f"SELECT {column} FROM observations") == value


async def test_an_observation_holds_exactly_one_result(db: Any) -> None:
    datastream = await _datastream(db)
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute(
            "INSERT INTO observations (phenomenon_time, datastream_id, result_number, "
            "result_string) VALUES ($1, $2, 1.0, 'one')", T0, datastream,
        )
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute(
            "INSERT INTO observations (phenomenon_time, datastream_id) VALUES ($1, $2)",
            T0, datastream,
        )


async def test_a_reading_stored_twice_is_kept_once(db: Any) -> None:
    datastream = await _datastream(db)
    insert = (
        "INSERT INTO observations (phenomenon_time, datastream_id, result_number) "
        "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
    )
    await db.execute(insert, T0, datastream, 23.4)
    await db.execute(insert, T0.astimezone(tz=None), datastream, 99.0)  # same instant
    assert await db.fetch("SELECT result_number FROM observations") == [(23.4,)]


async def test_an_instant_and_intervals_at_one_time_are_kept_and_each_only_once(
    db: Any
) -> None:
    datastream = await _datastream(db)
    insert = (
        "INSERT INTO observations (phenomenon_time, phenomenon_time_end, datastream_id, "
        "result_number) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
    )
    for end in (None, T0 + timedelta(hours=1), T0, None, T0 + timedelta(hours=1)):
        await db.execute(insert, T0, end, datastream, 1.0)
    ends = await db.fetch("SELECT phenomenon_time_end FROM observations "
                          "ORDER BY phenomenon_time_end NULLS FIRST")
    assert [r[0] for r in ends] == [None, T0, T0 + timedelta(hours=1)]
    # Every chunk holds the key, not only the one the first rows went to.
    await db.execute(insert, T0 + timedelta(days=30), None, datastream, 1.0)
    await db.execute(insert, T0 + timedelta(days=30), None, datastream, 2.0)
    assert await db.fetchval("SELECT count(*) FROM observations") == 4


async def test_migration_0010_rebuilds_the_key_of_every_chunk_and_redeliveries_still_meet_it(
    db_at_0009: Any
) -> None:
    db = db_at_0009
    assert await applied_versions(db) == list(range(1, 10))
    datastream = await _bare_datastream(db)
    insert = (
        "INSERT INTO observations (phenomenon_time, phenomenon_time_end, datastream_id, "
        "result_number) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
    )
    starts = [T0 + timedelta(weeks=3 * n) for n in range(4)]  # one chunk each
    for start in starts:
        for minute in range(3):
            await db.execute(insert, start + timedelta(minutes=minute), None, datastream, 1.0)
    assert await _chunk_keys(db) == [[KEY_0002]] * 4
    assert [m.version for m in await migrate(db, up_to=10)] == [10]
    assert await _chunk_keys(db) == [[KEY_0010]] * 4
    oldest = starts[0]
    assert await db.execute(insert, oldest, None, datastream, 99.0) == "INSERT 0 0"
    assert await db.execute(
        insert, oldest, oldest + timedelta(hours=1), datastream, 2.0) == "INSERT 0 1"
    kept = await db.fetch("SELECT phenomenon_time_end, result_number FROM observations "
                          "WHERE phenomenon_time = $1 ORDER BY 1 NULLS FIRST", oldest)
    assert [tuple(r) for r in kept] == [(None, 1.0), (oldest + timedelta(hours=1), 2.0)]
    assert await db.fetchval("SELECT count(*) FROM observations") == 13


async def _chunk_keys(db: Any) -> list[list[str]]:
    """The unique indexes of each chunk of observations, oldest chunk first, from USING."""
    rows = await db.fetch(
        "SELECT array_remove(array_agg(split_part(i.indexdef, ' USING ', 2) "
        "                              ORDER BY i.indexname), NULL) AS keys "
        "FROM timescaledb_information.chunks c "
        "LEFT JOIN pg_indexes i ON i.schemaname = '_timescaledb_internal' "
        "     AND i.tablename = c.chunk_name AND i.indexdef LIKE 'CREATE UNIQUE INDEX %' "
        "WHERE c.hypertable_name = 'observations' AND c.chunk_schema = '_timescaledb_internal' "
        "GROUP BY c.chunk_name, c.range_start ORDER BY c.range_start")
    return [list(r["keys"]) for r in rows]


async def test_rejects_keep_the_raw_payload_and_reason(db: Any) -> None:
    payload = b'\xff{"not": json'
    await db.execute(
        "INSERT INTO rejected_messages (topic, payload, reason) VALUES ($1, $2, $3)",
        "devices/x/senml", payload, "payload is not valid JSON",
    )
    row = await db.fetchrow("SELECT payload, reason, received_at FROM rejected_messages")
    assert row["payload"] == payload
    assert row["received_at"] is not None


async def test_migration_0012_ranges_are_ordered_and_apply_only_in_their_unit(db: Any) -> None:
    await provision(db, stockholm())
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute("UPDATE observed_properties SET plausible_min = 5, plausible_max = 1 "
                         "WHERE key = 'no2'")
    rows = await db.fetch(
        "SELECT name, low, high FROM (" + query("ingest", "registry_streams").rstrip(";")
        + ") r WHERE name LIKE 'urn:dev:aq-hornsgatan-108:%' ORDER BY name")
    assert {r["name"].rsplit(":", 1)[1]: (r["low"], r["high"]) for r in rows}["pressure"] == (
        850, 1090)
    # A Datastream in another unit than its property's range is held to none.
    await db.execute("UPDATE datastreams SET senml_unit = 'Pa' WHERE record_name = 'pressure'")
    low = await db.fetchval(
        "SELECT low FROM (" + query("ingest", "registry_streams").rstrip(";")
        + ") r WHERE name = 'urn:dev:aq-hornsgatan-108:pressure'")
    assert low is None
