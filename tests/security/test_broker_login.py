"""Who the broker lets in: fleet credentials, wrong and missing passwords, TLS."""

from __future__ import annotations

import pytest
from aiomqtt import MqttError

from tests.security.conftest import SecureStack

DEVICE = "aq-hornsgatan-108"


async def test_a_device_logs_in_with_the_secret_the_stack_gave_it(secure: SecureStack) -> None:
    async with secure.client(DEVICE) as client:
        await client.publish(f"devices/{DEVICE}/senml", b"[]", qos=1)


async def test_a_wrong_password_is_refused(secure: SecureStack) -> None:
    with pytest.raises(MqttError):
        async with secure.client(DEVICE, "not-the-secret"):
            pass


async def test_an_anonymous_client_is_refused(secure: SecureStack) -> None:
    with pytest.raises(MqttError):
        async with secure.client():
            pass
