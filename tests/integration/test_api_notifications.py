"""The API's notifier publishes the changes the write path hands it on the standard's
topics, through the real broker: an updated Observation in every collection that holds
it, and `$select` topics while, and only while, someone is subscribed to them (the broker
says so in its log); without a broker the API still starts and serves."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiomqtt
import httpx

from api.app import create_app
from api.settings import ApiSettings
from core.mqtt_publish import USER_PROPERTY
from core.notify import Change, MqttNotifier, NullNotifier
from deploy.ports import free_port
from tests.access import bearer, make_key
from tests.integration.conftest import eventually

BASE = "http://city/v1.1"
OBSERVATION = {
    "@iot.id": 41, "@iot.selfLink": f"{BASE}/Observations(41)",
    "phenomenonTime": "2026-09-21T10:00:00Z", "resultTime": None, "validTime": None,
    "result": 23.4,
    "resultQuality": None, "parameters": None,
    "Datastream@iot.navigationLink": f"{BASE}/Observations(41)/Datastream",
    "FeatureOfInterest@iot.navigationLink": f"{BASE}/Observations(41)/FeatureOfInterest",
}
THING = {
    "@iot.id": 3, "@iot.selfLink": f"{BASE}/Things(3)", "name": "Hornsgatan 108",
    "description": "Air quality at street level", "properties": {"height_m": 3},
    "Locations@iot.navigationLink": f"{BASE}/Things(3)/Locations",
    "HistoricalLocations@iot.navigationLink": f"{BASE}/Things(3)/HistoricalLocations",
    "Datastreams@iot.navigationLink": f"{BASE}/Things(3)/Datastreams",
}


@asynccontextmanager
async def running_api(settings: ApiSettings) -> AsyncIterator[Any]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


def api_settings(db_url: str, mqtt_port: int, prefix: str) -> ApiSettings:
    return ApiSettings(database_url=db_url, mqtt_port=mqtt_port, topic_prefix=prefix,
                       mqtt_client_id=f"api-{uuid.uuid4().hex[:8]}")


async def receive(client: aiomqtt.Client, count: int) -> list[tuple[str, Any]]:
    """(topic, JSON payload) of the next `count` messages, each checked for the
    notification user property."""
    out: list[tuple[str, Any]] = []
    async with asyncio.timeout(20):
        async for message in client.messages:
            assert message.properties is not None
            assert message.properties.UserProperty == [USER_PROPERTY]
            assert isinstance(message.payload, bytes)
            out.append((message.topic.value, json.loads(message.payload)))
            if len(out) == count:
                return out
    raise AssertionError("the subscription ended")


async def test_the_api_notifier_publishes_creations_and_updates_on_the_standard_topics(
    db_url: str, mqtt_port: int, topic_prefix: str
) -> None:
    prefix = f"{topic_prefix}/"
    async with running_api(api_settings(db_url, mqtt_port, prefix)) as app, \
            aiomqtt.Client("127.0.0.1", mqtt_port,
                           protocol=aiomqtt.ProtocolVersion.V5) as subscriber:
        notifier = app.state.notifier
        assert isinstance(notifier, MqttNotifier)
        await notifier.publisher.connected.wait()
        await subscriber.subscribe(f"{prefix}v1.1/#")

        await notifier.notify([
            Change("Observations", 41, OBSERVATION,
                   parents=(("Datastreams", 5), ("FeaturesOfInterest", 7))),
            Change("Things", 3, THING, changed=("name", "properties")),
        ])
        received = await receive(subscriber, 7)

    assert received == [
        (f"{prefix}v1.1/Observations", OBSERVATION),
        (f"{prefix}v1.1/Datastreams(5)/Observations", OBSERVATION),
        (f"{prefix}v1.1/FeaturesOfInterest(7)/Observations", OBSERVATION),
        (f"{prefix}v1.1/Things(3)", THING),
        (f"{prefix}v1.1/Things(3)/name", {"name": "Hornsgatan 108"}),
        (f"{prefix}v1.1/Things(3)/properties", {"properties": {"height_m": 3}}),
        (f"{prefix}v1.1/Things", THING),
    ]


async def test_the_api_starts_without_its_broker_and_notifying_costs_nothing_but_messages(
    db_url: str, topic_prefix: str
) -> None:
    settings = api_settings(db_url, free_port(), f"{topic_prefix}/")  # no broker there
    async with running_api(settings) as app:
        notifier = app.state.notifier
        await notifier.notify([Change("Things", 3, THING, changed=("name",))])
        assert (notifier.publisher.published, notifier.publisher.dropped) == (0, 3)


async def test_the_api_without_the_mqtt_extension_notifies_nobody(db_url: str) -> None:
    settings = ApiSettings(database_url=db_url, mqtt_enabled=False)
    async with running_api(settings) as app:
        assert isinstance(app.state.notifier, NullNotifier)


@asynccontextmanager
async def api_client(app: Any, db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of `app` with an admin's key."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://city",
                                 headers=bearer(await make_key(db_url))) as client:
        yield client


async def created(http: httpx.AsyncClient, url: str, body: Any) -> Any:
    response = await http.post(url, json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def station(http: httpx.AsyncClient) -> tuple[int, int, int]:
    """A Thing with a Datastream and one Observation: their ids, the Observation's
    FeatureOfInterest's last."""
    thing = await created(http, "/v1.1/Things", {
        "name": "Mast", "description": "d",
        "Locations": [{"name": "Slussen", "description": "d", "encodingType":
                       "application/geo+json", "location": {
                           "type": "Point", "coordinates": [18.07, 59.32]}}],
        "Datastreams": [{
            "name": "no2", "description": "d", "observationType": "http://www.opengis.net/"
            "def/observationType/OGC-OM/2.0/OM_Measurement", "unitOfMeasurement": {
                "name": "microgram per cubic metre", "symbol": "ug/m3", "definition": "d"},
            "Sensor": {"name": "s", "description": "d", "encodingType": "text/html",
                       "metadata": "m"},
            "ObservedProperty": {"name": "NO2", "definition": "d", "description": "d"},
            "Observations": [{"phenomenonTime": "2026-09-21T10:00:00Z", "result": 1.5}]}]})
    stream = (await http.get(f"/v1.1/Things({thing['@iot.id']})/Datastreams")).json()
    ds = stream["value"][0]["@iot.id"]
    reading = (await http.get(f"/v1.1/Datastreams({ds})/Observations")).json()["value"][0]
    feature = (await http.get(f"/v1.1/Observations({reading['@iot.id']})/FeatureOfInterest")
               ).json()["@iot.id"]
    return ds, reading["@iot.id"], feature


async def subscribed(client: aiomqtt.Client, *topics: str) -> None:
    for topic in topics:
        await client.subscribe(topic)


async def test_a_patched_observation_is_published_in_each_collection_that_holds_it(
    db_url: str, mqtt_port: int, topic_prefix: str
) -> None:
    prefix = f"{topic_prefix}/"
    async with running_api(api_settings(db_url, mqtt_port, prefix)) as app, \
            api_client(app, db_url) as http, \
            aiomqtt.Client("127.0.0.1", mqtt_port,
                           protocol=aiomqtt.ProtocolVersion.V5) as subscriber:
        ds, observation, feature = await station(http)
        await subscribed(subscriber, f"{prefix}v1.1/Datastreams({ds})/Observations",
                         f"{prefix}v1.1/Observations",
                         f"{prefix}v1.1/FeaturesOfInterest({feature})/Observations",
                         f"{prefix}v1.1/Observations({observation})")
        patched = await http.patch(f"/v1.1/Observations({observation})", json={"result": 2.5})
        assert patched.status_code == 200, patched.text
        received = await receive(subscriber, 4)
        now = (await http.get(f"/v1.1/Observations({observation})")).json()
    assert now["result"] == 2.5
    assert sorted(received, key=lambda m: m[0]) == sorted([
        (f"{prefix}v1.1/Observations({observation})", now),
        (f"{prefix}v1.1/Observations", now),
        (f"{prefix}v1.1/Datastreams({ds})/Observations", now),
        (f"{prefix}v1.1/FeaturesOfInterest({feature})/Observations", now),
    ], key=lambda m: m[0])


async def test_select_topics_are_published_while_someone_is_subscribed_to_them(
    db_url: str, mqtt_port: int, topic_prefix: str
) -> None:
    prefix = f"{topic_prefix}/"
    things = f"{prefix}v1.1/Things?$select=name,description"
    async with running_api(api_settings(db_url, mqtt_port, prefix)) as app, \
            api_client(app, db_url) as http, \
            aiomqtt.Client("127.0.0.1", mqtt_port) as spy:
        notifier = app.state.notifier
        async with asyncio.timeout(20):
            await notifier.watcher.ready.wait()
        await subscribed(spy, f"{prefix}v1.1/#", f"{prefix}mark/#")  # all the API publishes
        ds, _, _ = await station(http)
        readings = f"{prefix}v1.1/Datastreams({ds})/Observations?$select=result,phenomenonTime"
        before = await topics_seen(spy, mqtt_port, prefix, "before")

        async with aiomqtt.Client("127.0.0.1", mqtt_port) as subscriber:
            await subscribed(subscriber, things, readings)
            await eventually(lambda: holds(notifier.subscriptions.topics(),
                                           {things, readings}))
            await created(http, "/v1.1/Things", {"name": "Kiosk", "description": "Roof"})
            await created(http, f"/v1.1/Datastreams({ds})/Observations",
                          {"phenomenonTime": "2026-09-21T11:00:00Z", "result": 7})
            await http.patch(f"/v1.1/Things({(await thing_named(http, 'Kiosk'))})",
                             json={"properties": {"roof": True}})  # nothing selected changed
            got = await receive_plain(subscriber, 2)
            await subscriber.unsubscribe(things)
            await eventually(lambda: holds(notifier.subscriptions.topics(), {readings},
                                           exact=True))
        await eventually(lambda: holds(notifier.subscriptions.topics(), set(), exact=True))
        during = await topics_seen(spy, mqtt_port, prefix, "during")
        await created(http, "/v1.1/Things", {"name": "Kiosk 2", "description": "Roof"})
        await created(http, f"/v1.1/Datastreams({ds})/Observations",
                      {"phenomenonTime": "2026-09-21T12:00:00Z", "result": 8})
        after = await topics_seen(spy, mqtt_port, prefix, "after")

    assert got == [(things, {"name": "Kiosk", "description": "Roof"}),
                   (readings, {"phenomenonTime": "2026-09-21T11:00:00Z", "result": 7})]
    assert {things, readings} <= during
    assert not [t for t in before | after if "$select" in t]
    assert f"{prefix}v1.1/Things" in after  # the plain topics went on all along


async def holds(topics: set[str], wanted: set[str], exact: bool = False) -> bool:
    return topics == wanted if exact else wanted <= topics


async def thing_named(http: httpx.AsyncClient, name: str) -> int:
    found = (await http.get(f"/v1.1/Things?$filter=name eq '{name}'")).json()["value"]
    return int(found[0]["@iot.id"])


async def receive_plain(client: aiomqtt.Client, count: int) -> list[tuple[str, Any]]:
    """(topic, JSON payload) of the next `count` messages, within 20 s."""
    out: list[tuple[str, Any]] = []
    async with asyncio.timeout(20):
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            out.append((message.topic.value, json.loads(message.payload)))
            if len(out) == count:
                return out
    raise AssertionError("the subscription ended")


async def topics_seen(spy: aiomqtt.Client, port: int, prefix: str, marker: str) -> set[str]:
    """The topics `spy` (subscribed to `{prefix}mark/#` too) received since the last call,
    up to a marker published now, a moment after the API's last notification."""
    await asyncio.sleep(0.3)  # the API's messages go out first
    async with aiomqtt.Client("127.0.0.1", port) as marking:
        await marking.publish(f"{prefix}mark/{marker}", b"{}", qos=1)
    seen: set[str] = set()
    async with asyncio.timeout(20):
        async for message in spy.messages:
            if message.topic.value == f"{prefix}mark/{marker}":
                return seen
            seen.add(message.topic.value)
    raise AssertionError("the marker never came")
