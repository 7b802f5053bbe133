"""Credentials over their life: revoked, rotated, by certificate, over TLS."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from aiomqtt import MqttError

from deploy.tls import issue_client_certificate
from devices import credentials
from tests.integration.conftest import eventually
from tests.security.conftest import SecureStack, no2, results


async def refused(secure: SecureStack, username: str, password: str) -> bool:
    try:
        async with secure.client(username, password):
            return False
    except MqttError:
        return True


async def test_a_revoked_device_is_disconnected_within_seconds_and_cannot_come_back(
    secure: SecureStack, secure_db: Any
) -> None:
    device = "aq-lilla-essingen"
    secret = secure.fleet_secrets[device]
    async with secure.client(device) as client:
        await credentials.revoke(secure_db, device)
        with pytest.raises(MqttError):
            async with asyncio.timeout(10):
                async for _ in client.messages:  # ends when the broker drops us
                    pass
    assert await refused(secure, device, secret)


async def test_after_rotation_the_old_secret_is_refused_and_the_new_one_works(
    secure: SecureStack, secure_db: Any
) -> None:
    device = "aq-torkel-knutssonsgatan"
    old = secure.fleet_secrets[device]
    new = (await credentials.rotate(secure_db, device)).secret

    async def new_accepted() -> bool:
        return not await refused(secure, device, new)

    await eventually(new_accepted, within=10)
    assert await refused(secure, device, old)


async def test_the_tls_listener_serves_the_stacks_ca_and_takes_a_password(
    secure: SecureStack, secure_db: Any
) -> None:
    device = "aq-hornsgatan-108"
    tls = aiomqtt.TLSParameters(ca_certs=str(secure.local.authority.ca_cert))
    async with secure.client(device, port=secure.local.settings.mqtt_tls_port,
                             tls_params=tls) as client:
        await client.publish(f"devices/{device}/senml", no2(device, 31.25, time.time() - 600),
                             qos=1)

    async def stored() -> bool:
        return 31.25 in await results(secure_db, device)

    await eventually(stored)


async def test_a_client_certificate_of_the_stacks_ca_logs_a_device_in_without_a_password(
    secure: SecureStack, secure_db: Any, tmp_path: Path
) -> None:
    device = "aq-sveavagen-59"
    cert, key = issue_client_certificate(secure.local.authority, device, tmp_path)
    tls = aiomqtt.TLSParameters(ca_certs=str(secure.local.authority.ca_cert),
                                certfile=str(cert), keyfile=str(key))
    async with secure.client(port=secure.local.settings.mqtt_mtls_port,
                             tls_params=tls) as client:
        await client.publish(f"devices/{device}/senml", no2(device, 44.75, time.time() - 900),
                             qos=1)

    async def stored() -> bool:
        return 44.75 in await results(secure_db, device)

    await eventually(stored)


async def test_the_mutual_tls_listener_refuses_a_client_without_a_certificate(
    secure: SecureStack,
) -> None:
    tls = aiomqtt.TLSParameters(ca_certs=str(secure.local.authority.ca_cert))
    with pytest.raises(MqttError):
        async with secure.client("aq-sveavagen-59", port=secure.local.settings.mqtt_mtls_port,
                                 tls_params=tls):
            pass
