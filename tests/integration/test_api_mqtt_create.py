"""Observations created over MQTT through the real broker, by the listener in the API
process: both creation topics, rejects, what is not a request, the persistent session."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiomqtt
import httpx
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from api.app import create_app
from api.operations import Contended, execute
from api.settings import ApiSettings
from core.mqtt_publish import PUBLISHER_PROPERTY, publisher_stamp
from core.mqtt_publish import USER_PROPERTY as NOTIFICATION
from deploy.ports import free_port
from tests.access import bearer, make_key
from tests.integration.conftest import eventually
from tests.integration.readings import datastream as fleet_datastream
from tests.integration.writes import T0, Recorder


@asynccontextmanager
async def listening_api(settings: ApiSettings) -> AsyncIterator[Recorder]:
    """The API with its MQTT creation listener subscribed; yields the notifier it uses."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        app.state.notifier = recorder = Recorder()
        async with asyncio.timeout(20):
            await app.state.observation_listener.ready.wait()
        yield recorder


@pytest.fixture
def settings(db_url: str, mqtt_port: int, topic_prefix: str) -> ApiSettings:
    return ApiSettings(database_url=db_url, mqtt_port=mqtt_port,
                       topic_prefix=f"{topic_prefix}/",
                       mqtt_client_id=f"api-{uuid.uuid4().hex[:8]}")


@pytest.fixture
async def client(mqtt_port: int) -> AsyncIterator[aiomqtt.Client]:
    """An MQTT 5 client of the test."""
    async with aiomqtt.Client("127.0.0.1", mqtt_port,
                              protocol=aiomqtt.ProtocolVersion.V5) as mqtt:
        yield mqtt


async def publish(client: aiomqtt.Client, topic: str, payload: Any,
                  properties: Properties | None = None) -> None:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    await client.publish(topic, raw, qos=1, properties=properties)


async def results(db: Any, datastream: int, count: int) -> list[Any]:
    """The results of the Datastream's Observations, once it has `count` of them."""
    async def arrived() -> bool:
        return bool(await db.fetchval(
            "SELECT count(*) FROM observations WHERE datastream_id = $1", datastream) >= count)

    await eventually(arrived)
    rows = await db.fetch("SELECT COALESCE(to_jsonb(result_number), to_jsonb(result_integer), "
                          "to_jsonb(result_string)) AS result FROM observations "
                          "WHERE datastream_id = $1 ORDER BY phenomenon_time", datastream)
    return [r["result"] for r in rows]


async def test_observations_published_on_either_topic_are_created_as_a_post_would(
    fleet_db: Any, settings: ApiSettings, client: aiomqtt.Client, topic_prefix: str
) -> None:
    stream = await fleet_datastream(fleet_db, "aq-hornsgatan-108", "no2")
    async with listening_api(settings) as notified:
        await publish(client, f"{topic_prefix}/v1.1/Datastreams({stream})/Observations",
                      {"phenomenonTime": T0, "result": 23.4})
        await publish(client, f"{topic_prefix}/v1.1/Observations",
                      {"phenomenonTime": "2026-09-21T10:01:00Z", "result": "calibrating",
                       "Datastream": {"@iot.id": stream}})
        assert await results(fleet_db, stream, 2) == ['23.4', '"calibrating"']
        feature = await fleet_db.fetchval(
            "SELECT id FROM features_of_interest WHERE key = 'device:aq-hornsgatan-108'")

        async def both_notified() -> bool:
            return len(notified.changes) == 2

        await eventually(both_notified)
        assert [(c.entity_set, c.parents, c.body["result"]) for c in notified.changes] == [
            ("Observations", (("Datastreams", stream), ("FeaturesOfInterest", feature)), 23.4),
            ("Observations", (("Datastreams", stream), ("FeaturesOfInterest", feature)),
             "calibrating"),
        ]


async def test_a_bad_payload_is_stored_as_a_reject_and_the_listener_goes_on(
    fleet_db: Any, settings: ApiSettings, client: aiomqtt.Client, topic_prefix: str
) -> None:
    stream = await fleet_datastream(fleet_db, "aq-hornsgatan-108", "no2")
    on_stream = f"{topic_prefix}/v1.1/Datastreams({stream})/Observations"
    async with listening_api(settings):
        await publish(client, on_stream, b"{not json")
        await publish(client, f"{topic_prefix}/v1.1/Observations", {"result": 1})
        await publish(client, f"{topic_prefix}/v1.1/Datastreams(999999)/Observations",
                      {"phenomenonTime": T0, "result": 1})
        await publish(client, on_stream, {"phenomenonTime": T0, "result": 2.5})
        assert await results(fleet_db, stream, 1) == ["2.5"]
    rejects = await fleet_db.fetch(
        "SELECT topic, payload, code, reason FROM rejected_messages ORDER BY id")
    assert [tuple(r) for r in rejects] == [
        (on_stream, b"{not json", "invalid_json", "the body is not valid JSON: Expecting "
         "property name enclosed in double quotes: line 1 column 2 (char 1)"),
        (f"{topic_prefix}/v1.1/Observations", b'{"result": 1}', "bad_request",
         "Observation: the mandatory link 'Datastream' is missing; give "
         '{"@iot.id": ...} of an existing one or create one inline'),
        (f"{topic_prefix}/v1.1/Datastreams(999999)/Observations",
         json.dumps({"phenomenonTime": T0, "result": 1}).encode(), "not_found",
         "no Datastream at /Datastreams(999999)/Observations"),
    ]


async def test_notifications_and_published_entities_are_not_creation_requests(
    fleet_db: Any, settings: ApiSettings, client: aiomqtt.Client, topic_prefix: str
) -> None:
    stream = await fleet_datastream(fleet_db, "aq-hornsgatan-108", "no2")
    on_stream = f"{topic_prefix}/v1.1/Datastreams({stream})/Observations"
    marked = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    marked.UserProperty = [NOTIFICATION]
    async with listening_api(settings):
        await publish(client, on_stream, {"phenomenonTime": T0, "result": 1}, marked)
        await publish(client, on_stream, {"@iot.id": 7, "phenomenonTime":
                                          "2026-09-21T10:01:00Z", "result": 2})
        await publish(client, on_stream, {"phenomenonTime": "2026-09-21T10:02:00Z",
                                          "result": 3})
        assert await results(fleet_db, stream, 1) == ["3"]
    assert await fleet_db.fetchval("SELECT count(*) FROM rejected_messages") == 0


async def test_observations_published_while_the_api_is_down_are_created_when_it_is_back(
    fleet_db: Any, settings: ApiSettings, client: aiomqtt.Client, topic_prefix: str
) -> None:
    stream = await fleet_datastream(fleet_db, "aq-hornsgatan-108", "no2")
    async with listening_api(settings):
        pass  # the broker now keeps a session for the listener
    await publish(client, f"{topic_prefix}/v1.1/Datastreams({stream})/Observations",
                  {"phenomenonTime": T0, "result": 4})
    async with listening_api(settings):
        assert await results(fleet_db, stream, 1) == ["4"]


async def test_the_http_api_serves_writes_while_the_broker_is_away(
    fleet_db: Any, db_url: str
) -> None:
    settings = ApiSettings(database_url=db_url, mqtt_port=free_port(),
                           mqtt_client_id=f"api-{uuid.uuid4().hex[:8]}")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://city",
                                     headers=bearer(await make_key(db_url))) as http:
            made = await http.post("/v1.1/Things", json={"name": "Mast", "description": "d"})
            assert made.status_code == 201, made.text
        assert not app.state.observation_listener.ready.is_set()


async def test_a_write_the_database_aborts_for_a_deadlock_is_run_again(
    fleet_db: Any, settings: ApiSettings, client: aiomqtt.Client, topic_prefix: str,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = await fleet_datastream(fleet_db, "aq-hornsgatan-108", "no2")
    aborted: list[bool] = []

    async def deadlocked_once(*args: Any, **kwargs: Any) -> Any:
        if not aborted:
            aborted.append(True)
            raise Contended("deadlock detected")  # as execute answers the database's abort
        return await execute(*args, **kwargs)

    monkeypatch.setattr("api.mqtt_create.execute", deadlocked_once)
    async with listening_api(settings):
        await publish(client, f"{topic_prefix}/v1.1/Datastreams({stream})/Observations",
                      {"phenomenonTime": T0, "result": 5})
        assert await results(fleet_db, stream, 1) == ["5"]
    assert aborted == [True]
    assert await fleet_db.fetchval("SELECT count(*) FROM rejected_messages") == 0


async def test_with_the_publisher_secret_only_a_publisher_the_broker_signed_is_believed(
    fleet_db: Any, db_url: str, mqtt_port: int, client: aiomqtt.Client, topic_prefix: str,
    tmp_path: Any
) -> None:
    secret = tmp_path / "broker-publisher.secret"
    secret.write_text("the stack's secret\n")
    settings = ApiSettings(database_url=db_url, mqtt_port=mqtt_port,
                           topic_prefix=f"{topic_prefix}/", mqtt_publisher_secret_file=secret,
                           mqtt_client_id=f"api-{uuid.uuid4().hex[:8]}")
    stream = await fleet_datastream(fleet_db, "aq-hornsgatan-108", "no2")
    on_stream = f"{topic_prefix}/v1.1/Datastreams({stream})/Observations"
    other_topic = f"{topic_prefix}/v1.1/Observations"

    def named(payload: dict[str, Any], value: str | None = None,
              topic: str = on_stream, key: bytes = b"the stack's secret") -> Properties:
        """The publisher property as the broker with `key` would sign it for `topic`."""
        signed = value or publisher_stamp(key, "stadspuls-ingest", topic,
                                          json.dumps(payload).encode())
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.UserProperty = [(PUBLISHER_PROPERTY, signed)]
        return properties

    sent = [{"phenomenonTime": f"2026-09-21T10:0{n}:00Z", "result": n} for n in range(6)]
    async with listening_api(settings):
        await publish(client, on_stream, sent[0])  # nobody named
        await publish(client, on_stream, sent[1], named(sent[1], "stadspuls-ingest"))
        await publish(client, on_stream, sent[2], named(sent[2], key=b"another secret"))
        await publish(client, on_stream, sent[3], named(sent[3], topic=other_topic))
        await publish(client, on_stream, sent[4], named(sent[0]))  # another payload's
        await publish(client, on_stream, sent[5], named(sent[5]))
        assert await results(fleet_db, stream, 1) == ["5"]
    rejects = await fleet_db.fetch("SELECT payload, code FROM rejected_messages ORDER BY id")
    assert [(json.loads(r["payload"])["result"], r["code"]) for r in rejects] == [
        (0, "unnamed_publisher"), (1, "forged_publisher"), (2, "forged_publisher"),
        (3, "forged_publisher"), (4, "forged_publisher")]


async def test_a_retained_observation_is_created_once_not_again_at_each_subscription(
    fleet_db: Any, settings: ApiSettings, client: aiomqtt.Client, topic_prefix: str
) -> None:
    stream = await fleet_datastream(fleet_db, "aq-hornsgatan-108", "no2")
    topic = f"{topic_prefix}/v1.1/Datastreams({stream})/Observations"
    # Kept by the broker before the API subscribes: never sent to it.
    await client.publish(topic, json.dumps({"result": 1.5}).encode(), qos=1, retain=True)
    for _ in range(3):  # each start subscribes again
        async with listening_api(settings):
            await asyncio.sleep(0.5)
    async with listening_api(settings):
        await publish(client, topic, {"phenomenonTime": T0, "result": 2.5})  # a plain one
        assert await results(fleet_db, stream, 1) == ["2.5"]
    await client.publish(topic, b"", qos=1, retain=True)  # the broker forgets it
    assert await fleet_db.fetchval(
        "SELECT count(*) FROM observations WHERE datastream_id = $1", stream) == 1
