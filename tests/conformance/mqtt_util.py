"""Helpers of the MQTT conformance tests."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiomqtt


async def notification(client: aiomqtt.Client, within: float = 15) -> Any:
    """The payload of the next server notification (an entity with @iot.id, or a
    property) received by `client`, skipping creation requests that other clients
    publish on the same topics."""
    async with asyncio.timeout(within):
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            body = json.loads(message.payload)
            if isinstance(body, dict) and ("@iot.id" in body or len(body) == 1):
                return body
    raise AssertionError("no notification")


async def subscribed(client: aiomqtt.Client, topic: str) -> None:
    await client.subscribe(topic, qos=1)
    # A SUBACK has come back once a round trip on the same connection has.
    await client.publish(f"{topic}/__sync", b"", qos=1)
