"""The `$select` notification topics: which ones clients are subscribed to, as Mosquitto's
log says (lines as Mosquitto 2.0.11 publishes them on `$SYS/broker/log/...`), and what
is published on them."""

from __future__ import annotations

import json

import pytest

from core.notify import Change, messages, selected
from core.subscriptions import Subscriptions, selection

SUB, UNSUB, NOTICE = ("$SYS/broker/log/M/subscribe", "$SYS/broker/log/M/unsubscribe",
                      "$SYS/broker/log/N")
THINGS_SELECT = "v1.1/Things?$select=name,description"
THING = {"@iot.id": 1, "@iot.selfLink": "http://city/v1.1/Things(1)", "name": "Station",
         "description": "On the roof", "properties": {"height_m": 3},
         "Datastreams@iot.navigationLink": "http://city/v1.1/Things(1)/Datastreams"}


def connects(log: Subscriptions, client: str, clean: bool) -> None:
    log.heard(NOTICE, f"2026-12-05T19:46:22: New client connected from 127.0.0.1:47636 as "
                      f"{client} (p2, c{int(clean)}, k60, u'reader').".encode())


def test_a_select_topic_names_its_plain_topic_and_properties() -> None:
    assert selection(THINGS_SELECT) == ("v1.1/Things", ("name", "description"))
    assert selection("p/v1.1/Datastreams(1)/Observations?$select=result, phenomenonTime") == (
        "p/v1.1/Datastreams(1)/Observations", ("result", "phenomenonTime"))
    for other in ("v1.1/Things", "v1.1/+?$select=name", "v1.1/#", "v1.1/Things?$select=",
                  "v1.1/Things?$select=a;DROP", "?$select=name"):
        assert selection(other) is None, other


def test_a_subscription_in_the_log_is_known_until_its_unsubscription() -> None:
    log = Subscriptions()
    connects(log, "sel1", clean=True)
    log.heard(SUB, f"2026-12-05T19:46:20: sel1 0 {THINGS_SELECT}".encode())
    log.heard(SUB, b"2026-12-05T19:46:20: sel1 0 v1.1/Things")  # a plain topic: no matter
    assert log.selected("v1.1/Things") == {THINGS_SELECT: ("name", "description")}
    log.heard(UNSUB, f"2026-12-05T19:46:21: sel1 {THINGS_SELECT}".encode())
    assert log.selected("v1.1/Things") == {}


def test_one_client_is_served_so_many_topics_and_all_clients_so_many_in_all() -> None:
    log = Subscriptions(max_per_client=2, max_topics=3)
    for n in range(4):
        log.subscribed("greedy", f"v1.1/Things?$select=name{n}")
    assert log.topics() == {"v1.1/Things?$select=name0", "v1.1/Things?$select=name1"}
    log.subscribed("other", "v1.1/Things?$select=name0")  # one already served: no new topic
    log.subscribed("other", "v1.1/Sensors?$select=name")
    log.subscribed("third", "v1.1/Locations?$select=name")  # past the total
    assert log.topics() == {"v1.1/Things?$select=name0", "v1.1/Things?$select=name1",
                            "v1.1/Sensors?$select=name"}
    log.unsubscribed("greedy", "v1.1/Things?$select=name1")
    log.subscribed("third", "v1.1/Locations?$select=name")  # room again
    assert "v1.1/Locations?$select=name" in log.topics()


def test_a_clean_sessions_subscriptions_end_when_its_client_goes() -> None:
    log = Subscriptions()
    connects(log, "sel1", clean=True)
    log.heard(SUB, f"2026-12-05T19:46:20: sel1 0 {THINGS_SELECT}".encode())
    log.heard(NOTICE, b"2026-12-05T19:46:21: Client sel1 disconnected.")
    assert log.topics() == set()


@pytest.mark.parametrize("goodbye", [
    "Client sel2 disconnected.", "Client sel2 closed its connection.",
    "Client sel2 has exceeded timeout, disconnecting.",
    "Socket error on client sel2, disconnecting.",
])
def test_a_kept_sessions_subscriptions_stay_while_it_is_away_until_it_starts_clean(
    goodbye: str,
) -> None:
    log = Subscriptions()
    connects(log, "sel2", clean=False)
    log.heard(SUB, f"2026-12-05T19:46:22: sel2 1 {THINGS_SELECT}".encode())
    log.heard(NOTICE, f"2026-12-05T19:46:23: {goodbye}".encode())
    assert log.topics() == {THINGS_SELECT}  # the broker gives them back on return
    connects(log, "sel2", clean=False)
    assert log.topics() == {THINGS_SELECT}
    connects(log, "sel2", clean=True)
    assert log.topics() == set()


def test_two_subscribers_of_one_topic_keep_it_until_both_have_gone() -> None:
    log = Subscriptions()
    for client in ("a", "b"):
        connects(log, client, clean=True)
        log.subscribed(client, THINGS_SELECT)
    log.gone("a")
    assert log.topics() == {THINGS_SELECT}
    log.gone("b")
    assert log.topics() == set()


def test_the_clients_away_longest_are_forgotten_first_past_the_bound() -> None:
    log = Subscriptions(max_away=1)
    for client, props in (("old", "name"), ("new", "description")):
        connects(log, client, clean=False)
        log.subscribed(client, f"v1.1/Things?$select={props}")
        log.gone(client)
    assert log.topics() == {"v1.1/Things?$select=description"}


def test_after_the_log_was_lost_only_kept_sessions_are_remembered() -> None:
    log = Subscriptions()
    connects(log, "clean", clean=True)
    log.subscribed("clean", "v1.1/Things?$select=name")
    connects(log, "kept", clean=False)
    log.subscribed("kept", "v1.1/Things?$select=description")
    log.reconnected()
    assert log.topics() == {"v1.1/Things?$select=description"}


def test_a_creation_goes_to_the_subscribed_selections_of_its_collections() -> None:
    log = Subscriptions()
    log.subscribed("c", "t/" + THINGS_SELECT)
    log.subscribed("c", "t/v1.1/Locations(4)/Things?$select=id,Datastreams")
    log.subscribed("c", "t/v1.1/Locations(5)/Things?$select=name")  # another Location's
    change = Change("Things", 1, THING, parents=(("Locations", 4),))
    out = [(topic, json.loads(payload)) for topic, payload in messages(change, "t/", log)]
    assert out[2:] == [
        ("t/" + THINGS_SELECT, {"name": "Station", "description": "On the roof"}),
        ("t/v1.1/Locations(4)/Things?$select=id,Datastreams", {
            "@iot.id": 1, "@iot.selfLink": "http://city/v1.1/Things(1)",
            "Datastreams@iot.navigationLink": "http://city/v1.1/Things(1)/Datastreams"}),
    ]


def test_an_update_goes_to_a_selection_only_when_it_changed_a_selected_property() -> None:
    log = Subscriptions()
    log.subscribed("c", THINGS_SELECT)
    renamed = Change("Things", 1, THING, changed=("name",))
    moved = Change("Things", 1, THING, changed=("properties",))
    assert THINGS_SELECT in [topic for topic, _ in messages(renamed, "", log)]
    assert THINGS_SELECT not in [topic for topic, _ in messages(moved, "", log)]


def test_a_restricted_observation_goes_only_to_its_datastreams_selections() -> None:
    log = Subscriptions()
    own = "v1.1/Datastreams(5)/Observations?$select=result"
    everyone = "v1.1/Observations?$select=result"
    log.subscribed("c", own)
    log.subscribed("c", everyone)
    change = Change("Observations", 9, {"@iot.id": 9, "result": 1.5},
                    parents=(("Datastreams", 5),), confined_to=5)
    assert [(t, json.loads(p)) for t, p in messages(change, "", log)] == [
        ("v1.1/Datastreams(5)/Observations", {"@iot.id": 9, "result": 1.5}),
        (own, {"result": 1.5}),
    ]


def test_a_selection_of_nothing_the_entity_has_is_not_published() -> None:
    assert selected(THING, ("result",)) == {}
    log = Subscriptions()
    log.subscribed("c", "v1.1/Things?$select=result")
    assert [t for t, _ in messages(Change("Things", 1, THING), "", log)] == ["v1.1/Things"]
