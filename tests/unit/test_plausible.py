"""The plausible ranges of the catalogue: one for every observed property, in the unit its
datastreams carry, wide enough for everything the simulated fleet measures in a year, and
narrow enough that the simulator's spikes beyond them are caught."""

import json
import random
from dataclasses import replace

from devices.catalogue import MODELS, PLAUSIBLE
from devices.fleet import fleet
from ingest.mapping import Mapped, Rules, map_message
from simulators.faults import spiked
from simulators.simulation import Simulation
from tests.plausible import outside, ranges_by_name
from tests.unit.test_round_trip import registry_of

FLEET = fleet("stockholm", scale=2)
JAN_1 = 1_767_225_600  # 2026-01-01T00:00Z


def test_every_observed_property_has_a_range_in_the_unit_of_its_datastreams() -> None:
    for device in FLEET.devices:
        for stream in MODELS[device.model].streams(device).values():
            plausible = PLAUSIBLE[stream.observed_property.key]
            assert plausible.unit == stream.unit.senml, stream.record
            assert plausible.low < plausible.high


def test_a_year_of_the_simulated_fleet_stays_inside_the_ranges() -> None:
    simulation = Simulation(FLEET, seed=5)
    ranges = ranges_by_name(FLEET)
    # Every 97 minutes through a year: each hour of the day, each season and weekday.
    minutes = range(JAN_1, JAN_1 + 365 * 86_400, 97 * 60)
    found = [bad for epoch in minutes for bad in outside(simulation.minute(epoch), ranges)]
    assert found == []


def test_a_spike_beyond_its_range_is_refused_as_implausible_and_one_within_is_stored() -> None:
    device = next(d for d in FLEET.devices if d.device_id == "tc-essingeleden-n")
    registry = registry_of(FLEET)
    for name, target in registry.streams.items():
        plausible = PLAUSIBLE[_property(name)]
        registry.streams[name] = replace(target, low=plausible.low, high=plausible.high,
                                         property=_property(name))
    rng = random.Random(1)
    true = {"lane1/light/count": 12, "lane1/light/speed": 71.0, "lane1/occupancy": 0.2}
    caught = kept = 0
    for _ in range(200):
        record, value = rng.choice(sorted(true.items()))
        spike = spiked(record, value, rng)
        out = Mapped()
        pack = MODELS[device.model].encode(device, 1_790_000_000, {record: spike})
        map_message("gateways/gw-essingen/senml", json.dumps(pack).encode(), 1_790_000_005,
                    registry,
                    Rules(), out)
        plausible = PLAUSIBLE[_property(f"urn:dev:{device.device_id}:{record}")]
        if spike in plausible:
            assert out.rejects == [] and len(out.datastreams) == 1
            kept += 1
        else:
            assert [r.code for r in out.rejects] == ["implausible"], spike
            assert out.datastreams == []
            caught += 1
    assert caught > 0 and kept > 0


def _property(name: str) -> str:
    device_id, record = name.removeprefix("urn:dev:").split(":", 1)
    device = next(d for d in FLEET.devices if d.device_id == device_id)
    return MODELS[device.model].streams(device)[record].observed_property.key
