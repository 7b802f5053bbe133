"""The air-quality station: gases, particles and weather at one site, once a minute.

Concentrations are mass concentrations in ug/m3 (NOx as NO2), as Stockholm's monitoring
network reports them; observed properties use the European Environment Agency's pollutant
vocabulary.
"""

from __future__ import annotations

from devices.models import Device, DeviceModel, ObservedProperty, Stream, Unit

EEA_POLLUTANT = "http://dd.eionet.europa.eu/vocabulary/aq/pollutant/"
QUDT_KIND = "http://qudt.org/vocab/quantitykind/"

UG_M3 = Unit("ug/m3", "microgram per cubic metre", "µg/m³", "ug/m3")
CELSIUS = Unit("Cel", "degree Celsius", "°C", "Cel")
RH = Unit("%RH", "percent relative humidity", "%", "%")
HPA = Unit("hPa", "hectopascal", "hPa", "hPa")


def _pollutant(key: str, name: str, code: int, description: str) -> ObservedProperty:
    return ObservedProperty(key, name, f"{EEA_POLLUTANT}{code}", description)


NO2 = _pollutant("no2", "NO2", 8, "Nitrogen dioxide in ambient air")
NO = _pollutant("no", "NO", 38, "Nitrogen monoxide in ambient air")
NOX = _pollutant("nox", "NOx", 9, "Nitrogen oxides in ambient air, expressed as NO2")
PM10 = _pollutant("pm10", "PM10", 5, "Particulate matter below 10 µm aerodynamic diameter")
PM25 = _pollutant("pm2.5", "PM2.5", 6001, "Particulate matter below 2.5 µm aerodynamic diameter")
O3 = _pollutant("o3", "O3", 7, "Ozone in ambient air")
TEMPERATURE = ObservedProperty(
    "air-temperature", "Air temperature", f"{QUDT_KIND}Temperature", "Air temperature at the site"
)
HUMIDITY = ObservedProperty(
    "relative-humidity", "Relative humidity", f"{QUDT_KIND}RelativeHumidity",
    "Relative humidity of the air at the site",
)
PRESSURE = ObservedProperty(
    "air-pressure", "Air pressure", f"{QUDT_KIND}AtmosphericPressure",
    "Atmospheric pressure at the site",
)

STREAMS = [
    Stream("no2", "NO2", NO2, UG_M3),
    Stream("no", "NO", NO, UG_M3),
    Stream("nox", "NOx", NOX, UG_M3),
    Stream("pm10", "PM10", PM10, UG_M3),
    Stream("pm2.5", "PM2.5", PM25, UG_M3),
    Stream("o3", "O3", O3, UG_M3),
    Stream("temp", "Air temperature", TEMPERATURE, CELSIUS),
    Stream("rh", "Relative humidity", HUMIDITY, RH),
    Stream("pressure", "Air pressure", PRESSURE, HPA),
]


def _streams(device: Device) -> list[Stream]:
    return STREAMS


MODEL = DeviceModel(
    name="air-quality-station",
    sensor_name="Air-quality monitoring station",
    sensor_description=(
        "Chemiluminescence NOx analyser, UV-photometric O3 analyser, "
        "particle monitor for PM10 and PM2.5, and a weather sensor"
    ),
    sensor_metadata="https://www.slb.nu/slbanalys/",
    stream_list=_streams,
)
