"""The broker keeps no retained reading: a retained message on a device or gateway topic,
published or left as a Will, is refused, so ingest is never sent it again."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from deploy.access import INGEST
from tests.integration.conftest import eventually
from tests.security.conftest import SecureStack, no2, results

DEVICE, GATEWAY = "aq-sveavagen-59", "gw-essingen"


def ingest_login(secure: SecureStack) -> tuple[str, str]:
    secret = (secure.local.state_dir / "secrets" / f"{INGEST}.secret").read_text().strip()
    return INGEST, secret


async def retained_on(secure: SecureStack, publisher: str, topic: str) -> list[bytes]:
    """What the broker holds retained on `topic`: a new subscriber is sent it before a
    message `publisher` sends after subscribing, which marks the end."""
    marker = f"marker-{uuid.uuid4().hex}".encode()
    seen: list[bytes] = []
    async with secure.client(*ingest_login(secure), identifier=f"t-{uuid.uuid4().hex}") as sub:
        await sub.subscribe(topic, qos=1)
        async with secure.client(publisher) as sender:
            await sender.publish(topic, marker, qos=1)
        async with asyncio.timeout(20):
            async for message in sub.messages:
                if bytes(message.payload) == marker:
                    return seen
                if message.retain:
                    seen.append(bytes(message.payload))
    return seen


async def test_a_retained_reading_is_refused_by_the_broker_and_never_stored(
    secure: SecureStack, secure_db: Any
) -> None:
    at = time.time() - 5000
    topic = f"devices/{DEVICE}/senml"
    for version in (aiomqtt.ProtocolVersion.V311, aiomqtt.ProtocolVersion.V5):
        async with secure.client(DEVICE, protocol=version) as device:
            await device.publish(topic, no2(DEVICE, 71.5, at), qos=1, retain=True)
            await device.publish(topic, no2(DEVICE, 72.5, at + 1), qos=1)

    async def plain_reading_stored() -> bool:
        return 72.5 in await results(secure_db, DEVICE)

    await eventually(plain_reading_stored)
    assert 71.5 not in await results(secure_db, DEVICE)
    assert await retained_on(secure, DEVICE, topic) == []


async def test_a_gateways_retained_reading_is_refused_too(
    secure: SecureStack, secure_db: Any
) -> None:
    topic = f"gateways/{GATEWAY}/senml"
    async with secure.client(GATEWAY) as gateway:
        await gateway.publish(topic, no2("aq-lilla-essingen", 73.5, time.time() - 5000),
                              qos=1, retain=True)
    assert await retained_on(secure, GATEWAY, topic) == []


async def test_a_retained_will_on_a_device_topic_is_not_kept(secure: SecureStack) -> None:
    topic = f"devices/{DEVICE}/senml"
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex}")
    client.username_pw_set(DEVICE, secure.fleet_secrets[DEVICE])
    client.will_set(topic, no2(DEVICE, 74.5, time.time() - 5000), qos=1, retain=True)
    client.connect("127.0.0.1", secure.port)
    connected = time.monotonic() + 10
    while not client.is_connected() and time.monotonic() < connected:
        client.loop(timeout=0.1)
    assert client.is_connected()
    sock = client.socket()
    assert isinstance(sock, socket.socket)
    sock.shutdown(socket.SHUT_RDWR)  # gone without DISCONNECT: the broker sends the Will
    sock.close()
    await asyncio.sleep(0.5)
    assert await retained_on(secure, DEVICE, topic) == []
