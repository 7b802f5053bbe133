"""What every device model shares: the datastreams it publishes and its SenML encoding.

A device publishes SenML packs (RFC 8428) whose base name is ``urn:dev:{device_id}:``;
each record's name is the datastream's ``record`` and its unit the datastream's SenML unit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

OM_MEASUREMENT = (
    "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
)
OM_COUNT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_CountObservation"
UCUM = "http://unitsofmeasure.org/ucum.html#"


@dataclass(frozen=True)
class ObservedProperty:
    """A quantity that is observed, such as NO2 concentration or vehicle count."""

    key: str
    name: str
    definition: str
    description: str


@dataclass(frozen=True)
class Plausible:
    """The values an observed property can take at all, in one SenML unit: outside them a
    reading is a fault of the device, not weather or traffic."""

    low: float
    high: float
    unit: str

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class Unit:
    """A unit of measurement: its SenML registry name and how SensorThings shows it."""

    senml: str
    name: str
    symbol: str
    ucum: str

    @property
    def definition(self) -> str:
        return UCUM + self.ucum


@dataclass(frozen=True)
class Stream:
    """One datastream of a device: a SenML record name with its quantity and unit."""

    record: str
    label: str
    observed_property: ObservedProperty
    unit: Unit
    observation_type: str = OM_MEASUREMENT
    # Restricted datastreams are readable only by the owning agency (and admins); the
    # registry sets this when the datastream is made and leaves later changes alone.
    restricted: bool = False


@dataclass(frozen=True)
class Device:
    """One field device of a fleet, as the registry knows it."""

    device_id: str
    model: str
    name: str
    description: str
    agency: str
    longitude: float
    latitude: float
    gateway: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)


def base_name(device_id: str) -> str:
    """The SenML base name under which a device's records are published."""
    return f"urn:dev:{device_id}:"


def encode_pack(
    device_id: str, streams: dict[str, Stream], time: float, values: dict[str, Any]
) -> list[dict[str, Any]]:
    """A SenML pack of one device's readings taken at `time` (seconds since the epoch).

    Args:
        device_id: the device the readings come from.
        streams: the device's datastreams by record name.
        time: when the readings were taken, as SenML base time.
        values: reading by record name; numbers go in ``v``, booleans in ``vb``,
            strings in ``vs``.

    Returns:
        The pack as a list of SenML records, ready for JSON encoding.
    """
    pack: list[dict[str, Any]] = []
    for record, value in values.items():
        entry: dict[str, Any] = {"n": record, "u": streams[record].unit.senml}
        if isinstance(value, bool):
            entry["vb"] = value
        elif isinstance(value, str):
            entry["vs"] = value
        else:
            entry["v"] = value
        pack.append(entry)
    if pack:
        pack[0] = {"bn": base_name(device_id), "bt": time, **pack[0]}
    return pack


@dataclass(frozen=True)
class DeviceModel:
    """A kind of field device: the sensor it carries and the datastreams it publishes."""

    name: str
    sensor_name: str
    sensor_description: str
    sensor_metadata: str
    stream_list: Any  # Callable[[Device], list[Stream]]; a field, so not typed as a method

    def streams(self, device: Device) -> dict[str, Stream]:
        """The datastreams of one device of this model, by SenML record name."""
        return {s.record: s for s in self.stream_list(device)}

    def encode(self, device: Device, time: float, values: dict[str, Any]) -> list[dict[str, Any]]:
        """A SenML pack of `device`'s readings at `time`; see `encode_pack`."""
        return encode_pack(device.device_id, self.streams(device), time, values)
