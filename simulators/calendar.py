"""Simulated time: each minute as Stockholm's clocks and calendars see it.

Traffic and the boundary layer follow local time (rush hours move with daylight saving
time), so every model reads the hour and weekday from a `Moment` computed once a minute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

STOCKHOLM = ZoneInfo("Europe/Stockholm")


@dataclass(frozen=True)
class Moment:
    """One simulated minute."""

    epoch: int
    hour: float
    weekday: int
    month: int
    day_of_year: int
    day_index: int

    @classmethod
    def at(cls, epoch: int) -> Moment:
        """The moment at `epoch` (seconds since the epoch), in Stockholm local time.

        Args:
            epoch: the time.

        Returns:
            The moment, with local hour (fractional), weekday (0 is Monday), month, day
            of year and a day counter that changes at local midnight.
        """
        local = datetime.fromtimestamp(epoch, STOCKHOLM)
        return cls(
            epoch=epoch,
            hour=local.hour + local.minute / 60.0 + local.second / 3600.0,
            weekday=local.weekday(),
            month=local.month,
            day_of_year=local.timetuple().tm_yday,
            day_index=local.toordinal(),
        )

    @property
    def weekend(self) -> bool:
        return self.weekday >= 5

    def seasonal(self, peak_day: float) -> float:
        """A cosine over the year, 1 on `peak_day` (day of year) and -1 half a year later."""
        return math.cos(2.0 * math.pi * (self.day_of_year - peak_day) / 365.25)

    def diurnal(self, peak_hour: float) -> float:
        """A cosine over the day, 1 at `peak_hour` (local) and -1 twelve hours later."""
        return math.cos(2.0 * math.pi * (self.hour - peak_hour) / 24.0)
