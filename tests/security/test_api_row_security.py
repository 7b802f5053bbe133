"""Claims about row-level security in the database: the API's connections run as the role
it binds, and the policy on Observations costs one lookup per query, leaving the index and
chunk exclusion to serve the common reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

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
