"""Each fault shows up in the payloads at the rate it was configured with."""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict

import msgspec
import pytest

from devices.fleet import fleet
from devices.models import base_name
from simulators.errors import BadFaultSpec
from simulators.faults import FaultRates
from simulators.malformed import KINDS, OVERSIZE_BYTES
from simulators.simulation import DUPLICATE, FOREIGN, LATE, MALFORMED, READING, Simulation
from tests.unit.test_simulator_encoding import (
    MONDAY_0700,
    run_minutes,
    senml_problems,
    split_by_device,
)

MINUTES = 1_500
STOCKHOLM = fleet("stockholm")
BY_BASE_NAME = {base_name(d.device_id): d for d in STOCKHOLM.devices}


def within(observed: int, opportunities: int, rate: float) -> bool:
    """True if `observed` is a plausible binomial count: within 4 standard deviations."""
    expected = opportunities * rate
    return abs(observed - expected) <= 4 * math.sqrt(expected * (1 - rate)) + 1


def simulate(**rates: float) -> tuple[Simulation, list]:
    simulation = Simulation(STOCKHOLM, seed=11, rates=FaultRates(**rates))
    return simulation, run_minutes(simulation, MONDAY_0700, MINUTES)


def test_fault_specs_read_kinds_rates_all_and_none() -> None:
    assert FaultRates.parse(["duplicate=0.01,spike=0.001"]) == FaultRates(duplicate=0.01,
                                                                          spike=0.001)
    assert FaultRates.parse(["all=0.1", "skew=0"]).skew == 0.0
    assert FaultRates.parse(["all=0.1", "skew=0"]).foreign == 0.1
    assert FaultRates.parse(["all=0.1,none"]) == FaultRates()


@pytest.mark.parametrize("spec", ["typo=0.1", "duplicate=lots", "spike=1.5", "offline"])
def test_a_bad_fault_spec_is_refused_with_a_reason(spec: str) -> None:
    with pytest.raises(BadFaultSpec):
        FaultRates.parse([spec])


def test_duplicates_repeat_the_message_before_them_at_their_rate() -> None:
    simulation, messages = simulate(duplicate=0.02)
    sent = [m for m in messages if m.kind == READING]
    repeats = [(before, after) for before, after in itertools.pairwise(messages)
               if after.kind == DUPLICATE]
    assert all(b.payload == a.payload and b.topic == a.topic for b, a in repeats)
    assert len(repeats) == simulation.faults["duplicate"]
    assert within(len(repeats), len(sent), 0.02)


def test_skewed_packs_carry_a_base_time_off_the_minute_at_their_rate() -> None:
    simulation, messages = simulate(skew=0.03)
    offsets = []
    for n, message in enumerate(messages):
        minute = MONDAY_0700 + 60 * (n // 8)  # eight publishers, one message each a minute
        offsets += {r["bt"] - minute for r in msgspec.json.decode(message.payload) if "bt" in r}
    skewed = [o for o in offsets if o != 0]
    assert all(30 <= abs(o) <= 900 for o in skewed)
    assert len(skewed) == simulation.faults["skew"]
    assert within(len(skewed), len(messages), 0.03)


def test_offline_publishers_come_back_with_every_reading_late_but_none_lost() -> None:
    simulation, messages = simulate(offline=0.002)
    late = [m for m in messages if m.kind == LATE]
    outages = simulation.faults["offline"]
    assert outages > 0 and late
    assert sum(m.readings for m in messages) == simulation.streams * MINUTES
    online_minutes = sum(1 for m in messages if m.kind == READING) + outages
    assert within(outages, online_minutes, 0.002)
    times = defaultdict(list)
    for m in messages:
        if m.kind in (READING, LATE):
            times[m.topic].append(msgspec.json.decode(m.payload)[0]["bt"])
    # A burst of stored readings goes out before the first fresh one, oldest first.
    assert all(t == sorted(set(t)) for t in times.values())


def test_stuck_datastreams_repeat_one_value_for_half_an_hour_or_more() -> None:
    simulation, messages = simulate(stuck=0.0002)
    series: dict[tuple[str, str], list[float]] = defaultdict(list)
    for message in messages:
        for bn, records in split_by_device(message.payload).items():
            for r in records:
                if BY_BASE_NAME[bn].model == "air-quality-station" and r["n"] in ("no2", "o3"):
                    series[(bn, r["n"])].append(r["v"])
    runs = 0
    for values in series.values():
        length = 1
        for before, after in itertools.pairwise(values):
            length = length + 1 if after == before else 1
            runs += length == 30
    assert runs > 0
    assert within(simulation.faults["stuck"], simulation.streams * MINUTES, 0.0002)


def readings(messages: list) -> list[tuple[str, str, float]]:
    return [(bn, r["n"], r["v"]) for m in messages if m.kind == READING
            for bn, records in split_by_device(m.payload).items() for r in records]


def test_spikes_leave_the_true_value_far_behind_at_their_rate() -> None:
    simulation, messages = simulate(spike=0.001)
    _, clean = simulate()
    changed = [(was[2], now[2]) for was, now in zip(readings(clean), readings(messages),
                                                     strict=True) if was != now]
    assert len(changed) == simulation.faults["spike"]
    assert all(abs(now - was) >= 15 or now in (0.0, 1.0, 100.0) for was, now in changed)
    assert within(len(changed), simulation.streams * MINUTES, 0.001)


def test_malformed_payloads_are_all_invalid_and_of_every_kind() -> None:
    simulation, messages = simulate(malformed=0.03)
    bad = [m for m in messages if m.kind == MALFORMED]
    assert within(len(bad), sum(1 for m in messages if m.kind == READING), 0.03)
    kinds = Counter(k.split("/")[1] for k in simulation.faults if k.startswith("malformed/"))
    assert set(kinds) == set(KINDS)
    for message in bad:
        assert _rejected(message.payload, message.topic), message.payload[:200]
    assert any(len(m.payload) > OVERSIZE_BYTES for m in bad)


def _rejected(payload: bytes, topic: str) -> bool:
    if not payload or len(payload) > OVERSIZE_BYTES:
        return True
    try:
        records = msgspec.json.decode(payload.decode("utf-8"))
    except (UnicodeDecodeError, msgspec.DecodeError):
        return True
    if not isinstance(records, list):
        return True
    minute = records[0].get("bt") if records and isinstance(records[0], dict) else None
    if not isinstance(minute, int) or minute > MONDAY_0700 + 86_400 * 365:
        return True
    return any(senml_problems(payload, minute, BY_BASE_NAME)) or any(
        set(r) - {"bn", "bt", "n", "u", "v"} or "v" not in r for r in records)


def test_a_gateway_speaks_for_a_device_not_behind_it_at_its_rate() -> None:
    simulation, messages = simulate(foreign=0.05)
    foreign = [m for m in messages if m.kind == FOREIGN]
    gateway_messages = [m for m in messages
                        if m.kind == READING and m.topic.startswith("gateways/")]
    assert len(foreign) == simulation.faults["foreign"]
    assert within(len(foreign), len(gateway_messages), 0.05)
    for message in foreign:
        gateway_id = message.topic.split("/")[1]
        devices = {BY_BASE_NAME[bn].gateway for bn in split_by_device(message.payload)}
        assert gateway_id not in devices
