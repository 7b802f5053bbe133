"""Traffic time profiles: the share of a day's vehicles that pass in each hour.

Shapes follow what loop counters on Stockholm's streets typically show: on weekdays a
morning peak 07-09 and a longer afternoon peak 15-18, a night minimum around 03; at
weekends a single broad midday peak and fewer vehicles overall. July, the holiday month,
is quieter.
"""

from __future__ import annotations

from simulators.calendar import Moment

# Percent of the day's vehicles per local hour 00..23, before normalising.
_WEEKDAY = (0.9, 0.5, 0.35, 0.3, 0.5, 1.5, 4.0, 7.2, 7.4, 5.6, 5.0, 5.2,
            5.4, 5.5, 6.0, 7.0, 7.6, 7.4, 5.8, 4.4, 3.6, 3.0, 2.3, 1.6)
_WEEKEND = (1.6, 1.1, 0.8, 0.6, 0.5, 0.7, 1.2, 2.0, 3.0, 4.4, 5.6, 6.2,
            6.4, 6.5, 6.5, 6.4, 6.2, 5.9, 5.4, 4.8, 4.0, 3.4, 2.8, 2.2)

# A Saturday or Sunday carries this share of a weekday's vehicles.
WEEKEND_VOLUME = {5: 0.80, 6: 0.70}
MONTH_VOLUME = {6: 0.95, 7: 0.80, 8: 0.95, 12: 0.95}


def _normalised(shares: tuple[float, ...]) -> tuple[float, ...]:
    total = sum(shares)
    return tuple(s / total for s in shares)


WEEKDAY = _normalised(_WEEKDAY)
WEEKEND = _normalised(_WEEKEND)


def hourly_share(moment: Moment) -> float:
    """The share of a weekday's volume passing per hour at this moment.

    Interpolates linearly between the middles of the hours, so minute-to-minute counts
    do not jump at the top of the hour.

    Args:
        moment: the simulated minute.

    Returns:
        Vehicles per hour as a share of the daily volume of a normal weekday.
    """
    profile = WEEKEND if moment.weekend else WEEKDAY
    position = (moment.hour - 0.5) % 24.0
    hour = int(position)
    weight = position - hour
    share = (1.0 - weight) * profile[hour] + weight * profile[(hour + 1) % 24]
    return share * WEEKEND_VOLUME.get(moment.weekday, 1.0) * MONTH_VOLUME.get(moment.month, 1.0)


def traffic_index(moment: Moment) -> float:
    """City traffic now relative to the mean of a weekday (1.0 is a weekday's average)."""
    return hourly_share(moment) * 24.0
