"""The traffic counter: per lane and vehicle class, counts and mean speed each minute.

A counter watches the lanes of one carriageway in one direction; the number of lanes is the
device property ``lanes``. Vehicles are classed light (cars, vans) or heavy (lorries, buses)
by length. Occupancy is the share (0 to 1) of the minute a lane's detector was covered.
"""

from __future__ import annotations

from devices.models import OM_COUNT, Device, DeviceModel, ObservedProperty, Stream, Unit

PROPERTY = "urn:stadspuls:property:"

COUNT = Unit("count", "vehicles per minute", "veh/min", "{vehicle}/min")
KMH = Unit("km/h", "kilometre per hour", "km/h", "km/h")
RATIO = Unit("/", "ratio", "1", "1")

CLASSES = ("light", "heavy")

VEHICLE_COUNT = {
    cls: ObservedProperty(
        f"vehicle-count-{cls}", f"Vehicle count, {cls}", f"{PROPERTY}vehicle-count:{cls}",
        f"Number of {cls} vehicles passing the detector in the interval",
    )
    for cls in CLASSES
}
MEAN_SPEED = {
    cls: ObservedProperty(
        f"mean-speed-{cls}", f"Mean speed, {cls}", f"{PROPERTY}mean-speed:{cls}",
        f"Arithmetic mean spot speed of the {cls} vehicles counted in the interval",
    )
    for cls in CLASSES
}
OCCUPANCY = ObservedProperty(
    "occupancy", "Lane occupancy", f"{PROPERTY}occupancy",
    "Share of the interval during which the lane detector was occupied",
)


def lane_streams(lane: int) -> list[Stream]:
    """The datastreams of one lane: count and mean speed per vehicle class, occupancy."""
    streams = []
    for cls in CLASSES:
        streams.append(Stream(
            f"lane{lane}/{cls}/count", f"Lane {lane} {cls} vehicles", VEHICLE_COUNT[cls],
            COUNT, OM_COUNT,
        ))
        streams.append(Stream(
            f"lane{lane}/{cls}/speed", f"Lane {lane} {cls} mean speed", MEAN_SPEED[cls], KMH,
        ))
    # Occupancy serves the traffic management centre's incident detection; it is not
    # published as open data.
    streams.append(Stream(f"lane{lane}/occupancy", f"Lane {lane} occupancy", OCCUPANCY, RATIO,
                          restricted=True))
    return streams


def _streams(device: Device) -> list[Stream]:
    lanes = int(device.properties.get("lanes", 1))
    return [s for lane in range(1, lanes + 1) for s in lane_streams(lane)]


MODEL = DeviceModel(
    name="traffic-counter",
    sensor_name="Inductive-loop traffic counter",
    sensor_description=(
        "Double inductive loops per lane classifying vehicles by length and measuring speed"
    ),
    sensor_metadata="https://www.trafiken.nu/",
    stream_list=_streams,
)
