import re

import pytest

from devices import gateway
from devices.catalogue import MODELS, model
from devices.errors import UnknownFleet, UnknownModel
from devices.fleet import fleet, stockholm, synthetic
from devices.models import base_name

SENML_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-:./_]*$")
TOPIC_SAFE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def test_stockholm_fleet_has_the_air_quality_sites_by_role() -> None:
    roles = {d.name: d.properties["site_role"] for d in stockholm().devices
             if d.model == "air-quality-station"}
    assert roles == {
        "Hornsgatan 108": "street",
        "Sveavägen 59": "street",
        "E4/E20 Lilla Essingen": "street",
        "Torkel Knutssonsgatan": "urban-background",
        "Norr Malma": "regional-background",
    }


def test_stockholm_traffic_counters_stand_on_the_named_streets() -> None:
    streets = {d.properties["street"] for d in stockholm().devices
               if d.model == "traffic-counter"}
    assert streets == {"Essingeleden", "Sveavägen", "Hornsgatan", "Valhallavägen",
                       "Södra länken"}


def test_every_device_and_gateway_id_is_safe_in_a_topic_and_unique() -> None:
    f = fleet("stockholm", scale=150)
    ids = [d.device_id for d in f.devices] + [g.gateway_id for g in f.gateways]
    assert len(ids) == len(set(ids))
    assert all(TOPIC_SAFE_ID.match(i) for i in ids)


def test_devices_sit_only_behind_gateways_of_their_fleet() -> None:
    f = fleet("stockholm", scale=150)
    known = {g.gateway_id for g in f.gateways}
    assert {d.gateway for d in f.devices if d.gateway} <= known


def test_devices_lie_in_the_stockholm_region() -> None:
    for d in fleet("stockholm", scale=50).devices:
        assert 59.2 < d.latitude < 59.9 and 17.8 < d.longitude < 18.7, d.device_id


def test_synthetic_fleet_is_the_same_for_the_same_seed_and_differs_for_another() -> None:
    assert synthetic(30, seed=7) == synthetic(30, seed=7)
    assert synthetic(30, seed=7) != synthetic(30, seed=8)


def test_synthetic_devices_fill_gateways_of_one_hundred() -> None:
    f = synthetic(250)
    assert len(f.devices) == 250
    assert [g.gateway_id for g in f.gateways] == ["syn-gw-0001", "syn-gw-0002", "syn-gw-0003"]


def test_unknown_fleet_and_model_name_what_exists() -> None:
    with pytest.raises(UnknownFleet, match="stockholm"):
        fleet("gothenburg")
    with pytest.raises(UnknownModel, match="traffic-counter"):
        model("weather-balloon")


def test_record_names_follow_the_senml_name_rules_once_resolved() -> None:
    for d in fleet("stockholm", scale=3).devices:
        for record in model(d.model).streams(d):
            assert SENML_NAME.match(base_name(d.device_id) + record)


def test_traffic_counter_has_counts_and_speeds_per_lane_and_class_and_occupancy() -> None:
    counter = next(d for d in stockholm().devices if d.device_id == "tc-essingeleden-n")
    streams = model("traffic-counter").streams(counter)
    assert counter.properties["lanes"] == 3
    assert len(streams) == 3 * 5
    assert streams["lane3/heavy/count"].unit.senml == "count"
    assert streams["lane1/light/speed"].unit.senml == "km/h"
    assert streams["lane2/occupancy"].unit.senml == "/"


def test_air_quality_units_are_senml_units() -> None:
    station = stockholm().devices[0]
    units = {r: s.unit.senml for r, s in MODELS["air-quality-station"].streams(station).items()}
    assert units == {
        "no2": "ug/m3", "no": "ug/m3", "nox": "ug/m3", "pm10": "ug/m3", "pm2.5": "ug/m3",
        "o3": "ug/m3", "temp": "Cel", "rh": "%RH", "pressure": "hPa",
    }


def test_a_pack_carries_base_name_and_time_once_and_each_value_in_its_field() -> None:
    station = stockholm().devices[0]
    pack = model(station.model).encode(station, 1_800_000_000.0, {"no2": 23.4, "pm10": 12})
    assert pack == [
        {"bn": "urn:dev:aq-hornsgatan-108:", "bt": 1_800_000_000.0, "n": "no2",
         "u": "ug/m3", "v": 23.4},
        {"n": "pm10", "u": "ug/m3", "v": 12},
    ]


def test_a_gateway_pack_keeps_each_devices_base_name() -> None:
    a, b = stockholm().devices[5:7]
    packs = [model(d.model).encode(d, 1.8e9, {"lane1/light/count": 10}) for d in (a, b)]
    combined = gateway.combine(packs)
    assert [r.get("bn") for r in combined] == [base_name(a.device_id), base_name(b.device_id)]
    assert gateway.topic("gw-essingen") == "gateways/gw-essingen/senml"
