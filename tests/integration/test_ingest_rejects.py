"""Rejects stay within bounds: a message leaves one row however many of
its records are refused, its payload is kept once and cut, a sender past its budget is
counted instead of kept one by one, and a flood of refused records does not hold up anyone
else's readings. Every refused record is still counted."""

from __future__ import annotations

import json
import time
from typing import Any

from core import usage
from ingest.consumer import Consumer
from ingest.mapping import Rules
from ingest.registry import RegistryWatch
from ingest.rejects import PAYLOAD_BYTES, REASON_BYTES, RECORD_BYTES, ROW_BYTES, RejectBudget
from tests.integration.conftest import Publisher, eventually, metric
from tests.integration.test_ingest import settled
from tests.reject_flood import flood_payload

FLOODER = "aq-hornsgatan-108"
BYSTANDER = "aq-sveavagen-59"
ENV = "miljoforvaltningen"


def good_reading(device: str = BYSTANDER, value: float = 12.5) -> str:
    return json.dumps([{"bn": f"urn:dev:{device}:", "n": "no2", "u": "ug/m3", "v": value,
                        "t": time.time() - 60}])


async def count(db: Any, sql: str) -> int:
    return int(await db.fetchval(sql) or 0)


async def refused_records(db: Any) -> int:
    return await count(db, "SELECT sum(records) FROM rejected_messages")


async def test_a_pack_of_7500_nameless_records_leaves_one_row_that_counts_them(
    ingest: Consumer, publisher: Publisher, fleet_db: Any
) -> None:
    payload = flood_payload(7500)  # 60,001 bytes, within the 64 KiB limit
    ingest.rules = Rules(max_payload_bytes=64 * 1024)
    await publisher.device(FLOODER, payload)
    await settled(ingest, 1)
    rows = await fleet_db.fetch("SELECT * FROM rejected_messages")
    assert len(rows) == 1
    row = rows[0]
    assert (row["code"], row["records"], row["record_index"], row["device_id"]) == (
        "bad_name", 7500, 0, FLOODER)
    assert row["payload"] == payload[:PAYLOAD_BYTES]
    assert row["payload_bytes"] == len(payload)
    assert f"cut to its first {PAYLOAD_BYTES} of {len(payload)} bytes" in row["reason"]
    assert "7,500 records refused in all (bad_name 7,500)" in row["reason"]
    details = json.loads(row["details"])
    assert details["codes"] == {"bad_name": 7500}
    assert [d["index"] for d in details["first"]] == list(range(10))
    assert details["first"][0]["record"] == {"v": 1}
    sample = ingest.metrics.registry.get_sample_value("stadspuls_ingest_rejected_total",
                                                      {"code": "bad_name"})
    assert sample == 7500


async def test_a_sender_past_its_budget_is_counted_in_one_over_budget_row(
    ingest: Consumer, publisher: Publisher, fleet_db: Any
) -> None:
    # A window of an hour, so that the test cannot straddle two.
    ingest.rules = Rules(max_payload_bytes=64 * 1024, budget=RejectBudget(5, 3600))
    for _ in range(12):
        await publisher.device(FLOODER, flood_payload(100))
    await publisher.device(BYSTANDER, b"not json")  # another sender: a budget of its own
    await publisher.device(BYSTANDER, good_reading())
    await settled(ingest, 14)
    rows = await fleet_db.fetch(
        "SELECT code, device_id, records, details, payload FROM rejected_messages "
        "ORDER BY id")
    kept = [(r["code"], r["device_id"], r["records"]) for r in rows if r["code"] != "over_budget"]
    assert sorted(kept) == sorted([("bad_name", FLOODER, 100)] * 5
                                  + [("invalid_json", BYSTANDER, 1)])
    [summary] = [r for r in rows if r["code"] == "over_budget"]
    assert (summary["device_id"], summary["records"], summary["payload"]) == (FLOODER, 700, b"")
    assert json.loads(summary["details"]) == {"messages": 7, "codes": {"bad_name": 700}}
    assert await refused_records(fleet_db) == 12 * 100 + 1
    assert await count(fleet_db, "SELECT count(*) FROM observations") == 1
    assert metric(ingest, "rejects_over_budget_total") == 7


async def test_the_flood_of_issue_12_is_stored_as_counts_and_holds_up_nobody(
    ingest: Consumer, publisher: Publisher, fleet_db: Any
) -> None:
    ingest.rules = Rules(max_payload_bytes=64 * 1024)
    payload = flood_payload(7500)
    window = RejectBudget().window_of(time.time())
    for _ in range(150):
        await publisher.device(FLOODER, payload)
    sent = time.monotonic()
    await publisher.device(BYSTANDER, good_reading())

    async def stored() -> bool:
        return await count(fleet_db, "SELECT count(*) FROM observations") == 1

    await eventually(stored, within=30)
    waited = time.monotonic() - sent
    await settled(ingest, 151)
    assert waited < 5, f"the bystander's reading waited {waited:.1f} s behind the flood"
    assert await refused_records(fleet_db) == 150 * 7500  # every refused record counted
    rows = await count(fleet_db, "SELECT count(*) FROM rejected_messages")
    # The budget's rows, plus one over_budget row per window the flood touched.
    windows = 1 if RejectBudget().window_of(time.time()) == window else 2
    assert 20 < rows <= 20 * windows + windows
    size = await count(fleet_db, "SELECT pg_total_relation_size('rejected_messages')")
    assert size < 2_000_000

    async def metered() -> bool:
        rows = await fleet_db.fetch(
            "SELECT a.code, u.amount FROM usage_daily u JOIN agencies a ON a.id = u.agency_id "
            "WHERE u.metric = $1", usage.READINGS_REJECTED)
        return {r["code"]: r["amount"] for r in rows} == {ENV: 150 * 7500}

    await eventually(metered)


async def test_a_pack_with_a_60000_character_base_name_leaves_a_row_within_its_bound(
    ingest: Consumer, publisher: Publisher, fleet_db: Any
) -> None:
    # Each of the 12 records resolves to the base name and so repeats it: unbounded before,
    # the row's details held ten copies of it (601,291 bytes).
    base = f"urn:dev:{FLOODER}:"
    base += "x" * (60_000 - len(base))
    records = [{"bn": base, "n": "r0", "v": 1}] + [{"n": f"r{k}", "v": 1} for k in range(1, 12)]
    payload = json.dumps(records).encode()
    ingest.rules = Rules(max_payload_bytes=64 * 1024)
    await publisher.device(FLOODER, payload)
    await settled(ingest, 1)
    [row] = await fleet_db.fetch("SELECT * FROM rejected_messages")
    assert (row["code"], row["records"], row["payload_bytes"]) == (
        "unknown_record", 12, len(payload))
    assert len(row["payload"]) + len(row["details"].encode()) + len(
        row["reason"].encode()) <= ROW_BYTES
    assert len(row["reason"].encode()) <= REASON_BYTES
    assert "12 records refused in all (unknown_record 12)" in row["reason"]
    assert f"cut to its first {PAYLOAD_BYTES} of {len(payload)} bytes" in row["reason"]
    details = json.loads(row["details"])
    assert details["codes"] == {"unknown_record": 12}
    first = details["first"]
    assert [d["index"] for d in first] == list(range(10))
    assert all(len(d["record_cut"].encode()) == RECORD_BYTES for d in first)
    assert all(d["record_bytes"] > 60_000 for d in first)


async def test_a_unit_of_50000_characters_leaves_a_reason_within_its_bound(
    ingest: Consumer, publisher: Publisher, fleet_db: Any
) -> None:
    ingest.rules = Rules(max_payload_bytes=64 * 1024)
    reading = [{"bn": f"urn:dev:{BYSTANDER}:", "n": "no2", "u": "x" * 50_000, "v": 1.0}]
    await publisher.device(BYSTANDER, json.dumps(reading))
    await settled(ingest, 1)
    [row] = await fleet_db.fetch("SELECT code, reason, details FROM rejected_messages")
    assert row["code"] == "wrong_unit"
    assert row["reason"].startswith("unit 'xxx")
    assert len(row["reason"].encode()) <= REASON_BYTES
    assert len(row["details"].encode()) <= 2 * RECORD_BYTES


async def test_readings_the_database_refuses_leave_one_row_per_message_within_the_budget(
    ingest: Consumer, publisher: Publisher, fleet_db: Any
) -> None:
    # The flooding device's Datastream is deleted after ingest read the registry: its view
    # still maps the readings there, and the database refuses every one of them.
    ingest.rules = Rules(budget=RejectBudget(5, 3600))  # an hour: no test straddles two
    stale = RegistryWatch()
    stale.current = ingest.registry.current
    ingest.registry = stale
    await fleet_db.execute("DELETE FROM datastreams WHERE id = $1",
                           stale.current.streams[f"urn:dev:{FLOODER}:no2"].datastream_id)
    now = time.time()
    for m in range(12):
        pack = [{"bn": f"urn:dev:{FLOODER}:", "n": "no2", "u": "ug/m3", "v": 10.0 + k,
                 "t": now - 60 - m * 10 - k} for k in range(3)]
        await publisher.device(FLOODER, json.dumps(pack))
    await publisher.device(BYSTANDER, good_reading())
    await settled(ingest, 13)
    rows = await fleet_db.fetch("SELECT code, device_id, records, details, topic "
                                "FROM rejected_messages ORDER BY id")
    kept = [r for r in rows if r["code"] != "over_budget"]
    assert [(r["code"], r["device_id"], r["records"]) for r in kept] == [
        ("database", FLOODER, 3)] * 5
    assert all(r["topic"].endswith(f"devices/{FLOODER}/senml") for r in kept)
    [summary] = [r for r in rows if r["code"] == "over_budget"]
    assert (summary["device_id"], summary["records"]) == (FLOODER, 21)
    assert json.loads(summary["details"]) == {"messages": 7, "codes": {"database": 21}}
    assert await refused_records(fleet_db) == 36
    assert await count(fleet_db, "SELECT count(*) FROM observations") == 1
    sample = ingest.metrics.registry.get_sample_value("stadspuls_ingest_rejected_total",
                                                      {"code": "database"})
    assert sample == 36
