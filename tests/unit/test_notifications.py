"""The topic rules of the SensorThings MQTT notifications, the PUBLISH packets that carry
them, and ingest's encoding of stored rows as Observations."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from core.mqtt_publish import connect_packet, publish_packet, string, varint
from core.notify import Change, confined, messages
from ingest.metrics import IngestMetrics
from ingest.notifications import ObservationAnnouncer
from ingest.settings import IngestSettings

THING = {"@iot.id": 1, "@iot.selfLink": "http://city/v1.1/Things(1)", "name": "Station",
         "Datastreams@iot.navigationLink": "http://city/v1.1/Things(1)/Datastreams"}


def decoded(out: list[tuple[str, bytes]]) -> list[tuple[str, Any]]:
    return [(topic, json.loads(payload)) for topic, payload in out]


def test_a_creation_goes_to_its_entity_set_and_to_each_parent_collection() -> None:
    observation = {"@iot.id": 9, "result": 1.5}
    change = Change("Observations", 9, observation,
                    parents=(("Datastreams", 5), ("FeaturesOfInterest", 7)))
    assert decoded(messages(change)) == [
        ("v1.1/Observations", observation),
        ("v1.1/Datastreams(5)/Observations", observation),
        ("v1.1/FeaturesOfInterest(7)/Observations", observation),
    ]


def test_an_update_goes_to_the_entity_each_changed_property_and_its_entity_set() -> None:
    change = Change("Things", 1, THING, changed=("name",))
    assert decoded(messages(change)) == [
        ("v1.1/Things(1)", THING),
        ("v1.1/Things(1)/name", {"name": "Station"}),
        ("v1.1/Things", THING),
    ]


def test_a_changed_navigation_property_has_no_property_topic() -> None:
    change = Change("Things", 1, THING, changed=("Locations",))
    assert [topic for topic, _ in messages(change)] == ["v1.1/Things(1)", "v1.1/Things"]


def test_an_updated_observation_is_announced_in_its_datastreams_collection() -> None:
    observation = {"@iot.id": 9, "result": 2.5}
    change = Change("Observations", 9, observation, changed=("result",),
                    parents=(("Datastreams", 5), ("FeaturesOfInterest", 7)))
    assert decoded(messages(change)) == [
        ("v1.1/Observations(9)", observation),
        ("v1.1/Observations(9)/result", {"result": 2.5}),
        ("v1.1/Observations", observation),
        ("v1.1/Datastreams(5)/Observations", observation),
        ("v1.1/FeaturesOfInterest(7)/Observations", observation),
    ]


def test_the_prefix_goes_before_every_topic() -> None:
    change = Change("Sensors", 2, {"@iot.id": 2}, parents=())
    assert [topic for topic, _ in messages(change, "test/abc/")] == ["test/abc/v1.1/Sensors"]


@pytest.mark.parametrize(("n", "encoded"), [
    (0, b"\x00"), (127, b"\x7f"), (128, b"\x80\x01"), (16_383, b"\xff\x7f"),
    (16_384, b"\x80\x80\x01"), (2_097_152, b"\x80\x80\x80\x01"),
])
def test_lengths_are_variable_byte_integers(n: int, encoded: bytes) -> None:
    assert varint(n) == encoded


def test_a_publish_packet_is_qos0_with_the_notification_user_property() -> None:
    user_property = b"\x26\x00\x16stadspuls-notification\x00\x011"
    assert b"".join(publish_packet(string("a/b"), b"{}")) == (
        b"\x30" + bytes([2 + 3 + 1 + len(user_property) + 2])  # remaining length
        + b"\x00\x03a/b"  # topic
        + bytes([len(user_property)]) + user_property  # properties
        + b"{}"
    )


def test_a_long_publish_packet_has_a_three_byte_length() -> None:
    payload = b"x" * 20_000
    packet = b"".join(publish_packet(string("t"), payload))
    assert packet[1:4] == varint(len(packet) - 4) and len(varint(len(packet) - 4)) == 3
    assert packet.endswith(payload)


def test_a_connect_packet_starts_clean_and_names_the_client() -> None:
    assert connect_packet("n", 30) == (
        b"\x10\x0e" + b"\x00\x04MQTT" + b"\x05" + b"\x02" + b"\x00\x1e" + b"\x00"
        + b"\x00\x01n")


def announcer(topics: str) -> ObservationAnnouncer:
    return ObservationAnnouncer(
        IngestSettings(topic_prefix="t/", api_url="http://city/v1.1/", notify_topics=topics),
        IngestMetrics())


AT = datetime(2026, 9, 21, 10, 0, 0, 250_000, tzinfo=UTC)


def test_a_stored_row_is_announced_as_the_observation_the_api_shows() -> None:
    row = (41, 5, 7, AT, None, 12, None, None)  # an integer count
    out = decoded(announcer("all").messages([row]))
    link = "http://city/v1.1/Observations(41)"
    observation = {
        "@iot.id": 41, "@iot.selfLink": link, "phenomenonTime": "2026-09-21T10:00:00.250000Z",
        "resultTime": None, "result": 12,
        "Datastream@iot.navigationLink": f"{link}/Datastream",
        "FeatureOfInterest@iot.navigationLink": f"{link}/FeatureOfInterest",
    }
    assert out == [("t/v1.1/Datastreams(5)/Observations", observation),
                   ("t/v1.1/Observations", observation),
                   ("t/v1.1/FeaturesOfInterest(7)/Observations", observation)]


def test_each_kind_of_result_keeps_its_type() -> None:
    rows = [(1, 5, None, AT, 1.5, None, None, None), (2, 5, None, AT, None, 3, None, None),
            (3, 5, None, AT, None, None, "open", None), (4, 5, None, AT, None, None, None, False)]
    out = decoded(announcer("datastream").messages(rows))
    results = [body["result"] for _, body in out]
    assert [(type(r), r) for r in results] == [(float, 1.5), (int, 3), (str, "open"),
                                               (bool, False)]


def test_the_datastream_setting_announces_on_the_datastream_topic_only() -> None:
    rows = [(41, 5, 7, AT, 1.0, None, None, None), (42, 6, None, AT, 2.0, None, None, None)]
    assert [topic for topic, _ in announcer("datastream").messages(rows)] == [
        "t/v1.1/Datastreams(5)/Observations", "t/v1.1/Datastreams(6)/Observations"]


def test_a_connect_packet_with_a_login_carries_username_and_password() -> None:
    packet = connect_packet("n", 30, ("stadspuls-ingest", "s3cret"))
    assert packet == (
        b"\x10\x28" + b"\x00\x04MQTT" + b"\x05" + b"\xc2" + b"\x00\x1e" + b"\x00"
        + b"\x00\x01n" + b"\x00\x10stadspuls-ingest" + b"\x00\x06s3cret")


def test_a_restricted_datastreams_observation_goes_to_its_datastream_topic_only() -> None:
    observation = {"@iot.id": 9, "result": 1.5}
    change = Change("Observations", 9, observation,
                    parents=(("Datastreams", 5), ("FeaturesOfInterest", 7)), confined_to=5)
    assert decoded(messages(change, "t/")) == [("t/v1.1/Datastreams(5)/Observations",
                                                observation)]


def test_a_restricted_datastream_is_announced_on_its_own_topics_not_its_collections() -> None:
    datastream = {"@iot.id": 5, "name": "no2", "description": "d"}
    created = Change("Datastreams", 5, datastream, parents=(("Things", 1),), confined_to=5)
    updated = Change("Datastreams", 5, datastream, parents=(("Things", 2),),
                     changed=("name",), confined_to=5)
    assert messages(created) == []
    assert [topic for topic, _ in messages(updated)] == [
        "v1.1/Datastreams(5)", "v1.1/Datastreams(5)/name"]


@pytest.mark.parametrize(("topic", "inside"), [
    ("v1.1/Datastreams(5)", True), ("v1.1/Datastreams(5)/Observations", True),
    ("v1.1/Datastreams(55)/Observations", False), ("v1.1/Datastreams", False),
    ("v1.1/Observations", False), ("v1.1/Things(5)/Datastreams", False),
])
def test_the_confinement_rule_keeps_the_topics_under_one_datastream(topic: str,
                                                                     inside: bool) -> None:
    assert confined(topic, 5) is inside


def test_ingest_announces_a_restricted_datastreams_readings_on_its_topic_only() -> None:
    restricting = announcer("all")
    restricting.restricted = lambda: frozenset({5})
    rows = [(41, 5, 7, AT, 1.0, None, None, None), (42, 6, 7, AT, 2.0, None, None, None)]
    assert [topic for topic, _ in restricting.messages(rows)] == [
        "t/v1.1/Datastreams(5)/Observations",
        "t/v1.1/Datastreams(6)/Observations", "t/v1.1/Observations",
        "t/v1.1/FeaturesOfInterest(7)/Observations"]
