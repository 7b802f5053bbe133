"""Readings outside their observed property's plausible range are refused with code
`implausible`, an empty pack is a reject of its own, and the simulated
fleet's readings, spikes and all, land or are refused exactly by the catalogue's ranges."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from devices.catalogue import PLAUSIBLE
from devices.fleet import fleet
from ingest.consumer import Consumer
from simulators.faults import FaultRates
from simulators.publisher import Publisher as FleetPublisher
from simulators.runner import Period, run
from simulators.simulation import Message, Simulation
from tests.integration.conftest import Publisher, eventually
from tests.integration.test_ingest import settled
from tests.plausible import outside, ranges_by_name, readings

HORNSGATAN = "aq-hornsgatan-108"
T0 = 1_790_000_000.0
OCT_1_0800 = 1_790_834_400  # 2026-10-01 08:00 Stockholm time


async def test_a_negative_count_a_pressure_of_minus_5000_and_250_percent_are_refused(
    ingest: Consumer, publisher: Publisher, fleet_db: Any
) -> None:
    await publisher.gateway("gw-essingen", json.dumps([
        {"bn": "urn:dev:tc-essingeleden-n:", "bt": T0, "n": "lane1/light/count",
         "u": "count", "v": -5},
        {"n": "lane1/occupancy", "u": "/", "v": 2.5},  # 250 %
        {"n": "lane1/light/speed", "u": "km/h", "v": 71.5},
    ]))
    await publisher.device(HORNSGATAN, json.dumps([
        {"bn": f"urn:dev:{HORNSGATAN}:", "bt": T0, "n": "pressure", "u": "hPa", "v": -5000},
        {"n": "no2", "u": "ug/m3", "v": 23.4},
    ]))
    await settled(ingest, 2)
    stored = await fleet_db.fetch(
        "SELECT ds.record_name, o.result_number FROM observations o "
        "JOIN datastreams ds ON ds.id = o.datastream_id ORDER BY 1")
    assert [tuple(r) for r in stored] == [("lane1/light/speed", 71.5), ("no2", 23.4)]
    rejects = await fleet_db.fetch(
        "SELECT device_id, code, records, reason, details FROM rejected_messages "
        "ORDER BY device_id")
    assert [(r["device_id"], r["code"], r["records"]) for r in rejects] == [
        (HORNSGATAN, "implausible", 1), ("tc-essingeleden-n", "implausible", 2)]
    assert "-5000 hPa is outside the plausible range of Air pressure, 850 to 1090" in (
        rejects[0]["reason"])
    reasons = [d["reason"] for d in json.loads(rejects[1]["details"])["first"]]
    assert reasons == [
        "-5 count is outside the plausible range of Vehicle count, light, 0 to 90",
        "2.5 / is outside the plausible range of Lane occupancy, 0 to 1",
    ]
    sample = ingest.metrics.registry.get_sample_value("stadspuls_ingest_rejected_total",
                                                      {"code": "implausible"})
    assert sample == 3


async def test_an_empty_pack_is_kept_as_a_reject_empty_pack(
    ingest: Consumer, publisher: Publisher, fleet_db: Any
) -> None:
    await publisher.device(HORNSGATAN, b"[]")
    await settled(ingest, 1)
    rows = await fleet_db.fetch("SELECT code, device_id, payload FROM rejected_messages")
    assert [tuple(r) for r in rows] == [("empty_pack", HORNSGATAN, b"[]")]


async def test_a_range_changed_in_the_registry_applies_without_a_restart(
    ingest: Consumer, publisher: Publisher, fleet_db: Any
) -> None:
    loaded = ingest.registry.current
    await fleet_db.execute("UPDATE observed_properties SET plausible_max = 10 WHERE key = 'no2'")
    await eventually(lambda: _async(ingest.registry.current is not loaded))
    await publisher.device(HORNSGATAN, json.dumps([
        {"bn": f"urn:dev:{HORNSGATAN}:", "bt": T0, "n": "no2", "u": "ug/m3", "v": 23.4}]))
    await settled(ingest, 1)
    assert await fleet_db.fetchval("SELECT code FROM rejected_messages") == "implausible"


async def test_an_hour_of_the_fleet_with_spikes_lands_exactly_as_the_ranges_say(
    ingest: Consumer, fleet_db: Any, mqtt_port: int, topic_prefix: str
) -> None:
    stockholm = fleet("stockholm")
    published: list[Message] = []

    def publish_hour() -> None:
        simulation = Simulation(stockholm, seed=7, rates=FaultRates(spike=0.02),
                                topic_prefix=topic_prefix)
        with FleetPublisher("127.0.0.1", mqtt_port, window=200) as fleet_publisher:
            def sink(message: Message) -> None:
                published.append(message)
                fleet_publisher.publish(message.topic, message.payload)

            run(simulation, Period(OCT_1_0800, OCT_1_0800 + 3_600), sink)

    await asyncio.to_thread(publish_hour)
    implausible = outside(published, ranges_by_name(stockholm))
    plausible = sum(1 for _ in readings(published)) - len(implausible)
    assert implausible  # the spikes put some readings beyond their ranges
    await settled(ingest, len(published))
    assert await fleet_db.fetchval("SELECT count(*) FROM observations") == plausible
    # An hour published in seconds is a burst: past a gateway's budget its rejects are
    # counted in its over_budget row, by code.
    refused: dict[str, int] = {}
    for row in await fleet_db.fetch("SELECT code, records, details FROM rejected_messages"):
        codes = (json.loads(row["details"])["codes"] if row["code"] == "over_budget"
                 else {row["code"]: row["records"]})
        for code, n in codes.items():
            refused[code] = refused.get(code, 0) + n
    assert refused == {"implausible": len(implausible)}


async def _async(value: bool) -> bool:
    return value


async def test_provisioning_writes_each_observed_propertys_range(fleet_db: Any) -> None:
    rows = await fleet_db.fetch(
        "SELECT key, plausible_min, plausible_max, plausible_unit FROM observed_properties")
    assert {r["key"]: (r["plausible_min"], r["plausible_max"], r["plausible_unit"])
            for r in rows} == {key: (p.low, p.high, p.unit) for key, p in PLAUSIBLE.items()}
