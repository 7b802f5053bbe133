"""The simulator's payloads are the SenML the device models describe, and repeatable."""

from __future__ import annotations

import math
import re
from typing import Any

import msgspec
import pytest

from devices.catalogue import model
from devices.fleet import fleet
from devices.models import base_name
from simulators.faults import FaultRates
from simulators.simulation import READING, Message, Simulation

# Local time 2026-01-12 07:00, a Monday morning.
MONDAY_0700 = 1_768_197_600
SENML_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-:./_]*$")


def run_minutes(simulation: Simulation, start: int, minutes: int) -> list[Message]:
    messages = []
    for n in range(minutes):
        messages.extend(simulation.minute(start + 60 * n))
    return messages + simulation.flush()


def split_by_device(payload: bytes) -> dict[str, list[dict[str, Any]]]:
    """A pack's records by the device whose base name they fall under."""
    records = msgspec.json.decode(payload)
    assert isinstance(records, list)
    devices: dict[str, list[dict[str, Any]]] = {}
    current = None
    for record in records:
        current = record.get("bn", current)
        assert current is not None, "the first record must carry the base name"
        devices.setdefault(current, []).append(record)
    return devices


def senml_problems(payload: bytes, minute: int, expect: dict[str, Any]) -> list[str]:
    """Everything about `payload` that breaks the contract; empty when it is clean."""
    problems = []
    for bn, records in split_by_device(payload).items():
        device = expect.get(bn)
        if device is None:
            return [f"unknown base name {bn}"]
        streams = model(device.model).streams(device)
        if records[0].get("bt") != minute or not isinstance(records[0]["bt"], int):
            problems.append(f"{bn}: bt {records[0].get('bt')} is not {minute}")
        if sorted(r["n"] for r in records) != sorted(streams):
            problems.append(f"{bn}: records are not the model's datastreams")
        for r in records:
            value = r.get("v")
            if set(r) - {"bn", "bt", "n", "u", "v"}:
                problems.append(f"{bn}{r['n']}: unexpected fields")
            if not SENML_NAME.match(r["n"]):
                problems.append(f"{bn}{r['n']}: bad name")
            if r["n"] in streams and r.get("u") != streams[r["n"]].unit.senml:
                problems.append(f"{bn}{r['n']}: unit {r.get('u')}")
            if not isinstance(value, int | float) or not math.isfinite(value):
                problems.append(f"{bn}{r['n']}: value {value!r}")
    return problems


def test_every_pack_of_every_device_model_is_clean_senml_for_its_datastreams() -> None:
    stockholm = fleet("stockholm", scale=5, seed=3)
    assert {d.model for d in stockholm.devices} == {"air-quality-station", "traffic-counter"}
    expect = {base_name(d.device_id): d for d in stockholm.devices}
    simulation = Simulation(stockholm, seed=3)
    for minute in range(MONDAY_0700, MONDAY_0700 + 30 * 60, 60):
        for message in simulation.minute(minute):
            assert senml_problems(message.payload, minute, expect) == []


def test_devices_behind_a_gateway_go_out_in_one_pack_on_the_gateway_topic() -> None:
    stockholm = fleet("stockholm")
    messages = Simulation(stockholm, seed=1).minute(MONDAY_0700)
    topics = {m.topic: set(split_by_device(m.payload)) for m in messages}
    assert topics["gateways/gw-sodermalm/senml"] == {
        base_name(i) for i in ("tc-hornsgatan-e", "tc-hornsgatan-w", "tc-sodra-lanken-e",
                               "tc-sodra-lanken-w")}
    assert topics["gateways/gw-norr-malma/senml"] == {base_name("aq-norr-malma")}
    assert topics["devices/aq-hornsgatan-108/senml"] == {base_name("aq-hornsgatan-108")}
    assert len(messages) == 8  # four stations alone, four gateways


def test_a_clean_minute_carries_one_reading_per_datastream() -> None:
    simulation = Simulation(fleet("stockholm"), seed=1)
    messages = run_minutes(simulation, MONDAY_0700, 10)
    assert simulation.streams == 155
    assert sum(m.readings for m in messages) == 155 * 10
    assert {m.kind for m in messages} == {READING}


def test_the_same_seed_gives_the_same_bytes() -> None:
    first = run_minutes(Simulation(fleet("stockholm", 20, 7), 7, FaultRates(
        offline=0.02, duplicate=0.05, skew=0.05, stuck=0.01, spike=0.01, malformed=0.05,
        foreign=0.05)), MONDAY_0700, 60)
    second = run_minutes(Simulation(fleet("stockholm", 20, 7), 7, FaultRates(
        offline=0.02, duplicate=0.05, skew=0.05, stuck=0.01, spike=0.01, malformed=0.05,
        foreign=0.05)), MONDAY_0700, 60)
    assert [(m.topic, m.payload) for m in first] == [(m.topic, m.payload) for m in second]


def test_another_seed_gives_other_readings() -> None:
    first = run_minutes(Simulation(fleet("stockholm"), 1), MONDAY_0700, 5)
    second = run_minutes(Simulation(fleet("stockholm"), 2), MONDAY_0700, 5)
    assert [m.payload for m in first] != [m.payload for m in second]


def test_switching_a_fault_on_leaves_the_readings_alone() -> None:
    clean = run_minutes(Simulation(fleet("stockholm"), 5), MONDAY_0700, 30)
    noisy = run_minutes(Simulation(fleet("stockholm"), 5, FaultRates(duplicate=0.3,
                        malformed=0.3)), MONDAY_0700, 30)
    assert [m.payload for m in noisy if m.kind == READING] == [m.payload for m in clean]
    assert len(noisy) > len(clean)


@pytest.mark.parametrize("device_id", ["aq-hornsgatan-108", "aq-norr-malma"])
def test_nox_is_no2_plus_no_as_no2(device_id: str) -> None:
    simulation = Simulation(fleet("stockholm"), 4)
    for message in run_minutes(simulation, MONDAY_0700, 120):
        records = split_by_device(message.payload).get(base_name(device_id))
        if records:
            value = {r["n"]: r["v"] for r in records}
            assert value["nox"] == pytest.approx(value["no2"] + 1.53 * value["no"], abs=0.06)
