"""Claims, on the stack as `up` runs it (authentication on): the broker names the publisher
of each message, so a writer's key may publish an Observation on `v1.1/Observations` and
it is created only in a Datastream that key may write, audited under the key; a claimed
publisher is refused by the broker. The broker's log of subscriptions, from which the API
learns the `$select` topics, is read by the API's account alone."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from api.app import create_app
from api.settings import ApiSettings
from core.mqtt_publish import PUBLISHER_PROPERTY, USER_PROPERTY
from tests.integration.conftest import eventually
from tests.security.conftest import SecureStack, api_key

OWNER, OTHER = "miljoforvaltningen", "trafikkontoret"


@asynccontextmanager
async def running_api(secure: SecureStack) -> AsyncIterator[Any]:
    """The API in this process on the stack, logged in to the broker as `up` logs it in."""
    settings = ApiSettings(database_url=secure.database_url, mqtt_port=secure.port,
                           mqtt_client_id=f"api-{uuid.uuid4().hex[:8]}",
                           **secure.local.service_login("stadspuls-api"),
                           **secure.local.publisher_signing())
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with asyncio.timeout(20):
            await app.state.observation_listener.ready.wait()
        yield app


async def admitted(secure: SecureStack, *keys: tuple[str, str]) -> None:
    for key in keys:
        await eventually(lambda key=key: secure.admits(*key), within=10)  # type: ignore[misc]


async def admitted_writer(secure: SecureStack, db: Any) -> tuple[tuple[str, str], int]:
    """A new writer key of OWNER that the broker lets in, and OWNER's first open
    Datastream."""
    writer = await api_key(db, OWNER, "writer")
    await admitted(secure, writer)
    return writer, await datastream_of(db, OWNER, "open")


async def datastream_of(db: Any, agency: str, access: str) -> int:
    return int(await db.fetchval(
        "SELECT min(d.id) FROM datastreams d JOIN agencies a ON a.id = d.agency_id "
        "WHERE a.code = $1 AND d.access = $2", agency, access))


def observation(datastream: int, at: str, result: float) -> bytes:
    return json.dumps({"phenomenonTime": at, "result": result,
                       "Datastream": {"@iot.id": datastream}}).encode()


async def stored(db: Any, datastream: int, at: str) -> bool:
    return bool(await db.fetchval(
        "SELECT count(*) FROM observations WHERE datastream_id = $1 AND phenomenon_time = $2",
        datastream, datetime.fromisoformat(at)))


async def test_a_writer_key_creates_on_the_observations_topic_only_what_it_may_write(
    secure: SecureStack, secure_db: Any
) -> None:
    writer, reader = (await api_key(secure_db, OWNER, "writer"),
                      await api_key(secure_db, OWNER, "reader"))
    own = await datastream_of(secure_db, OWNER, "open")
    others = await datastream_of(secure_db, OTHER, "open")
    hidden = await datastream_of(secure_db, OTHER, "restricted")
    await admitted(secure, writer, reader)
    stamp = uuid.uuid4().int % 10**6
    at = [f"2026-10-0{n}T00:00:{stamp % 60:02d}Z" for n in range(1, 6)]
    async with running_api(secure):
        async with secure.client(*reader, protocol=aiomqtt.ProtocolVersion.V5) as client:
            await client.publish("v1.1/Observations", observation(own, at[0], 1), qos=1)
        async with secure.client(*writer, protocol=aiomqtt.ProtocolVersion.V5) as client:
            await client.publish("v1.1/Observations", observation(others, at[1], 2), qos=1)
            await client.publish("v1.1/Observations", observation(hidden, at[2], 3), qos=1)
            claimed = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            claimed.UserProperty = [(PUBLISHER_PROPERTY, "stadspuls-api")]
            await client.publish("v1.1/Observations", observation(others, at[3], 4), qos=1,
                                 properties=claimed)
            await client.publish("v1.1/Observations", observation(own, at[4], 5), qos=1)
        await eventually(lambda: stored(secure_db, own, at[4]))  # the last one published
        audited = await secure_db.fetch(
            "SELECT target, status, agency_id, entities FROM audit_log "
            "WHERE channel = 'mqtt' AND key_id = $1 ORDER BY id", writer[0])
        rejects = await secure_db.fetch(
            "SELECT payload, code FROM rejected_messages WHERE topic = 'v1.1/Observations' "
            "ORDER BY id")
    assert not await stored(secure_db, own, at[0])  # a reader's: the broker's ACL drops it
    assert not await stored(secure_db, others, at[1])  # another agency's Datastream
    assert not await stored(secure_db, hidden, at[2])  # one it may not even see
    assert not await stored(secure_db, others, at[3])  # a claimed publisher: the broker drops it
    mine = [(json.loads(r["payload"])["result"], r["code"]) for r in rejects
            if json.loads(r["payload"])["phenomenonTime"] in at]
    assert mine[0] == (2, "forbidden") and mine[1][0] == 3 and len(mine) == 2
    assert [r["status"] for r in audited][0::2] == [403, 201]
    assert audited[1]["status"] in (400, 404) and len(audited) == 3
    assert audited[2]["agency_id"] == await secure_db.fetchval(
        "SELECT id FROM agencies WHERE code = $1", OWNER)
    assert json.loads(audited[2]["entities"])["Observations"]


async def test_a_key_revoked_since_it_logged_in_creates_nothing_over_mqtt(
    secure: SecureStack, secure_db: Any
) -> None:
    writer, own = await admitted_writer(secure, secure_db)
    at = f"2026-10-09T00:00:{uuid.uuid4().int % 60:02d}Z"
    async with running_api(secure), \
            secure.client(*writer, protocol=aiomqtt.ProtocolVersion.V5) as client:
        # Revoked in the database; the broker has not yet rendered it out.
        await secure_db.execute("UPDATE api_keys SET revoked_at = now() WHERE key_id = $1",
                                writer[0])
        await client.publish("v1.1/Observations", observation(own, at, 6), qos=1)

        async def refused() -> bool:
            return bool(await secure_db.fetchval(
                "SELECT count(*) FROM audit_log WHERE key_id = $1 AND status = 401",
                writer[0]))

        await eventually(refused)
    assert not await stored(secure_db, own, at)


@pytest.mark.parametrize("prying", ["admin", "reader", "stadspuls-ingest"])
async def test_only_the_api_account_reads_the_brokers_log_of_subscriptions(
    secure: SecureStack, secure_db: Any, prying: str
) -> None:
    if prying == "stadspuls-ingest":
        login = secure.local.service_login(prying)
        other = (prying, login["mqtt_password_file"].read_text().strip())
    else:
        other = await api_key(secure_db, OWNER if prying == "reader" else "city", prying)
    subscriber = await api_key(secure_db, OWNER)
    await admitted(secure, other, subscriber)
    login = secure.local.service_login("stadspuls-api")
    api = ("stadspuls-api", login["mqtt_password_file"].read_text().strip())
    marker = f"selecting-{uuid.uuid4().hex[:8]}"
    async with secure.client(*api) as api_client, secure.client(*other) as nosy:
        await api_client.subscribe("$SYS/broker/log/#")
        for topic in ("$SYS/#", "$SYS/broker/log/#", "#"):
            await nosy.subscribe(topic)
        overheard: list[str] = []
        collecting = asyncio.create_task(collect(nosy, overheard))
        try:
            async with secure.client(*subscriber, identifier=marker) as selecting:
                await selecting.subscribe("v1.1/Things?$select=name")
            heard = await lines_about(api_client, marker)
            await asyncio.sleep(1)  # what the other account would have got by now
        finally:
            collecting.cancel()
            await asyncio.gather(collecting, return_exceptions=True)
    assert f"{marker} 0 v1.1/Things?$select=name" in "\n".join(heard)
    assert [topic for topic in overheard if topic.startswith("$SYS")] == []


async def collect(client: aiomqtt.Client, into: list[str]) -> None:
    async for message in client.messages:
        into.append(str(message.topic))


async def lines_about(client: aiomqtt.Client, marker: str) -> list[str]:
    """The log lines `client` receives, up to the one saying `marker` subscribed."""
    lines: list[str] = []
    async with asyncio.timeout(15):
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            lines.append(message.payload.decode())
            if f"{marker} 0 " in lines[-1]:
                return lines
    raise AssertionError("no subscription in the log")


async def test_a_claimed_publisher_or_notification_in_a_will_creates_nothing(
    secure: SecureStack, secure_db: Any
) -> None:
    writer, admin = (await api_key(secure_db, OWNER, "writer"),
                     await api_key(secure_db, "city", "admin"))
    others = await datastream_of(secure_db, OTHER, "open")
    own = await datastream_of(secure_db, OWNER, "open")
    await admitted(secure, writer)
    stamp = uuid.uuid4().int % 10**6
    at = [f"2026-10-1{n}T00:00:{stamp % 60:02d}Z" for n in range(1, 5)]
    async with running_api(secure):
        # Wills, sent by the broker when their client drops: one claiming an admin's key,
        # one naming nobody (the broker's plugin never sees a will).
        await dropped_with_will(secure, writer, observation(others, at[0], 7),
                                [(PUBLISHER_PROPERTY, admin[0])])
        await dropped_with_will(secure, writer, observation(others, at[3], 10), [])
        async with secure.client(*writer, protocol=aiomqtt.ProtocolVersion.V5) as client:
            # A message posing as the platform's own notification.
            posing = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            posing.UserProperty = [(USER_PROPERTY[0], "0")]
            await client.publish("v1.1/Observations", observation(others, at[1], 8), qos=1,
                                 properties=posing)
            await client.publish("v1.1/Observations", observation(own, at[2], 9), qos=1)
        await eventually(lambda: stored(secure_db, own, at[2]))  # the last one published
        await asyncio.sleep(1)
        codes = await reject_codes(secure_db, at)
    assert not await stored(secure_db, others, at[0])
    assert not await stored(secure_db, others, at[1])
    assert not await stored(secure_db, others, at[3])
    assert codes == {7: "forged_publisher", 10: "unnamed_publisher"}  # 8: not a request


async def test_an_admins_signed_message_replayed_in_a_will_makes_nothing_new(
    secure: SecureStack, secure_db: Any
) -> None:
    writer, admin = (await api_key(secure_db, OWNER, "writer"),
                     await api_key(secure_db, "city", "admin"))
    others = await datastream_of(secure_db, OTHER, "open")
    await admitted(secure, writer, admin)
    stamp = uuid.uuid4().int % 10**6
    at = [f"2026-10-2{n}T00:00:{stamp % 60:02d}Z" for n in range(1, 3)]
    sent = observation(others, at[0], 11)
    async with running_api(secure):
        async with secure.client(*writer, protocol=aiomqtt.ProtocolVersion.V5) as spy:
            await spy.subscribe("v1.1/Observations", qos=1)
            async with secure.client(*admin, protocol=aiomqtt.ProtocolVersion.V5) as client:
                await client.publish("v1.1/Observations", sent, qos=1)
            signed = await publisher_seen(spy, sent)  # what any subscriber sees
        await eventually(lambda: stored(secure_db, others, at[0]))
        # The admin's message again, signature and all; and its signature on another one.
        await dropped_with_will(secure, writer, sent, [(PUBLISHER_PROPERTY, signed)])
        await dropped_with_will(secure, writer, observation(others, at[1], 12),
                                [(PUBLISHER_PROPERTY, signed)])

        async def both_rejected() -> bool:
            return len(await reject_codes(secure_db, at)) == 2

        await eventually(both_rejected)
        codes = await reject_codes(secure_db, at)
        copies = await secure_db.fetchval(
            "SELECT count(*) FROM observations WHERE datastream_id = $1 "
            "AND phenomenon_time = $2", others, datetime.fromisoformat(at[0]))
    assert signed.startswith(f"{admin[0]};") and len(signed) == len(admin[0]) + 65
    assert copies == 1  # the replay is the same Observation, which exists
    assert codes == {11: "conflict", 12: "forged_publisher"}


async def test_a_notification_is_named_unsigned_and_a_request_signed(
    secure: SecureStack, secure_db: Any
) -> None:
    writer = await api_key(secure_db, OWNER, "writer")
    await admitted(secure, writer)
    request, notice = uuid.uuid4().hex.encode(), uuid.uuid4().hex.encode()
    marked = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    marked.UserProperty = [USER_PROPERTY]
    async with secure.client(*writer, protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.subscribe("v1.1/Observations", qos=1)
        await client.publish("v1.1/Observations", request, qos=1)
        signed = await publisher_seen(client, request)
        await client.publish("v1.1/Observations", notice, qos=1, properties=marked)
        named = await publisher_seen(client, notice)
    assert signed.startswith(f"{writer[0]};") and len(signed) == len(writer[0]) + 65
    assert named == writer[0]  # the API passes notifications over: no HMAC spent on them


def test_the_publisher_secret_is_readable_by_its_owners_alone(secure: SecureStack) -> None:
    for path in (secure.local.publisher_secret_file, secure.local.broker.config_file):
        assert path.stat().st_mode & 0o777 == 0o600
    secret = secure.local.publisher_secret_file.read_text().strip()
    assert len(secret) >= 43  # 256 bits
    assert f"plugin_opt_secret {secret}" in secure.local.broker.config_file.read_text()


async def dropped_with_will(secure: SecureStack, login: tuple[str, str], payload: bytes,
                            properties: list[tuple[str, str]]) -> None:
    """Log in as `login` with a will on `v1.1/Observations` carrying `properties`, and drop
    the connection so that the broker sends the will."""
    will_properties = Properties(PacketTypes.WILLMESSAGE)  # type: ignore[no-untyped-call]
    if properties:
        will_properties.UserProperty = properties
    will = aiomqtt.Will("v1.1/Observations", payload, qos=1, properties=will_properties)
    async with secure.client(*login, protocol=aiomqtt.ProtocolVersion.V5,
                             will=will) as client:
        client._client.disconnect(reasoncode=ReasonCode(
            PacketTypes.DISCONNECT, "Disconnect with will message"))
        await asyncio.sleep(0.5)


async def publisher_seen(client: aiomqtt.Client, payload: bytes) -> str:
    """The publisher the broker named on the message with `payload`, as a subscriber
    gets it."""
    async with asyncio.timeout(10):
        async for message in client.messages:
            if message.payload == payload:
                names = dict(getattr(message.properties, "UserProperty", None) or [])
                return str(names[PUBLISHER_PROPERTY])
    raise AssertionError("the message never came")


async def reject_codes(db: Any, at: list[str]) -> dict[float, str]:
    """{result: code} of the rejected messages on `v1.1/Observations` at the times `at`."""
    rows = await db.fetch("SELECT payload, code FROM rejected_messages "
                          "WHERE topic = 'v1.1/Observations'")
    return {json.loads(r["payload"])["result"]: r["code"] for r in rows
            if json.loads(r["payload"])["phenomenonTime"] in at}


async def test_a_retained_observation_is_not_kept_by_the_broker(
    secure: SecureStack, secure_db: Any
) -> None:
    writer, own = await admitted_writer(secure, secure_db)
    topic = f"v1.1/Datastreams({own})/Observations"
    async with secure.client(*writer, protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.publish(topic, observation(own, "2026-10-20T00:00:00Z", 1), qos=1,
                             retain=True)
    marker = uuid.uuid4().hex.encode()
    kept: list[bytes] = []
    async with secure.client(*writer, protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.subscribe(topic, qos=1)
        await client.publish(topic, marker, qos=1)
        async with asyncio.timeout(15):
            async for message in client.messages:
                if bytes(message.payload) == marker:
                    break
                kept.append(bytes(message.payload))
    assert kept == []
