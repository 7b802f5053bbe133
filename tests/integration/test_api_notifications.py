"""The API's notifier publishes the changes the write path hands it on the standard's
topics, through the real broker; without a broker the API still starts and serves."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiomqtt

from api.app import create_app
from api.settings import ApiSettings
from core.mqtt_publish import USER_PROPERTY
from core.notify import Change, MqttNotifier, NullNotifier
from deploy.ports import free_port

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
        received = await receive(subscriber, 6)

    assert received == [
        (f"{prefix}v1.1/Observations", OBSERVATION),
        (f"{prefix}v1.1/Datastreams(5)/Observations", OBSERVATION),
        (f"{prefix}v1.1/FeaturesOfInterest(7)/Observations", OBSERVATION),
        (f"{prefix}v1.1/Things(3)", THING),
        (f"{prefix}v1.1/Things(3)/name", {"name": "Hornsgatan 108"}),
        (f"{prefix}v1.1/Things(3)/properties", {"properties": {"height_m": 3}}),
    ]


async def test_the_api_starts_without_its_broker_and_notifying_costs_nothing_but_messages(
    db_url: str, topic_prefix: str
) -> None:
    settings = api_settings(db_url, free_port(), f"{topic_prefix}/")  # no broker there
    async with running_api(settings) as app:
        notifier = app.state.notifier
        await notifier.notify([Change("Things", 3, THING, changed=("name",))])
        assert (notifier.publisher.published, notifier.publisher.dropped) == (0, 2)


async def test_the_api_without_the_mqtt_extension_notifies_nobody(db_url: str) -> None:
    settings = ApiSettings(database_url=db_url, mqtt_enabled=False)
    async with running_api(settings) as app:
        assert isinstance(app.state.notifier, NullNotifier)
