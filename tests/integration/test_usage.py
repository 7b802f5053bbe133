"""Usage is metered per agency and day where the work is done: readings stored and
rejected by ingest, requests and bytes served by the API, notifications published, rows
stored; and a month of it becomes a cost allocation."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from click.testing import CliRunner

from api.app import create_app
from api.settings import ApiSettings
from core import usage
from core.notify import Change
from core.usage import UsageMeter, usage_between
from deploy.usage_cli import usage as usage_command
from ingest.mapping import Mapped
from ingest.registry import load
from ingest.settings import IngestSettings
from ingest.writer import BatchWriter
from tests.access import bearer, make_key
from tests.integration.conftest import Publisher, eventually, start_consumer, stop_consumer

ENV, TRAFFIC, FIBRE, CITY = "miljoforvaltningen", "trafikkontoret", "stokab", "city"
HORNSGATAN = "aq-hornsgatan-108"
PRICES = Path(__file__).parents[2] / "docs" / "examples" / "prices.toml"


async def usage_today(db: Any) -> dict[tuple[str, str], int]:
    """(agency, metric) → amount of today's usage."""
    rows = await db.fetch("SELECT a.code, u.metric, u.amount FROM usage_daily u "
                          "JOIN agencies a ON a.id = u.agency_id WHERE u.day = $1",
                          usage.today())
    return {(r["code"], r["metric"]): r["amount"] for r in rows}


@asynccontextmanager
async def api_client(db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The API on the test's database, without a key unless a request sends one."""
    app = create_app(ApiSettings(database_url=db_url, mqtt_enabled=False, usage_flush_s=60))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://city") as client:
            yield client


def pack(device: str, t: float, **values: float) -> str:
    records: list[dict[str, Any]] = [{"n": n, "u": "ug/m3", "v": v, "t": t}
                                     for n, v in values.items()]
    records[0]["bn"] = f"urn:dev:{device}:"
    return json.dumps(records)


async def test_ingest_meters_readings_stored_and_rejected_per_agency_and_notifications(
    fleet_db: Any, ingest_settings: IngestSettings, publisher: Publisher
) -> None:
    t0 = datetime.now().timestamp() - 3600
    settings = ingest_settings.model_copy(update={"notify_topics": "datastream"})
    consumer, task = await start_consumer(settings)
    try:
        await publisher.device(HORNSGATAN, pack(HORNSGATAN, t0, no2=21.0, pm10=14.0))
        await publisher.device(HORNSGATAN, pack(HORNSGATAN, t0, no2=21.0, pm10=14.0))  # again
        await publisher.device(HORNSGATAN, pack(HORNSGATAN, t0, bogus=1.0))  # no datastream
        await publisher.gateway("gw-essingen", json.dumps([
            {"bn": "urn:dev:tc-essingeleden-n:", "bt": t0, "n": "lane1/light/count",
             "u": "count", "v": 41},
            {"n": "lane1/light/speed", "u": "km/h", "v": 71.5},
            {"bn": "urn:dev:tc-essingeleden-s:", "n": "lane3/heavy/count", "u": "count",
             "v": 3},
            {"bn": "urn:dev:no-such-counter:", "n": "lane1/light/count", "u": "count",
             "v": 1},  # an unknown device behind the gateway: the gateway's agency
        ]))
        await publisher.raw("devices/nobody/senml", b"not json")  # an unknown sender

        async def written() -> bool:
            metered = await usage_today(fleet_db)
            return sum(n for (_, m), n in metered.items() if m == usage.READINGS_REJECTED) == 3
        await eventually(written)
    finally:
        await stop_consumer(consumer, task)  # the last notifications are metered at the stop

    assert await usage_today(fleet_db) == {
        (ENV, usage.READINGS_INGESTED): 2,  # the redelivered pair is not counted again
        (TRAFFIC, usage.READINGS_INGESTED): 3,
        (ENV, usage.READINGS_REJECTED): 1,
        (FIBRE, usage.READINGS_REJECTED): 1,
        (CITY, usage.READINGS_REJECTED): 1,
        (ENV, usage.MQTT_MESSAGES): 2,  # one Datastream topic per reading stored
        (TRAFFIC, usage.MQTT_MESSAGES): 3,
    }


@pytest.mark.parametrize("method", ["copy", "unnest"])
async def test_a_batch_with_readings_stored_before_meters_only_the_new_ones(
    fleet_db: Any, method: str
) -> None:
    env, traffic = await stream_of(fleet_db, ENV), await stream_of(fleet_db, TRAFFIC)
    t0 = datetime.now().timestamp() - 600
    registry = await load(fleet_db)
    writer = BatchWriter(fleet_db, method, agency_of=lambda: registry.agency_of)
    first = Mapped()
    first.add(t0, env, number=1.0)
    await writer.write(first)
    again = Mapped()
    again.add(t0, env, number=1.0)  # stored by the first batch
    again.add(t0 + 60, env, number=2.0)
    again.add(t0 + 60, env, number=2.0)  # twice in this batch
    again.add(t0, traffic, number=5.0)
    await writer.write(again)
    assert await usage_today(fleet_db) == {
        (ENV, usage.READINGS_INGESTED): 2, (TRAFFIC, usage.READINGS_INGESTED): 1}


async def test_the_api_meters_requests_and_the_bytes_it_served_per_agency_of_the_key(
    fleet_db: Any, db_url: str
) -> None:
    env_key = bearer(await make_key(db_url, "reader", ENV))
    traffic_key = bearer(await make_key(db_url, "writer", TRAFFIC))
    unknown_key = bearer("sp_kaaaaaaaaaaa_" + "x" * 43)
    served: dict[str, int] = {}
    async with api_client(db_url) as client:
        for agency, headers, path in [
            (ENV, env_key, "/v1.1/Things?$top=3"),
            (ENV, env_key, "/v1.1/Nothing"),
            (TRAFFIC, traffic_key, "/v1.1/Datastreams?$top=2"),
            ("public", {}, "/v1.1/Sensors"),
            ("public", unknown_key, "/v1.1/Sensors"),  # refused: 401, still served
        ]:
            response = await client.get(path, headers=headers)
            served[agency] = served.get(agency, 0) + len(response.content)
    # Flushed at shutdown, though the flush interval had not come round.
    assert await usage_today(fleet_db) == {
        (ENV, usage.API_REQUESTS): 2, (ENV, usage.API_BYTES): served[ENV],
        (TRAFFIC, usage.API_REQUESTS): 1, (TRAFFIC, usage.API_BYTES): served[TRAFFIC],
        ("public", usage.API_REQUESTS): 2, ("public", usage.API_BYTES): served["public"],
    }


async def test_a_batch_of_gets_is_one_request_of_the_bytes_of_its_response(
    fleet_db: Any, db_url: str
) -> None:
    env_key = bearer(await make_key(db_url, "reader", ENV))
    async with api_client(db_url) as client:
        response = await client.post("/v1.1/$batch", headers=env_key, json={"requests": [
            {"id": "1", "method": "get", "url": "Things?$top=2"},
            {"id": "2", "method": "get", "url": "Sensors?$top=1"}]})
    assert [r["status"] for r in response.json()["responses"]] == [200, 200]
    assert await usage_today(fleet_db) == {
        (ENV, usage.API_REQUESTS): 1, (ENV, usage.API_BYTES): len(response.content)}


async def test_api_notifications_are_metered_to_the_owner_of_the_datastream_or_thing(
    fleet_db: Any, db_url: str, mqtt_port: int, topic_prefix: str
) -> None:
    env_stream = await fleet_db.fetchval(
        "SELECT ds.id FROM datastreams ds JOIN agencies a ON a.id = ds.agency_id "
        "WHERE a.code = $1 ORDER BY ds.id LIMIT 1", ENV)
    traffic_thing = await fleet_db.fetchval(
        "SELECT t.id FROM things t JOIN agencies a ON a.id = t.agency_id "
        "WHERE a.code = $1 ORDER BY t.id LIMIT 1", TRAFFIC)
    settings = ApiSettings(database_url=db_url, mqtt_port=mqtt_port,
                           topic_prefix=f"{topic_prefix}/",
                           mqtt_client_id=f"api-{uuid.uuid4().hex[:8]}")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        notifier = app.state.notifier
        await getattr(notifier, "inner", notifier).publisher.connected.wait()
        await notifier.notify([
            Change("Observations", 1, {"result": 1.0}, parents=(("Datastreams", env_stream),)),
            Change("Things", traffic_thing, {"name": "renamed"}, changed=("name",)),
            Change("Sensors", 1, {"name": "a sensor"}),
        ])
    assert await usage_today(fleet_db) == {
        (ENV, usage.MQTT_MESSAGES): 2,  # v1.1/Observations and the Datastream's collection
        (TRAFFIC, usage.MQTT_MESSAGES): 3,  # the Thing's topic, its name's, v1.1/Things
        (CITY, usage.MQTT_MESSAGES): 1,  # a Sensor belongs to no agency: the platform's
    }


async def stream_of(db: Any, agency: str) -> int:
    return int(await db.fetchval(
        "SELECT ds.id FROM datastreams ds JOIN agencies a ON a.id = ds.agency_id "
        "WHERE a.code = $1 ORDER BY ds.id LIMIT 1", agency))


async def store(db: Any, datastream: int, day: date, count: int) -> None:
    start = datetime(day.year, day.month, day.day, 12)
    await db.execute(
        "INSERT INTO observations (phenomenon_time, datastream_id, result_number) "
        "SELECT ($1::timestamp + i * interval '1 minute') AT TIME ZONE 'UTC', $2, i "
        "FROM generate_series(1, $3) i", start, datastream, count)


async def test_rows_stored_are_counted_per_agency_to_the_end_of_each_day(fleet_db: Any) -> None:
    env, traffic = await stream_of(fleet_db, ENV), await stream_of(fleet_db, TRAFFIC)
    d1 = date(2026, 10, 3)
    await store(fleet_db, env, d1 - timedelta(days=5), 4)  # before the range
    await store(fleet_db, env, d1, 10)
    await store(fleet_db, traffic, d1 + timedelta(days=1), 7)
    await store(fleet_db, traffic, d1 + timedelta(days=9), 50)  # after the range

    days, bytes_per_row = await usage_between(fleet_db, d1, d1 + timedelta(days=2))

    rows = {(d.day.day, d.agency): d.amounts[usage.STORAGE_ROWS] for d in days}
    assert rows == {(3, ENV): 14, (4, ENV): 14, (5, ENV): 14,
                    (3, TRAFFIC): 0, (4, TRAFFIC): 7, (5, TRAFFIC): 7}
    assert bytes_per_row > 0
    stored = {(d.day.day, d.agency): d.amounts[usage.STORAGE_BYTES] for d in days}
    assert stored[(4, TRAFFIC)] == round(7 * bytes_per_row)


async def test_admin_usage_answers_admins_by_day_and_agency_with_every_metric(
    fleet_db: Any, db_url: str
) -> None:
    await add_usage(fleet_db, {(date(2026, 10, 2), ENV, usage.READINGS_INGESTED): 1440})
    admin = bearer(await make_key(db_url, "admin", CITY))
    async with api_client(db_url) as client:
        response = await client.get("/admin/usage?from=2026-10-01&to=2026-10-03",
                                    headers=admin)
    assert response.status_code == 200
    body = response.json()
    assert (body["from"], body["to"]) == ("2026-10-01", "2026-10-03")
    assert {"day": "2026-10-02", "agency": ENV, **dict.fromkeys(usage.REPORTED, 0),
            usage.READINGS_INGESTED: 1440} in body["value"]


async def test_admin_usage_refuses_other_keys_and_bad_ranges(
    fleet_db: Any, db_url: str, client: httpx.AsyncClient
) -> None:
    everyone: dict[str, dict[str, str]] = {"anonymous": {}}
    for role in ("reader", "writer"):
        everyone[role] = bearer(await make_key(db_url, role, ENV))
    async with api_client(db_url) as anyone:
        for role, headers in everyone.items():
            refused = await anyone.get("/admin/usage?from=2026-10-01&to=2026-10-03",
                                       headers=headers)
            assert refused.status_code == 403, role
            assert refused.json()["code"] == "forbidden"
    for query, says in [
        ("from=2026-10-01", "'to' is required"),
        ("from=2026-10-1&to=2026-10-03", "'from' is not a day"),
        ("from=2026-02-30&to=2026-03-03", "'from' is not a day"),
        ("from=2026-10-05&to=2026-10-03", "before"),
        ("from=2025-01-01&to=2026-01-02", "367 days"),
    ]:
        bad = await client.get(f"/admin/usage?{query}")  # the fixture's key is an admin's
        assert bad.status_code == 400, query
        assert says in bad.json()["message"]


async def add_usage(db: Any, amounts: dict[tuple[date, str, str], int]) -> None:
    meter = UsageMeter()
    for (day, agency, metric), amount in amounts.items():
        meter.add(agency, metric, amount, day)
    await meter.flush(db)


async def test_the_usage_report_allocates_a_seeded_month_by_the_price_list(
    fleet_db: Any, db_url: str, tmp_path: Path
) -> None:
    october = date(2026, 10, 1)
    await add_usage(fleet_db, {
        (october, ENV, usage.READINGS_INGESTED): 3000,
        (october + timedelta(days=9), TRAFFIC, usage.READINGS_INGESTED): 1000,
        (october, ENV, usage.API_REQUESTS): 100,
        (october, "public", usage.API_REQUESTS): 300,
        (october, TRAFFIC, usage.MQTT_MESSAGES): 50,
    })
    await store(fleet_db, await stream_of(fleet_db, ENV), october, 100)
    out = tmp_path / "october.csv"

    result = await asyncio.to_thread(CliRunner().invoke, usage_command, [
        "report", "--month", "2026-10", "--prices", str(PRICES), "--csv", str(out),
        "--markdown", str(tmp_path / "october.md"), "--database-url", db_url])

    assert result.exit_code == 0, result.output
    lines = {r["agency"]: r for r in csv.DictReader(io.StringIO(out.read_text()))}
    assert list(lines) == [ENV, TRAFFIC, "public"]  # agencies with usage, the public last
    env, traffic, public = lines[ENV], lines[TRAFFIC], lines["public"]
    # platform 45000 in halves; ingest 12000 by 3:1; storage 18000 all env's;
    # api 8000 by 100:300 with the public; mqtt 2000 all traffic's.
    assert (env["cost_platform"], env["cost_ingest"], env["cost_storage"],
            env["cost_api"], env["cost_mqtt"]) == ("22500.00", "9000.00", "18000.00",
                                                     "2000.00", "0.00")
    assert (traffic["cost_platform"], traffic["cost_ingest"], traffic["cost_mqtt"]) == (
        "22500.00", "3000.00", "2000.00")
    assert public["cost_api"] == "6000.00"
    # The public's 6000 is carried 51500:27500 by what each pays itself.
    assert env["public_carried"] == str((Decimal(6000) * 51500 / 79000).quantize(Decimal("0.01")))
    assert sum(Decimal(r["total"]) for r in lines.values()) == Decimal(85000)
    assert int(env["storage_rows"]) == 100  # all month long
    markdown = (tmp_path / "october.md").read_text()
    assert "| **total** |" in markdown and "**85,000.00**" in markdown


def test_the_usage_report_names_a_bad_month_and_a_bad_price_list(tmp_path: Path) -> None:
    bad_month = CliRunner().invoke(usage_command, [
        "report", "--month", "2026-13", "--prices", str(PRICES)])
    assert bad_month.exit_code == 2
    assert "not a month as YYYY-MM" in bad_month.output

    missing = CliRunner().invoke(usage_command, [
        "report", "--month", "2026-10", "--prices", str(tmp_path / "none.toml")])
    assert missing.exit_code == 2
    assert "no price list at" in missing.output

    prices = tmp_path / "prices.toml"
    prices.write_text('currency = "SEK"\n[pools.api]\namount = 5\ndriver = "calls"\n')
    invalid = CliRunner().invoke(usage_command, [
        "report", "--month", "2026-10", "--prices", str(prices)])
    assert invalid.exit_code != 0
    assert "pools.api.driver" in str(invalid.exception) + invalid.output


async def test_the_api_role_may_write_usage_and_read_storage(db_url: str, fleet_db: Any) -> None:
    await fleet_db.execute(
        "INSERT INTO observations (phenomenon_time, datastream_id, result_number) "
        "VALUES ('2026-10-01T12:00:00Z', $1, 1.0)", await stream_of(fleet_db, ENV))
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("SET ROLE stadspuls_api")
        await conn.execute("SELECT set_config('stadspuls.role', 'admin', false)")
        meter = UsageMeter()
        meter.add(ENV, usage.API_REQUESTS, 2)
        await meter.flush(conn)
        days, _ = await usage_between(conn, date(2026, 10, 1), date(2026, 10, 2))
    finally:
        await conn.close()
    assert (await usage_today(fleet_db))[(ENV, usage.API_REQUESTS)] == 2
    assert [(d.day, d.amounts[usage.STORAGE_ROWS]) for d in days if d.agency == ENV] == [
        (date(2026, 10, 1), 1), (date(2026, 10, 2), 1)]


async def test_a_flush_that_fails_keeps_the_amounts_for_the_next(fleet_db: Any) -> None:
    meter = UsageMeter()
    meter.add(ENV, usage.API_REQUESTS, 5)
    await fleet_db.execute("ALTER TABLE usage_daily RENAME TO usage_daily_away")
    try:
        with contextlib.suppress(asyncpg.UndefinedTableError):
            await meter.flush(fleet_db)
    finally:
        await fleet_db.execute("ALTER TABLE usage_daily_away RENAME TO usage_daily")
    await meter.flush(fleet_db)
    assert await usage_today(fleet_db) == {(ENV, usage.API_REQUESTS): 5}

