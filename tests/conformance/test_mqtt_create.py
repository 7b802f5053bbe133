"""Conformance class Create Observations via MQTT: an Observation a client publishes on
`v1.1/Datastreams({id})/Observations` or `v1.1/Observations` is created; a bad one is
kept as a reject with its reason."""

from __future__ import annotations

import asyncio
import json

import aiomqtt
import asyncpg
import httpx

from api.settings import ApiSettings
from tests.conformance.conftest import get
from tests.conformance.dataset import STATIONS, Dataset
from tests.conformance.mqtt_util import notification, subscribed

CONFORMANCE_CLASS = ("http://www.opengis.net/spec/iot_sensing/1.1/req/"
                     "create-observations-via-mqtt/observations-creation")


async def created(api: httpx.AsyncClient, ds: int, time: str, within: float = 15) -> list[object]:
    """The results stored for Datastream `ds` at `time`, once there are any."""
    async with asyncio.timeout(within):
        while True:
            body = await get(api, f"/v1.1/Datastreams({ds})/Observations"
                                  f"?$filter=phenomenonTime eq {time}")
            if body["value"]:
                return [o["result"] for o in body["value"]]
            await asyncio.sleep(0.1)


async def test_an_observation_published_on_its_datastream_topic_is_created(
    api: httpx.AsyncClient, dataset: Dataset, api_settings: ApiSettings, mqtt: aiomqtt.Client
) -> None:
    ds = dataset.datastreams[STATIONS[0].streams[0].name]
    topic = f"{api_settings.topic_prefix}v1.1/Datastreams({ds})/Observations"
    await subscribed(mqtt, topic)
    await mqtt.publish(topic, json.dumps({"phenomenonTime": "2026-10-04T06:00:00Z",
                                          "result": 42.5}), qos=1)
    assert await created(api, ds, "2026-10-04T06:00:00Z") == [42.5]
    # And, once created, it is announced like any other.
    announced = await notification(mqtt)
    assert announced["result"] == 42.5 and announced["phenomenonTime"] == "2026-10-04T06:00:00Z"


async def test_an_observation_published_on_the_observations_topic_names_its_datastream(
    api: httpx.AsyncClient, dataset: Dataset, api_settings: ApiSettings, mqtt: aiomqtt.Client
) -> None:
    ds = dataset.datastreams[STATIONS[2].streams[0].name]
    await mqtt.publish(f"{api_settings.topic_prefix}v1.1/Observations", json.dumps({
        "phenomenonTime": "2026-10-04T07:00:00Z", "result": 9223372036854775807,
        "Datastream": {"@iot.id": ds}}), qos=1)
    assert await created(api, ds, "2026-10-04T07:00:00Z") == [9223372036854775807]


async def test_a_bad_observation_is_kept_as_a_reject_with_its_reason(
    api: httpx.AsyncClient, dataset: Dataset, api_settings: ApiSettings, mqtt: aiomqtt.Client
) -> None:
    topic = f"{api_settings.topic_prefix}v1.1/Observations"
    await mqtt.publish(topic, b'{"result": 1, "Datastream": {"@iot.id": 987654321}}', qos=1)
    await mqtt.publish(topic, b"not json", qos=1)
    conn = await asyncpg.connect(api_settings.database_url)
    try:
        async with asyncio.timeout(15):
            while True:
                rows = await conn.fetch("SELECT payload, reason FROM rejected_messages "
                                        "WHERE topic = $1 ORDER BY id", topic)
                if len(rows) == 2:
                    break
                await asyncio.sleep(0.1)
    finally:
        await conn.close()
    assert [r["payload"] for r in rows] == [
        b'{"result": 1, "Datastream": {"@iot.id": 987654321}}', b"not json"]
    assert all(r["reason"] for r in rows)
