"""Fleets: the agencies, gateways and devices that provisioning writes to the registry.

The Stockholm fleet holds the city's air-quality monitoring sites (street, urban background
and regional) and traffic counters on real streets, with their coordinates (WGS 84). A
synthetic fleet of any size, scattered over the city, serves load work.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from devices.errors import UnknownFleet
from devices.gateway import Gateway
from devices.models import Device


@dataclass(frozen=True)
class Agency:
    code: str
    name: str
    description: str


@dataclass(frozen=True)
class Fleet:
    name: str
    agencies: list[Agency]
    gateways: list[Gateway] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)

    def extended(self, other: Fleet) -> Fleet:
        """This fleet with the gateways and devices of `other` added."""
        agencies = {a.code: a for a in [*self.agencies, *other.agencies]}
        return Fleet(
            self.name, list(agencies.values()), [*self.gateways, *other.gateways],
            [*self.devices, *other.devices],
        )


ENVIRONMENT = Agency(
    "miljoforvaltningen", "Miljöförvaltningen",
    "Environment and health administration: air-quality monitoring",
)
TRAFFIC = Agency(
    "trafikkontoret", "Trafikkontoret",
    "Traffic administration: traffic counts and speeds",
)
FIBRE = Agency(
    "stokab", "Stokab", "The city's fibre network company: gateways on the city fibre",
)

AQ = "air-quality-station"
TC = "traffic-counter"


def _aq(device_id: str, name: str, role: str, lat: float, lon: float,
        gateway: str | None = None) -> Device:
    return Device(
        device_id, AQ, name, f"Air-quality monitoring site, {role.replace('-', ' ')}",
        ENVIRONMENT.code, lon, lat, gateway, {"site_role": role},
    )


def _tc(device_id: str, name: str, street: str, direction: str, lanes: int,
        daily_vehicles: int, lat: float, lon: float, gateway: str) -> Device:
    return Device(
        device_id, TC, name, f"Traffic counter on {street}, {direction}bound",
        TRAFFIC.code, lon, lat, gateway,
        {"street": street, "direction": direction, "lanes": lanes,
         "daily_vehicles": daily_vehicles},
    )


def stockholm() -> Fleet:
    """The default Stockholm fleet: five air-quality sites and ten traffic counters."""
    gateways = [
        Gateway("gw-essingen", "Gateway Essingeleden", FIBRE.code),
        Gateway("gw-sodermalm", "Gateway Södermalm", FIBRE.code),
        Gateway("gw-norrmalm", "Gateway Norrmalm and Östermalm", FIBRE.code),
        Gateway("gw-norr-malma", "Gateway Norr Malma", FIBRE.code),
    ]
    devices = [
        _aq("aq-hornsgatan-108", "Hornsgatan 108", "street", 59.31721, 18.04880),
        _aq("aq-sveavagen-59", "Sveavägen 59", "street", 59.34050, 18.05857),
        _aq("aq-lilla-essingen", "E4/E20 Lilla Essingen", "street", 59.32545, 18.00395),
        _aq("aq-torkel-knutssonsgatan", "Torkel Knutssonsgatan", "urban-background",
            59.31620, 18.05780),
        _aq("aq-norr-malma", "Norr Malma", "regional-background", 59.83200, 18.63290,
            gateway="gw-norr-malma"),
        # Daily volumes are the whole carriageway in one direction.
        _tc("tc-essingeleden-n", "Essingeleden northbound", "Essingeleden", "north", 3,
            70_000, 59.32460, 18.00520, "gw-essingen"),
        _tc("tc-essingeleden-s", "Essingeleden southbound", "Essingeleden", "south", 3,
            70_000, 59.32440, 18.00470, "gw-essingen"),
        _tc("tc-hornsgatan-e", "Hornsgatan eastbound", "Hornsgatan", "east", 2,
            12_000, 59.31715, 18.04930, "gw-sodermalm"),
        _tc("tc-hornsgatan-w", "Hornsgatan westbound", "Hornsgatan", "west", 2,
            12_000, 59.31725, 18.04900, "gw-sodermalm"),
        _tc("tc-sodra-lanken-e", "Södra länken eastbound", "Södra länken", "east", 2,
            40_000, 59.30090, 18.09190, "gw-sodermalm"),
        _tc("tc-sodra-lanken-w", "Södra länken westbound", "Södra länken", "west", 2,
            40_000, 59.30080, 18.09150, "gw-sodermalm"),
        _tc("tc-sveavagen-n", "Sveavägen northbound", "Sveavägen", "north", 2,
            11_000, 59.34110, 18.05830, "gw-norrmalm"),
        _tc("tc-sveavagen-s", "Sveavägen southbound", "Sveavägen", "south", 2,
            11_000, 59.34100, 18.05800, "gw-norrmalm"),
        _tc("tc-valhallavagen-e", "Valhallavägen eastbound", "Valhallavägen", "east", 2,
            13_000, 59.34660, 18.07420, "gw-norrmalm"),
        _tc("tc-valhallavagen-w", "Valhallavägen westbound", "Valhallavägen", "west", 2,
            13_000, 59.34670, 18.07380, "gw-norrmalm"),
    ]
    return Fleet("stockholm", [ENVIRONMENT, TRAFFIC, FIBRE], gateways, devices)


# Inner Stockholm, roughly Bromma to Nacka and Årsta to Solna.
SCALE_BOUNDS = (59.28, 59.37, 17.93, 18.15)
DEVICES_PER_SYNTHETIC_GATEWAY = 100


def synthetic(count: int, seed: int = 0) -> Fleet:
    """`count` synthetic air-quality sensors at random places in the city, behind gateways
    of up to 100 devices each; the same seed gives the same fleet."""
    rng = random.Random(seed)
    lat0, lat1, lon0, lon1 = SCALE_BOUNDS
    gateways = [
        Gateway(f"syn-gw-{g:04d}", f"Synthetic gateway {g}", FIBRE.code)
        for g in range(1, (count + DEVICES_PER_SYNTHETIC_GATEWAY - 1)
                       // DEVICES_PER_SYNTHETIC_GATEWAY + 1)
    ]
    devices = [
        Device(
            f"syn-{n:05d}", AQ, f"Synthetic sensor {n}", "Synthetic air-quality sensor",
            ENVIRONMENT.code, round(rng.uniform(lon0, lon1), 6), round(rng.uniform(lat0, lat1), 6),
            gateways[(n - 1) // DEVICES_PER_SYNTHETIC_GATEWAY].gateway_id,
            {"site_role": rng.choice(["street", "urban-background"]), "synthetic": True},
        )
        for n in range(1, count + 1)
    ]
    return Fleet(f"synthetic-{count}", [ENVIRONMENT, FIBRE], gateways, devices)


FLEETS = {"stockholm": stockholm}


def fleet(name: str, scale: int = 0, seed: int = 0) -> Fleet:
    """A fleet by name, with `scale` synthetic devices added."""
    try:
        chosen = FLEETS[name]()
    except KeyError:
        raise UnknownFleet(f"no fleet {name!r}; known: {', '.join(FLEETS)}") from None
    return chosen.extended(synthetic(scale, seed)) if scale > 0 else chosen
