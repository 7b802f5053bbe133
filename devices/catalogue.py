"""The device models Stadspuls knows, by name, and the plausible range of each observed
property they measure.

A range says what is possible at all, not what is usual: a reading outside it is a
broken sensor or encoding (a negative count, a pressure of -5,000 hPa, an occupancy of
250 %), and ingest refuses it with code `implausible`. Concentrations may dip a little below
zero, as analysers report around their zero point; counts are per lane and minute.
Provisioning writes the ranges into `observed_properties`, where ingest reads them.
"""

from __future__ import annotations

from devices import air_quality, traffic_counter
from devices.errors import UnknownModel
from devices.models import DeviceModel, Plausible

MODELS: dict[str, DeviceModel] = {
    m.name: m for m in (air_quality.MODEL, traffic_counter.MODEL)
}


PLAUSIBLE: dict[str, Plausible] = {
    "no2": Plausible(-10, 2_000, "ug/m3"),
    "no": Plausible(-10, 3_000, "ug/m3"),
    "nox": Plausible(-10, 5_000, "ug/m3"),
    "pm10": Plausible(-10, 3_000, "ug/m3"),
    "pm2.5": Plausible(-10, 1_500, "ug/m3"),
    "o3": Plausible(-10, 600, "ug/m3"),
    "air-temperature": Plausible(-50, 50, "Cel"),
    "relative-humidity": Plausible(0, 100, "%RH"),
    "air-pressure": Plausible(850, 1_090, "hPa"),
    "vehicle-count-light": Plausible(0, 90, "count"),
    "vehicle-count-heavy": Plausible(0, 90, "count"),
    "mean-speed-light": Plausible(0, 250, "km/h"),
    "mean-speed-heavy": Plausible(0, 250, "km/h"),
    "occupancy": Plausible(0, 1, "/"),
}


def model(name: str) -> DeviceModel:
    try:
        return MODELS[name]
    except KeyError:
        raise UnknownModel(f"no device model {name!r}; known: {', '.join(MODELS)}") from None


def device_topic(device_id: str) -> str:
    return f"devices/{device_id}/senml"
