"""The simulated fleet's credentials, kept like a device keeps its secret in flash."""

from __future__ import annotations

import json

from aiomqtt import MqttError

from devices.fleet import stockholm
from tests.integration.conftest import eventually
from tests.security.conftest import SecureStack


async def accepted(secure: SecureStack, username: str, password: str) -> bool:
    try:
        async with secure.client(username, password):
            return True
    except MqttError:
        return False


async def test_a_restart_reuses_the_fleets_secrets_while_the_file_and_accounts_exist(
    secure: SecureStack,
) -> None:
    fleet_file = secure.local.state_dir / "secrets" / "fleet.json"
    before = json.loads(fleet_file.read_text())
    await secure.local.provision_fleet(stockholm())
    assert json.loads(fleet_file.read_text()) == before
    assert fleet_file.stat().st_mode & 0o777 == 0o600
    assert set(before) == {"aq-hornsgatan-108", "aq-lilla-essingen", "aq-sveavagen-59",
                           "aq-torkel-knutssonsgatan", "gw-essingen", "gw-norr-malma",
                           "gw-norrmalm", "gw-sodermalm"}  # gateways and lone devices


async def test_without_the_file_the_fleets_secrets_are_rotated(secure: SecureStack) -> None:
    fleet_file = secure.local.state_dir / "secrets" / "fleet.json"
    before = json.loads(fleet_file.read_text())
    fleet_file.unlink()
    await secure.local.provision_fleet(stockholm())
    after = json.loads(fleet_file.read_text())
    assert set(after) == set(before)
    assert not set(after.values()) & set(before.values())
    await eventually(lambda: accepted(secure, "gw-essingen", after["gw-essingen"]), within=10)
    assert not await accepted(secure, "gw-essingen", before["gw-essingen"])
