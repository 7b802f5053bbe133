"""City-wide conditions each minute: weather, mixing of the air, and pollution episodes.

Every station in the city shares one weather and one set of episodes: an inversion
raises NO2 at every site at once, a long-range transport episode lifts PM2.5 everywhere.
All of it is a pure function of the seed and the time (see `noise.smooth_noise`), so a
backfill of October shows the same episodes whichever day it starts on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simulators.calendar import Moment
from simulators.noise import smooth_noise
from simulators.profiles import traffic_index

HOUR = 3_600.0
DAY = 86_400.0

# Monthly weights: how likely and strong each kind of episode is.
INVERSION_SEASON = {12: 1.0, 1: 1.0, 2: 1.0, 11: 0.6, 3: 0.6, 10: 0.3, 4: 0.3}
ROAD_DUST_SEASON = {1: 1.0, 2: 1.4, 3: 3.0, 4: 3.0, 5: 1.3, 6: 0.5, 7: 0.4, 8: 0.4,
                    9: 0.5, 10: 0.7, 11: 0.9, 12: 1.0}
RH_MONTHLY = {1: 88, 2: 85, 3: 78, 4: 70, 5: 66, 6: 68, 7: 70, 8: 74, 9: 80, 10: 85,
              11: 89, 12: 90}


@dataclass(frozen=True)
class Conditions:
    """What every site in the city shares at one minute."""

    temperature: float  # Cel, before the site's own offset
    daily_mean_temperature: float
    pressure: float  # hPa at sea level
    rh_base: float  # %RH of a day at its mean temperature
    dispersion: float  # multiplier on local increments; 1 is an average hour
    inversion: float  # 0 (none) to 1 (a strong winter inversion)
    road_dust: float  # multiplier on resuspended road dust
    pm25_regional: float  # ug/m3, long-range transport included
    pm_coarse_regional: float  # ug/m3
    o3_regional: float  # ug/m3
    traffic: float  # city traffic relative to a weekday's mean


class City:
    """The weather and episodes of a simulated Stockholm.

    Args:
        seed: the run's seed; the same seed gives the same weather.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def _noise(self, key: str, moment: Moment, period_s: float) -> float:
        return smooth_noise(self.seed, key, moment.epoch, period_s)

    def conditions(self, moment: Moment) -> Conditions:
        """The city's conditions at `moment`.

        Args:
            moment: the simulated minute.

        Returns:
            Weather, mixing, episodes and the city traffic index.
        """
        inversion = self.inversion(moment)
        mean_temp = self._daily_mean_temperature(moment, inversion)
        summer = (1.0 + moment.seasonal(196)) / 2.0
        temperature = mean_temp + (1.5 + 3.0 * summer) * moment.diurnal(15.0)
        pressure = 1013.0 + (9.0 - 3.0 * summer) * self._noise("pressure", moment, 2 * DAY)
        return Conditions(
            temperature=temperature,
            daily_mean_temperature=mean_temp,
            pressure=pressure + 12.0 * inversion,
            rh_base=RH_MONTHLY[moment.month] + 5.0 * self._noise("rh", moment, DAY),
            dispersion=self.dispersion(moment, inversion),
            inversion=inversion,
            road_dust=self.road_dust(moment),
            pm25_regional=self.pm25_regional(moment),
            pm_coarse_regional=3.5 * math.exp(0.4 * self._noise("coarse", moment, DAY)),
            o3_regional=self.o3_regional(moment, inversion),
            traffic=traffic_index(moment),
        )

    def _daily_mean_temperature(self, moment: Moment, inversion: float) -> float:
        # Annual mean near 8 Cel, coldest late January, warmest mid July.
        climate = 8.0 - 9.5 * moment.seasonal(20)
        winter = (1.0 + moment.seasonal(20)) / 2.0
        weather = (2.5 + 1.5 * winter) * self._noise("temperature", moment, 2 * DAY)
        return climate + weather - 4.0 * inversion

    def inversion(self, moment: Moment) -> float:
        """How strong a winter inversion episode is now, 0 to 1."""
        season = INVERSION_SEASON.get(moment.month, 0.0)
        if season == 0.0:
            return 0.0
        level = self._noise("inversion", moment, DAY)
        # Above 1.2 standard deviations: about one winter day in nine.
        return season * min(1.0, max(0.0, (level - 1.2) / 0.8))

    def dispersion(self, moment: Moment, inversion: float) -> float:
        """How poorly the air mixes, as a multiplier on local increments."""
        winter = (1.0 + moment.seasonal(20)) / 2.0
        season = 0.8 + 0.45 * winter
        # Stable nights and mornings, better mixing in the afternoon; stronger in summer.
        diurnal = 1.0 - (0.15 + 0.25 * (1.0 - winter)) * moment.diurnal(14.0)
        wind = math.exp(0.35 * self._noise("wind", moment, 6 * HOUR))
        return season * diurnal * wind * (1.0 + 2.5 * inversion)

    def road_dust(self, moment: Moment) -> float:
        """Resuspension of road dust: studded-tyre wear builds up in winter and lifts
        when the streets dry in spring; wet days hold it down."""
        dryness = self._noise("dryness", moment, DAY)
        dry = 0.25 + 2.5 / (1.0 + math.exp(-1.8 * (dryness - 0.6)))
        return ROAD_DUST_SEASON[moment.month] * dry

    def pm25_regional(self, moment: Moment) -> float:
        """PM2.5 arriving from outside the city, with long-range transport episodes."""
        base = 4.0 * math.exp(0.35 * self._noise("pm25", moment, 2 * DAY))
        episode = self._noise("lrt", moment, DAY)
        # Above 1.5 standard deviations, a few days a month: air from the continent.
        return base + 12.0 * max(0.0, episode - 1.5)

    def o3_regional(self, moment: Moment, inversion: float) -> float:
        """Ozone of the regional background: spring maximum, afternoon maximum."""
        spring = moment.seasonal(125)
        summer = (1.0 + moment.seasonal(196)) / 2.0
        diurnal = (4.0 + 8.0 * summer) * moment.diurnal(15.0)
        weather = 8.0 * self._noise("o3", moment, 2 * DAY)
        return max(5.0, (62.0 + 14.0 * spring + diurnal + weather) * (1.0 - 0.15 * inversion))
