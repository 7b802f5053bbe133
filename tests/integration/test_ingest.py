"""Readings published over MQTT land in TimescaleDB once; bad input is kept as a reject
with its reason while good traffic keeps flowing."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from devices.fleet import fleet
from devices.provision import provision
from ingest.consumer import Consumer
from tests.integration.conftest import Publisher, eventually, metric

HORNSGATAN = "aq-hornsgatan-108"
T0 = 1_790_000_000.0  # 2026-09-21


def pack(device: str = HORNSGATAN, **records: Any) -> str:
    """A SenML pack of one device: name=value, or name=(value, time)."""
    out: list[dict[str, Any]] = []
    units = {"no2": "ug/m3", "pm10": "ug/m3", "temp": "Cel"}
    for name, spec in records.items():
        value, t = spec if isinstance(spec, tuple) else (spec, T0)
        out.append({"n": name, "u": units.get(name, "ug/m3"), "v": value, "t": t})
    out[0]["bn"] = f"urn:dev:{device}:"
    return json.dumps(out)


async def observations(db: Any) -> list[tuple[float, float]]:
    rows = await db.fetch(
        "SELECT extract(epoch FROM phenomenon_time)::float8 AS t, result_number "
        "FROM observations ORDER BY phenomenon_time, datastream_id"
    )
    return [(r["t"], r["result_number"]) for r in rows]


async def count(db: Any, table: str) -> int:
    return int(await db.fetchval(f"SELECT count(*) FROM {table}"))


async def wait_rows(db: Any, n: int, table: str = "observations") -> None:
    async def enough() -> bool:
        return await count(db, table) >= n

    await eventually(enough)


async def test_a_reading_published_at_qos1_lands_once(
    ingest: Consumer, publisher: Publisher, fleet_db: Any
) -> None:
    await publisher.device(HORNSGATAN, pack(no2=23.4))
    await wait_rows(fleet_db, 1)
    assert await observations(fleet_db) == [(T0, 23.4)]
    assert await count(fleet_db, "rejected_messages") == 0


async def test_the_same_message_published_twice_lands_once(
    ingest: Consumer, publisher: Publisher, fleet_db: Any
) -> None:
    await publisher.device(HORNSGATAN, pack(no2=23.4))
    await publisher.device(HORNSGATAN, pack(no2=23.4))
    await publisher.device(HORNSGATAN, pack(no2=(24.0, T0 + 60)))
    await wait_rows(fleet_db, 2)
    await settled(ingest, 3)
    assert await observations(fleet_db) == [(T0, 23.4), (T0 + 60, 24.0)]
    assert metric(ingest, "records_duplicate_total") == 1


async def settled(consumer: Consumer, messages: int, within: float = 60) -> None:
    """Wait until the consumer has received `messages` and acknowledged every one."""
    async def done() -> bool:
        return (metric(consumer, "messages_received_total") >= messages
                and metric(consumer, "unacknowledged_messages") == 0)

    await eventually(done, within=within)


async def test_a_gateway_pack_lands_for_each_device_behind_it(
    ingest: Consumer, publisher: Publisher, fleet_db: Any
) -> None:
    records = [
        {"bn": "urn:dev:tc-essingeleden-n:", "bt": T0, "n": "lane1/light/count", "u": "count",
         "v": 41},
        {"n": "lane1/light/speed", "u": "km/h", "v": 71.5},
        {"bn": "urn:dev:tc-essingeleden-s:", "n": "lane3/heavy/count", "u": "count", "v": 3},
    ]
    await publisher.gateway("gw-essingen", json.dumps(records))
    await wait_rows(fleet_db, 3)
    rows = await fleet_db.fetch(
        "SELECT t.device_id, ds.record_name, o.result_number, o.result_integer "
        "FROM observations o JOIN datastreams ds ON ds.id = o.datastream_id "
        "JOIN things t ON t.id = ds.thing_id ORDER BY 1, 2"
    )
    assert [tuple(r) for r in rows] == [
        ("tc-essingeleden-n", "lane1/light/count", None, 41),
        ("tc-essingeleden-n", "lane1/light/speed", 71.5, None),
        ("tc-essingeleden-s", "lane3/heavy/count", None, 3),
    ]


async def test_late_and_out_of_order_readings_are_stored(
    ingest: Consumer, publisher: Publisher, fleet_db: Any
) -> None:
    a_year_ago = time.time() - 365 * 86400
    await publisher.device(HORNSGATAN, pack(no2=(30.0, T0 + 120)))
    await publisher.device(HORNSGATAN, pack(no2=(10.0, T0)))
    await publisher.device(HORNSGATAN, pack(no2=(5.0, a_year_ago)))
    await wait_rows(fleet_db, 3)
    stored = await observations(fleet_db)
    assert [v for _, v in stored] == [5.0, 10.0, 30.0]


async def test_a_newly_provisioned_device_is_accepted_without_restart(
    ingest: Consumer, publisher: Publisher, fleet_db: Any
) -> None:
    await provision(fleet_db, fleet("stockholm", scale=1))

    async def known() -> bool:
        return "syn-00001" in ingest.registry.current.gateway_of

    await eventually(known)
    await publisher.gateway("syn-gw-0001", pack("syn-00001", no2=12.5))
    await wait_rows(fleet_db, 1)
    assert await observations(fleet_db) == [(T0, 12.5)]


GOOD = pack(no2=(20.0, T0 + 3600))

BAD_INPUT = [
    # (case, topic kind, sender, payload, code)
    ("invalid JSON", "devices", HORNSGATAN, b'[{"n":"no2","v":1', "invalid_json"),
    ("non-UTF-8 bytes", "devices", HORNSGATAN, b'[{"n":"no2\xff","v":1}]', "not_utf8"),
    ("empty payload", "devices", HORNSGATAN, b"", "empty"),
    ("over the size limit", "devices", HORNSGATAN,
     json.dumps([{"n": "no2", "v": 1, "vs": "x" * 20000}]).encode(), "too_large"),
    ("object instead of array", "devices", HORNSGATAN,
     b'{"bn":"urn:dev:aq-hornsgatan-108:","n":"no2","v":1}', "not_array"),
    ("record without value", "devices", HORNSGATAN, b'[{"n":"no2","u":"ug/m3"}]',
     "no_value"),
    ("record with two values", "devices", HORNSGATAN,
     b'[{"n":"no2","u":"ug/m3","v":1,"vb":true}]', "several_values"),
    ("NaN", "devices", HORNSGATAN, b'[{"n":"no2","u":"ug/m3","v":NaN}]', "invalid_json"),
    ("Infinity", "devices", HORNSGATAN, b'[{"n":"no2","u":"ug/m3","v":1e999}]',
     "not_finite"),
    ("string where a number is required", "devices", HORNSGATAN,
     b'[{"n":"no2","u":"ug/m3","vs":"high"}]', "wrong_type"),
    ("number as a JSON string", "devices", HORNSGATAN,
     b'[{"n":"no2","u":"ug/m3","v":"12"}]', "bad_field"),
    ("name breaking the charset", "devices", HORNSGATAN,
     b'[{"n":"no 2","u":"ug/m3","v":1}]', "bad_name"),
    ("unknown device", "devices", "aq-nowhere",
     b'[{"bn":"urn:dev:aq-nowhere:","n":"no2","u":"ug/m3","v":1}]', "unknown_device"),
    ("unknown record name", "devices", HORNSGATAN,
     b'[{"n":"so2","u":"ug/m3","v":1,"t":1790000000}]', "unknown_record"),
    ("time in milliseconds", "devices", HORNSGATAN,
     b'[{"n":"no2","u":"ug/m3","v":1,"t":1790000000000}]', "bad_time"),
    ("count beyond 64 bits", "gateways", "gw-essingen",
     b'[{"bn":"urn:dev:tc-essingeleden-n:","n":"lane1/light/count","u":"count","v":1e19,'
     b'"t":1790000000}]', "wrong_type"),
    ("wrong unit", "devices", HORNSGATAN,
     b'[{"n":"no2","u":"ppb","v":1,"t":1790000000}]', "wrong_unit"),
    ("time far in the future", "devices", HORNSGATAN,
     json.dumps([{"n": "no2", "u": "ug/m3", "v": 1, "t": time.time() + 86400}]).encode(),
     "future_time"),
    ("device speaking for another", "devices", HORNSGATAN,
     b'[{"bn":"urn:dev:aq-sveavagen-59:","n":"no2","u":"ug/m3","v":1}]', "foreign_device"),
    ("gateway speaking for a device not behind it", "gateways", "gw-essingen",
     b'[{"bn":"urn:dev:aq-hornsgatan-108:","n":"no2","u":"ug/m3","v":1,"t":1790000000}]',
     "not_behind_gateway"),
]


@pytest.mark.parametrize(("kind", "sender", "payload", "code"),
                         [case[1:] for case in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
async def test_bad_input_is_kept_as_a_reject_with_its_reason_and_traffic_flows(
    ingest: Consumer, publisher: Publisher, fleet_db: Any, kind: str, sender: str,
    payload: bytes, code: str,
) -> None:
    await publisher.raw(f"{kind}/{sender}/senml", payload)
    await publisher.device(HORNSGATAN, GOOD)
    await wait_rows(fleet_db, 1)
    await wait_rows(fleet_db, 1, "rejected_messages")
    reject = await fleet_db.fetchrow("SELECT code, reason, payload FROM rejected_messages")
    assert reject["code"] == code, reject["reason"]
    assert reject["reason"]
    assert await observations(fleet_db) == [(T0 + 3600, 20.0)]
    if code in ("invalid_json", "not_utf8", "empty", "not_array"):
        assert reject["payload"] == payload  # the message as it came, byte for byte
    if code == "too_large":
        assert reject["payload"] == payload[:ingest.settings.max_payload_bytes]


async def test_a_pack_mixing_valid_and_invalid_records_keeps_the_valid_ones(
    ingest: Consumer, publisher: Publisher, fleet_db: Any
) -> None:
    mixed = [
        {"bn": f"urn:dev:{HORNSGATAN}:", "bt": T0, "n": "no2", "u": "ug/m3", "v": 21.0},
        {"n": "pm10", "u": "ppm", "v": 3},
        {"n": "temp", "u": "Cel", "v": "warm"},
        {"n": "temp", "u": "Cel", "v": -2.5},
    ]
    await publisher.device(HORNSGATAN, json.dumps(mixed))
    await wait_rows(fleet_db, 2)
    await wait_rows(fleet_db, 1, "rejected_messages")
    # One row for the message: its first refusal, the count, and each refusal in details.
    rejects = await fleet_db.fetch(
        "SELECT record_index, code, device_id, records, details FROM rejected_messages")
    assert [tuple(r)[:4] for r in rejects] == [(1, "wrong_unit", HORNSGATAN, 2)]
    details = json.loads(rejects[0]["details"])
    assert details["codes"] == {"wrong_unit": 1, "bad_field": 1}
    assert [(d["index"], d["code"]) for d in details["first"]] == [
        (1, "wrong_unit"), (2, "bad_field")]
    assert sorted(v for _, v in await observations(fleet_db)) == [-2.5, 21.0]
