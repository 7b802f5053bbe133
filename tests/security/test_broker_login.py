"""Who the broker lets in: fleet credentials, wrong and missing passwords, TLS."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiomqtt import MqttError

from tests.integration.conftest import eventually
from tests.security.conftest import SecureStack, no2, results

DEVICE = "aq-hornsgatan-108"


async def test_a_device_logs_in_with_the_secret_the_stack_gave_it(
    secure: SecureStack, secure_db: Any
) -> None:
    async with secure.client(DEVICE) as client:
        await client.publish(f"devices/{DEVICE}/senml",
                             no2(DEVICE, 17.75, time.time() - 1200), qos=1)

    async def stored() -> bool:
        return 17.75 in await results(secure_db, DEVICE)

    await eventually(stored, within=15)


async def test_a_wrong_password_is_refused(secure: SecureStack) -> None:
    with pytest.raises(MqttError):
        async with secure.client(DEVICE, "not-the-secret"):
            pass


async def test_an_anonymous_client_is_refused(secure: SecureStack) -> None:
    with pytest.raises(MqttError):
        async with secure.client():
            pass
