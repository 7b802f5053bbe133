"""The air-quality station model: NO2, NO, NOx, PM10, PM2.5, O3 and weather each minute.

Concentrations build up from the city's shared conditions (`city.Conditions`):

- NOx: a local increment over the regional background, proportional to traffic and to how
  poorly the air mixes; street sites add a street increment on top of the urban one.
- NO2, NO and O3: a share of the NOx leaves the exhaust as NO2; the rest is NO that ozone
  turns into NO2 as far as the ozone reaches, so O3 falls where NOx is high. NOx is then
  exactly NO2 + 1.53 NO (NO expressed as NO2 by the ratio of molar masses, 46/30).
- PM10: PM2.5 plus coarse regional particles plus road dust ground up by studded tyres,
  which lifts in dry spells and peaks in March and April.
- PM2.5: the regional background, long-range transport episodes included, and a little
  from local traffic.

Every quantity carries autocorrelated noise, so consecutive minutes look like one series.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from devices.models import Device
from simulators.calendar import Moment
from simulators.city import Conditions
from simulators.noise import AR1

# NO expressed as NO2: 46.0055 / 30.0061 g/mol.
NO_AS_NO2 = 1.53
# Ozone turned into NO2 by titration: 46.0055 / 47.9982 g/mol.
O3_TO_NO2 = 0.958
# NOx increment (ug/m3 as NO2) at which half the regional ozone is used up.
TITRATION_HALF = 70.0


@dataclass(frozen=True)
class SiteRole:
    """What a kind of site adds to the regional background, at average traffic and
    average mixing."""

    nox_street: float  # street increment of NOx, ug/m3 as NO2
    nox_urban: float  # urban increment of NOx, ug/m3 as NO2
    primary_no2: float  # share of the NOx increment emitted as NO2
    road_dust: float  # PM10 road dust, ug/m3
    pm25_local: float  # ug/m3
    temperature_offset: float  # Cel; the urban heat island at the city sites
    pressure_offset: float  # hPa, for the height of the inlet above sea level


ROLES = {
    "street": SiteRole(62.0, 14.0, 0.18, 11.0, 1.6, 0.6, -3.0),
    "urban-background": SiteRole(0.0, 14.0, 0.15, 1.8, 0.8, 0.4, -4.5),
    "regional-background": SiteRole(0.0, 2.6, 0.10, 0.0, 0.0, -0.5, -2.5),
}

# How strongly each named street site feels its street, relative to the role's default.
SITE_FACTOR = {
    "aq-hornsgatan-108": 1.0,  # a canyon of six-storey buildings
    "aq-sveavagen-59": 0.75,
    "aq-lilla-essingen": 0.9,  # the motorway's volume, but open to the wind
}


class AirQualitySite:
    """One simulated air-quality station.

    Args:
        device: the station, with its `site_role` property.
        rng: the station's own generator.
    """

    def __init__(self, device: Device, rng: random.Random) -> None:
        self.device = device
        self.role = ROLES[str(device.properties.get("site_role", "urban-background"))]
        self.factor = SITE_FACTOR.get(device.device_id) or rng.uniform(0.6, 1.1)
        self._nox = AR1(rng, 0.985)
        self._dust = AR1(rng, 0.99)
        self._fine = AR1(rng, 0.995)
        self._o3 = AR1(rng, 0.99)
        self._temp = AR1(rng, 0.98)
        self._rh = AR1(rng, 0.98)
        self._pressure = AR1(rng, 0.995)

    def readings(self, moment: Moment, city: Conditions) -> dict[str, float]:
        """This minute's readings, by SenML record name.

        Args:
            moment: the simulated minute.
            city: the city's conditions at that minute.

        Returns:
            A value for every datastream of the air-quality station model.
        """
        gases = self._gases(city)
        fine = self._pm25(city)
        pm10 = fine + city.pm_coarse_regional + self._road_dust(city)
        temp = city.temperature + self.role.temperature_offset + 0.15 * self._temp.step()
        rh = city.rh_base - 3.0 * (temp - city.daily_mean_temperature) + 2.0 * self._rh.step()
        return {
            **gases,
            "pm10": round(pm10, 1),
            "pm2.5": round(fine, 1),
            "temp": round(temp, 1),
            "rh": round(min(100.0, max(15.0, rh)), 1),
            "pressure": round(city.pressure + self.role.pressure_offset
                              + 0.2 * self._pressure.step(), 1),
        }

    def _gases(self, city: Conditions) -> dict[str, float]:
        role = self.role
        urban = role.nox_urban * (0.5 + 0.5 * city.traffic)
        street = role.nox_street * self.factor * city.traffic
        increment = (urban + street) * city.dispersion * math.exp(0.3 * self._nox.step() - 0.045)
        o3_in = city.o3_regional * math.exp(0.05 * self._o3.step())
        primary = role.primary_no2 * increment
        o3_used = o3_in * increment / (increment + TITRATION_HALF)
        converted = min(o3_used * O3_TO_NO2, increment - primary)
        no2 = round(primary + converted, 1)
        no = round((increment - primary - converted) / NO_AS_NO2, 1)
        return {
            "no2": no2,
            "no": no,
            "nox": round(no2 + NO_AS_NO2 * no, 1),
            "o3": round(o3_in - converted / O3_TO_NO2, 1),
        }

    def _pm25(self, city: Conditions) -> float:
        local = self.role.pm25_local * self.factor * city.traffic * city.dispersion
        return (city.pm25_regional + local) * math.exp(0.12 * self._fine.step())

    def _road_dust(self, city: Conditions) -> float:
        dust = self.role.road_dust * self.factor * city.traffic * city.road_dust
        # Resuspended dust follows the wind more than the inversion: only partly dispersion.
        return dust * math.sqrt(city.dispersion) * math.exp(0.35 * self._dust.step() - 0.06)
