"""What the device models encode, ingest decodes and maps: for every model, every
datastream, on the device's own topic or its gateway's."""

import json

import pytest

from devices import gateway
from devices.catalogue import device_topic, model
from devices.fleet import Fleet, fleet
from devices.models import Device, base_name
from ingest.mapping import Mapped, Rules, map_message
from ingest.registry import KINDS, Registry, Target

T0 = 1_790_000_000.0
FLEET = fleet("stockholm", scale=2)


def registry_of(f: Fleet) -> Registry:
    streams = {}
    for number, (device, stream) in enumerate(
        (d, s) for d in f.devices for s in model(d.model).streams(d).values()
    ):
        streams[base_name(device.device_id) + stream.record] = Target(
            number, stream.unit.senml, KINDS.get(stream.observation_type, "any"),
            device.device_id,
        )
    return Registry(streams, {d.device_id: d.gateway for d in f.devices})


def readings(device: Device) -> dict[str, int | float]:
    return {record: (7 if record.endswith("count") else 12.25)
            for record in model(device.model).streams(device)}


@pytest.mark.parametrize("device", FLEET.devices, ids=lambda d: d.device_id)
def test_every_datastream_of_every_device_maps_back_to_itself(device: Device) -> None:
    registry = registry_of(FLEET)
    values = readings(device)
    pack = model(device.model).encode(device, T0, values)
    topic = gateway.topic(device.gateway) if device.gateway else device_topic(device.device_id)
    if device.gateway:
        pack = gateway.combine([pack])
    out = Mapped()
    map_message(topic, json.dumps(pack).encode(), T0 + 5, registry, Rules(), out)
    assert out.rejects == []
    expected_ids = [registry.streams[base_name(device.device_id) + r].datastream_id
                    for r in values]
    assert out.datastreams == expected_ids
    stored = [n if n is not None else i for n, i in zip(out.numbers, out.integers, strict=True)]
    assert stored == list(values.values())
    assert set(out.times) == {T0}
