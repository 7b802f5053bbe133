"""The device models Stadspuls knows, by name."""

from __future__ import annotations

from devices import air_quality, traffic_counter
from devices.errors import UnknownModel
from devices.models import DeviceModel

MODELS: dict[str, DeviceModel] = {
    m.name: m for m in (air_quality.MODEL, traffic_counter.MODEL)
}


def model(name: str) -> DeviceModel:
    try:
        return MODELS[name]
    except KeyError:
        raise UnknownModel(f"no device model {name!r}; known: {', '.join(MODELS)}") from None


def device_topic(device_id: str) -> str:
    return f"devices/{device_id}/senml"
