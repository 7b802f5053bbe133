"""Conformance class Receive updates via MQTT: committed creations and updates are
published on the standard's topics, the payload being the entity as a GET answers it (an
update on the entity set and collection topics too), and on `$select` topics with only the
selected properties."""

from __future__ import annotations

import asyncio
import json

import aiomqtt
import httpx

from api.settings import ApiSettings
from tests.conformance.conftest import get
from tests.conformance.dataset import STATIONS, Dataset
from tests.conformance.mqtt_util import notification, subscribed

CONFORMANCE_CLASS = (
    "http://www.opengis.net/spec/iot_sensing/1.1/req/receive-updates-via-mqtt/receive-updates")


async def test_a_new_observation_is_published_on_its_datastream_topic(
    api: httpx.AsyncClient, dataset: Dataset, api_settings: ApiSettings, mqtt: aiomqtt.Client
) -> None:
    ds = dataset.datastreams[STATIONS[0].streams[1].name]
    await subscribed(mqtt, f"{api_settings.topic_prefix}v1.1/Datastreams({ds})/Observations")
    response = await api.post(f"/v1.1/Datastreams({ds})/Observations",
                              json={"phenomenonTime": "2026-10-03T09:00:00Z", "result": 17.25})
    assert response.status_code == 201, response.text
    body = await notification(mqtt)
    assert body == await get(api, f"/v1.1/Observations({response.json()['@iot.id']})")


async def test_every_new_observation_is_published_on_the_observations_topic(
    api: httpx.AsyncClient, dataset: Dataset, api_settings: ApiSettings, mqtt: aiomqtt.Client
) -> None:
    ds = dataset.datastreams[STATIONS[1].streams[0].name]
    await subscribed(mqtt, f"{api_settings.topic_prefix}v1.1/Observations")
    response = await api.post("/v1.1/Observations", json={
        "phenomenonTime": "2026-10-03T09:00:00Z", "result": 61.0,
        "Datastream": {"@iot.id": ds}})
    assert response.status_code == 201, response.text
    body = await notification(mqtt)
    assert body["@iot.id"] == response.json()["@iot.id"] and body["result"] == 61.0


async def test_a_new_thing_is_published_on_the_things_topic(
    api: httpx.AsyncClient, dataset: Dataset, api_settings: ApiSettings, mqtt: aiomqtt.Client
) -> None:
    await subscribed(mqtt, f"{api_settings.topic_prefix}v1.1/Things")
    response = await api.post("/v1.1/Things", json={"name": "Announced",
                                                    "description": "New on the map"})
    assert response.status_code == 201, response.text
    assert await notification(mqtt) == response.json()


async def test_an_update_is_published_on_the_entity_and_property_topics(
    api: httpx.AsyncClient, dataset: Dataset, api_settings: ApiSettings, mqtt: aiomqtt.Client
) -> None:
    thing = dataset.things[STATIONS[2].name]
    prefix = api_settings.topic_prefix
    await subscribed(mqtt, f"{prefix}v1.1/Things({thing})/name")
    response = await api.patch(f"/v1.1/Things({thing})", json={"name": "Essingeleden north"})
    assert response.status_code == 200, response.text
    assert await notification(mqtt) == {"name": "Essingeleden north"}
    await mqtt.unsubscribe(f"{prefix}v1.1/Things({thing})/name")
    await subscribed(mqtt, f"{prefix}v1.1/Things({thing})")
    await api.patch(f"/v1.1/Things({thing})", json={"description": "Renamed twice"})
    assert await notification(mqtt) == await get(api, f"/v1.1/Things({thing})")
    # Put the name back for the other tests of the module.
    await api.patch(f"/v1.1/Things({thing})", json={"name": STATIONS[2].name})


async def test_an_updated_observation_is_published_on_its_datastreams_and_set_topics(
    api: httpx.AsyncClient, dataset: Dataset, api_settings: ApiSettings, mqtt: aiomqtt.Client
) -> None:
    ds = dataset.datastreams[STATIONS[0].streams[0].name]
    made = await api.post(f"/v1.1/Datastreams({ds})/Observations",
                          json={"phenomenonTime": "2026-10-03T10:00:00Z", "result": 1.0})
    assert made.status_code == 201, made.text
    prefix = api_settings.topic_prefix
    await subscribed(mqtt, f"{prefix}v1.1/Datastreams({ds})/Observations")
    await subscribed(mqtt, f"{prefix}v1.1/Observations")
    url = f"/v1.1/Observations({made.json()['@iot.id']})"
    response = await api.patch(url, json={"result": 2.0})
    assert response.status_code == 200, response.text
    updated = []
    while len(updated) < 2:  # the creation's own notifications may come first
        body = await notification(mqtt)
        if body.get("result") == 2.0:
            updated.append(body)
    assert updated == [await get(api, url)] * 2


async def test_a_select_topic_gets_each_new_entity_with_only_the_selected_properties(
    api: httpx.AsyncClient, dataset: Dataset, api_settings: ApiSettings, mqtt: aiomqtt.Client
) -> None:
    ds = dataset.datastreams[STATIONS[0].streams[0].name]
    topic = (f"{api_settings.topic_prefix}v1.1/Datastreams({ds})/Observations"
             "?$select=result,phenomenonTime")
    await mqtt.subscribe(topic, qos=1)
    # The API learns of the subscription from the broker's log a moment later: until then
    # nothing goes to the topic, so post until something does.
    for minute in range(20):
        at = f"2026-10-03T11:{minute:02d}:00Z"
        response = await api.post(f"/v1.1/Datastreams({ds})/Observations",
                                  json={"phenomenonTime": at, "result": minute})
        assert response.status_code == 201, response.text
        try:
            async with asyncio.timeout(1):
                async for message in mqtt.messages:
                    assert str(message.topic) == topic
                    assert isinstance(message.payload, bytes)
                    body = json.loads(message.payload)
                    assert body == {"phenomenonTime": body["phenomenonTime"],
                                    "result": int(body["phenomenonTime"][14:16])}
                    return
        except TimeoutError:
            continue
    raise AssertionError("nothing came on the $select topic")
