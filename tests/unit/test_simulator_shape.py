"""The simulated city has the statistical shape of Stockholm's measurements."""

from __future__ import annotations

import random
import statistics
from collections import defaultdict
from collections.abc import Iterator

import pytest

from devices.fleet import stockholm
from devices.models import Device
from simulators.air import AirQualitySite
from simulators.calendar import Moment
from simulators.city import City
from simulators.traffic import TrafficCounter

JAN_1 = 1_767_222_000  # 2026-01-01 00:00 Stockholm time, a Thursday
MONDAY = 1_768_172_400  # 2026-01-12 00:00, a Monday
SATURDAY = MONDAY + 5 * 86_400
HOUR = 3_600


def device(device_id: str) -> Device:
    return next(d for d in stockholm().devices if d.device_id == device_id)


def counter_day(device_id: str, midnight: int, seed: int = 1) -> list[dict[str, float]]:
    """Every minute of one day at a traffic counter."""
    counter = TrafficCounter(device(device_id), random.Random(seed), seed)
    city = City(seed)
    minutes = []
    for epoch in range(midnight, midnight + 86_400, 60):
        moment = Moment.at(epoch)
        minutes.append(counter.readings(moment, city.conditions(moment)))
    return minutes


def vehicles(minute: dict[str, float]) -> float:
    return sum(v for k, v in minute.items() if k.endswith("/count"))


def hourly_vehicles(minutes: list[dict[str, float]]) -> list[float]:
    return [sum(vehicles(m) for m in minutes[h * 60:(h + 1) * 60]) for h in range(24)]


def year_of_air(seed: int = 1) -> Iterator[tuple[Moment, dict[str, dict[str, float]]]]:
    """Hourly readings at every station through 2026 (one minute sampled per hour)."""
    city = City(seed)
    sites = [AirQualitySite(d, random.Random(f"{seed}{d.device_id}"))
             for d in stockholm().devices if d.model == "air-quality-station"]
    for hour in range(365 * 24):
        moment = Moment.at(JAN_1 + hour * HOUR + 1_800)
        conditions = city.conditions(moment)
        yield moment, {s.device.device_id: s.readings(moment, conditions) for s in sites}


@pytest.fixture(scope="module")
def year() -> list[tuple[Moment, dict[str, dict[str, float]]]]:
    return list(year_of_air())


def mean_of(year: list[tuple[Moment, dict[str, dict[str, float]]]], device_id: str,
            record: str, month: int | None = None) -> float:
    return statistics.fmean(r[device_id][record] for m, r in year
                            if month is None or m.month == month)


@pytest.mark.parametrize("device_id", ["tc-hornsgatan-e", "tc-essingeleden-n",
                                       "tc-valhallavagen-w"])
def test_weekday_rush_hours_carry_at_least_three_times_the_night_minimum(
    device_id: str,
) -> None:
    hours = hourly_vehicles(counter_day(device_id, MONDAY))
    morning, afternoon = statistics.fmean(hours[7:9]), statistics.fmean(hours[15:18])
    assert morning >= 3 * min(hours)
    assert afternoon >= 3 * min(hours)
    assert hours.index(min(hours)) in range(1, 5)


def test_a_weekday_carries_the_daily_volume_of_the_direction() -> None:
    for device_id in ("tc-hornsgatan-e", "tc-essingeleden-s", "tc-sveavagen-n"):
        counted = sum(hourly_vehicles(counter_day(device_id, MONDAY)))
        assert counted == pytest.approx(device(device_id).properties["daily_vehicles"],
                                        rel=0.06)


def test_saturday_is_flatter_smaller_and_peaks_later_than_a_weekday() -> None:
    weekday = hourly_vehicles(counter_day("tc-hornsgatan-w", MONDAY))
    saturday = hourly_vehicles(counter_day("tc-hornsgatan-w", SATURDAY))
    assert sum(saturday) < 0.9 * sum(weekday)

    def peakiness(hours: list[float]) -> float:
        return max(hours[6:20]) / statistics.median(hours[10:18])

    assert peakiness(saturday) < peakiness(weekday) - 0.1
    assert saturday.index(max(saturday)) > 9
    assert saturday[8] < weekday[8] / 2


def test_essingeleden_slows_down_and_fills_up_in_the_afternoon_rush() -> None:
    minutes = counter_day("tc-essingeleden-n", MONDAY)
    night, rush = minutes[2 * 60:3 * 60], minutes[16 * 60 + 30:17 * 60 + 30]
    assert statistics.fmean(m["lane1/light/speed"] for m in rush) < 0.7 * statistics.fmean(
        m["lane1/light/speed"] for m in night)
    assert statistics.fmean(m["lane1/occupancy"] for m in rush) > 5 * statistics.fmean(
        m["lane1/occupancy"] for m in night)
    assert all(0.0 <= m[f"lane{n}/occupancy"] <= 1.0 for m in minutes for n in (1, 2, 3))


def test_an_incident_drops_speed_and_raises_occupancy() -> None:
    counter = TrafficCounter(device("tc-essingeleden-s"), random.Random(2), 2)
    day = next(d for d in range(739_628, 739_728)
               if any(10 <= Moment.at(i.start).hour < 14 for i in counter.incidents(d)))
    incident = next(i for i in counter.incidents(day) if 10 <= Moment.at(i.start).hour < 14)
    city = City(2)

    def lane1(start: int, end: int) -> tuple[float, float]:
        rows = [counter.readings(Moment.at(e), city.conditions(Moment.at(e)))
                for e in range(start - start % 60, end, 60)]
        return (statistics.fmean(r["lane1/light/speed"] for r in rows),
                statistics.fmean(r["lane1/occupancy"] for r in rows))

    before = lane1(incident.start - 3 * HOUR, incident.start - 2 * HOUR)
    during = lane1(incident.start + 300, incident.end)
    assert during[0] < 0.75 * before[0]
    assert during[1] > 1.3 * before[1]


def test_no2_is_highest_at_street_sites_then_urban_then_regional_background(year) -> None:
    streets = [mean_of(year, d, "no2") for d in
               ("aq-hornsgatan-108", "aq-sveavagen-59", "aq-lilla-essingen")]
    urban = mean_of(year, "aq-torkel-knutssonsgatan", "no2")
    regional = mean_of(year, "aq-norr-malma", "no2")
    assert min(streets) > urban > regional
    # Reported annual means: street sites 25-40, urban background about 10, regional 2-3.
    assert all(25 <= s <= 45 for s in streets)
    assert 7 <= urban <= 15
    assert 1 <= regional <= 4


@pytest.mark.parametrize("device_id", ["aq-hornsgatan-108", "aq-sveavagen-59",
                                       "aq-lilla-essingen"])
def test_march_pm10_is_above_july_pm10_at_street_sites(year, device_id: str) -> None:
    assert mean_of(year, device_id, "pm10", month=3) > 1.5 * mean_of(year, device_id, "pm10",
                                                                       month=7)


def test_spring_road_dust_brings_days_above_the_daily_limit_at_hornsgatan(year) -> None:
    daily = defaultdict(list)
    for moment, readings in year:
        daily[(moment.month, moment.day_of_year)].append(readings["aq-hornsgatan-108"]["pm10"])
    spring = [statistics.fmean(v) for (month, _), v in daily.items() if month in (3, 4)]
    summer = [statistics.fmean(v) for (month, _), v in daily.items() if month in (6, 7, 8)]
    assert max(spring) > 80
    assert sum(d > 50 for d in spring) >= 3
    assert max(summer) < 50


def test_ozone_is_lower_where_and_when_no2_is_high(year) -> None:
    no2 = [r["aq-hornsgatan-108"]["no2"] for _, r in year]
    o3 = [r["aq-hornsgatan-108"]["o3"] for _, r in year]
    assert statistics.correlation(no2, o3) < -0.2
    assert mean_of(year, "aq-norr-malma", "o3") > mean_of(year, "aq-hornsgatan-108", "o3")


def test_winter_inversions_raise_no2_at_every_city_site() -> None:
    city = City(1)
    site = AirQualitySite(device("aq-torkel-knutssonsgatan"), random.Random(1))
    calm, inverted = [], []
    for hour in range(59 * 24):  # January and February
        moment = Moment.at(JAN_1 + hour * HOUR)
        conditions = city.conditions(moment)
        no2 = site.readings(moment, conditions)["no2"]
        (inverted if conditions.inversion > 0.5 else calm).append(no2)
    assert inverted, "two winter months without one inversion episode"
    assert statistics.fmean(inverted) > 1.5 * statistics.fmean(calm)


def test_long_range_transport_lifts_pm25_at_the_regional_site(year) -> None:
    pm25 = sorted(r["aq-norr-malma"]["pm2.5"] for _, r in year)
    assert statistics.median(pm25) < 7
    assert pm25[int(0.99 * len(pm25))] > 15
