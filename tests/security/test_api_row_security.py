"""Claims about row-level security in the database: the API's connections run as the role
it binds, which holds grants on the tables the API uses and on no other; and the policy on
Observations costs one lookup per query, leaving the index and chunk exclusion to serve the
common reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from api import principal
from api.principal import Principal
from core.queries import query
from tests.security.api_fixtures import World, access

__all__ = ["access"]  # fixtures


async def plan(world: World, who: Principal, text: str, *args: Any) -> str:
    token = principal.current.set(who)
    try:
        async with world.app.state.store.pool.acquire() as conn:
            rows = await conn.fetch(f"EXPLAIN (ANALYZE, COSTS OFF) {text}", *args)
    finally:
        principal.current.reset(token)
    return "\n".join(r[0] for r in rows)


async def test_the_api_runs_as_the_role_row_security_binds(access: World) -> None:
    async with access.app.state.store.pool.acquire() as conn:
        user, role, agency = await conn.fetchrow(
            "SELECT current_user, current_setting('stadspuls.role'), "
            "current_setting('stadspuls.agency_id')")
    assert (user, role, agency) == ("stadspuls_api", "anonymous", "")


async def test_reads_of_a_datastream_keep_the_index_and_chunk_exclusion(access: World) -> None:
    stream = access.ids["env_open"]
    await access.db.execute(  # sixty days
        "INSERT INTO observations (phenomenon_time, datastream_id, result_number) "
        "SELECT '2026-07-01T00:00:00Z'::timestamptz + make_interval(mins => 10 * m), $1, m "
        "FROM generate_series(1, 6 * 24 * 60) m", stream)
    await access.db.execute("ANALYZE observations")
    who = Principal(key_id=None, agency_id=access.ids["env"], agency_code="env", role="reader")

    newest = await plan(access, who, "SELECT * FROM observations e WHERE e.datastream_id = $1 "
                                     "ORDER BY e.phenomenon_time DESC LIMIT 1000", stream)
    assert "Index Scan Backward" in newest
    assert newest.count("InitPlan") == 1 and "SubPlan" not in newest

    daily = await plan(access, who, query("api", "downsampled"), stream, timedelta(days=1),
                       datetime(2026, 7, 10, tzinfo=UTC), datetime(2026, 7, 20, tzinfo=UTC))
    chunks = await access.db.fetchval(
        "SELECT count(*) FROM timescaledb_information.chunks "
        "WHERE hypertable_name = 'observations'")
    scanned = {line.split(" on ")[1].split()[0] for line in daily.splitlines()
               if "Scan" in line and " on _hyper_" in line}
    assert chunks >= 9 and 1 <= len(scanned) <= 3  # ten days of sixty, in weekly chunks
    assert daily.count("InitPlan") == 1 and "SubPlan" not in daily


async def test_the_api_role_holds_only_the_grants_it_needs(access: World) -> None:
    rows = await access.db.fetch(
        "SELECT table_name, string_agg(privilege_type, ' ' ORDER BY privilege_type) AS p "
        "FROM information_schema.role_table_grants "
        "WHERE grantee = 'stadspuls_api' AND table_schema = 'public' GROUP BY table_name")
    entities = ["datastreams", "features_of_interest", "historical_location_locations",
                "historical_locations", "locations", "observations", "observed_properties",
                "sensors", "thing_locations", "things"]
    assert {r["table_name"]: r["p"] for r in rows} == {
        **dict.fromkeys(entities, "DELETE INSERT SELECT UPDATE"),
        "agencies": "SELECT", "api_keys": "SELECT",
        "audit_log": "INSERT", "rejected_messages": "INSERT",
        "usage_daily": "INSERT SELECT UPDATE",
    }


async def test_chunks_made_later_keep_the_grants_of_the_hypertable(access: World) -> None:
    async with access.as_("env_writer") as writer:
        made = await writer.post(f"/v1.1/Datastreams({access.ids['env_open']})/Observations",
                                 json={"phenomenonTime": "2030-01-01T00:00:00Z", "result": 1})
    assert made.status_code == 201, made.text
    lacking = await access.db.fetch(
        "SELECT c, p FROM show_chunks('observations') c, "
        "unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) p "
        "WHERE NOT has_table_privilege('stadspuls_api', c, p)")
    chunks = await access.db.fetchval("SELECT count(*) FROM show_chunks('observations')")
    assert chunks >= 2 and lacking == []


async def test_a_table_added_after_the_migrations_is_not_the_apis(access: World) -> None:
    await access.db.execute("CREATE TABLE later_secrets (secret text)")
    async with access.app.state.store.pool.acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM later_secrets")
