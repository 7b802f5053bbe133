"""The traffic counter model: per lane and vehicle class, counts and mean speed each minute.

Demand follows the city's time profile (`profiles.hourly_share`) scaled by the counter's
`daily_vehicles` (a normal weekday, one direction). Each lane takes a share of it, heavy
vehicles keep mostly to the right-hand lane. Speed falls as a lane fills towards its
capacity (a BPR-type curve), so Essingeleden crawls at 17:00 while Hornsgatan barely
notices; an incident cuts a lane's capacity for half an hour or more. Occupancy is what a
loop detector sees: each vehicle covers it for (vehicle length + loop length) / speed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from devices.models import Device
from simulators.calendar import Moment
from simulators.city import Conditions
from simulators.noise import AR1, poisson, smooth_noise
from simulators.profiles import hourly_share

DAY = 86_400


@dataclass(frozen=True)
class Road:
    """How a kind of road carries traffic."""

    free_speed: float  # km/h, mean speed of light vehicles on an empty road
    lane_capacity: float  # vehicles per minute and lane
    heavy_share: float  # share of vehicles that are heavy
    incidents_per_day: float  # expected incidents per direction and day
    congestion: float  # how steeply speed falls as the lane fills


MOTORWAY = Road(76.0, 31.0, 0.09, 0.25, 0.9)
ARTERIAL = Road(45.0, 15.0, 0.07, 0.08, 0.7)
CITY_STREET = Road(34.0, 13.0, 0.06, 0.05, 0.6)
ROADS = {"Essingeleden": MOTORWAY, "Södra länken": MOTORWAY, "Valhallavägen": ARTERIAL}

# Share of a direction's vehicles in lane 1 (the right-hand lane), lane 2, ...
LANE_SHARES = {1: (1.0,), 2: (0.55, 0.45), 3: (0.40, 0.34, 0.26)}
# Metres a vehicle keeps the loop covered beyond its own length: the loop itself.
LOOP_LENGTH = 2.0
VEHICLE_LENGTH = {"light": 4.8, "heavy": 14.0}


@dataclass(frozen=True)
class Incident:
    """A stretch of time when an accident or breakdown blocks part of the road."""

    start: int
    end: int
    capacity: float  # share of capacity left


class TrafficCounter:
    """One simulated traffic counter.

    Args:
        device: the counter, with `lanes`, `street` and `daily_vehicles` properties.
        rng: the counter's own generator.
        seed: the run's seed, which fixes the counter's incidents.
    """

    def __init__(self, device: Device, rng: random.Random, seed: int) -> None:
        self.device = device
        self.road = ROADS.get(str(device.properties.get("street")), CITY_STREET)
        self.lanes = int(device.properties.get("lanes", 1))
        self.daily = float(device.properties.get("daily_vehicles", 10_000))
        self._rng = rng
        self._seed = seed
        self._speed = [AR1(rng, 0.95) for _ in range(self.lanes)]
        self._incidents: dict[int, list[Incident]] = {}

    def readings(self, moment: Moment, city: Conditions) -> dict[str, float]:
        """This minute's readings, by SenML record name.

        Args:
            moment: the simulated minute.
            city: the city's conditions; its traffic index is not used here, the counter
                follows its own street's profile.

        Returns:
            Count, mean speed per vehicle class and occupancy for every lane.
        """
        capacity = self._capacity_left(moment)
        demand = self.daily * hourly_share(moment) / 60.0
        shares = LANE_SHARES.get(self.lanes) or (1.0 / self.lanes,) * self.lanes
        values: dict[str, float] = {}
        for lane in range(1, self.lanes + 1):
            values.update(self._lane(lane, demand * shares[lane - 1], capacity))
        return values

    def _lane(self, lane: int, demand: float, capacity_left: float) -> dict[str, float]:
        road = self.road
        capacity = road.lane_capacity * capacity_left
        load = demand / capacity
        flow = min(demand, capacity * (1.0 - 0.1 * max(0.0, load - 1.0)))
        speed = road.free_speed / (1.0 + road.congestion * load**5)
        speed = max(6.0, speed * (1.0 + 0.04 * self._speed[lane - 1].step()))
        heavy_share = road.heavy_share * (1.6 if lane == 1 else 0.5)
        light = poisson(self._rng, flow * (1.0 - heavy_share))
        heavy = poisson(self._rng, flow * heavy_share)
        heavy_speed = max(5.0, min(speed - 3.0, 85.0) + self._rng.gauss(0.0, 1.5))
        covered = (light * (VEHICLE_LENGTH["light"] + LOOP_LENGTH)
                   + heavy * (VEHICLE_LENGTH["heavy"] + LOOP_LENGTH))
        occupancy = covered / (speed / 3.6 * 60.0)
        return {
            f"lane{lane}/light/count": light,
            f"lane{lane}/light/speed": round(speed, 1),
            f"lane{lane}/heavy/count": heavy,
            f"lane{lane}/heavy/speed": round(heavy_speed, 1),
            f"lane{lane}/occupancy": round(min(1.0, occupancy), 3),
        }

    def _capacity_left(self, moment: Moment) -> float:
        left = 1.0
        for incident in self.incidents(moment.day_index):
            if incident.start <= moment.epoch < incident.end:
                left = min(left, incident.capacity)
        # A little day-to-day variation: roadworks, weather, events.
        return left * (1.0 + 0.05 * smooth_noise(self._seed, self.device.device_id,
                                                  moment.epoch, DAY))

    def incidents(self, day_index: int) -> list[Incident]:
        """The incidents of one local day on this counter's road; fixed by the seed.

        Args:
            day_index: the local date as a proleptic ordinal.

        Returns:
            Zero or more incidents, each 20 to 90 minutes long, mostly in daytime.
        """
        if day_index not in self._incidents:
            rng = random.Random(f"{self._seed}:incidents:{self.device.device_id}:{day_index}")
            midnight = (day_index - 719_163) * DAY - 3_600  # about local midnight
            found = []
            for _ in range(poisson(rng, self.road.incidents_per_day)):
                start = midnight + int(rng.triangular(5.0, 22.0, 16.0) * 3_600)
                found.append(Incident(start, start + rng.randint(20, 90) * 60,
                                      rng.uniform(0.3, 0.6)))
            self._incidents = {day_index: found}
        return self._incidents[day_index]
