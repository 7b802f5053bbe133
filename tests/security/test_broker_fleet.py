"""The simulated fleet's credentials, kept like a device keeps its secret in flash; never
revived once revoked."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from devices import credentials
from devices.fleet import stockholm
from simulators.cli import simulate
from tests.integration.conftest import eventually
from tests.integration.test_simulator_publish import receive_until_quiet
from tests.security.conftest import SecureStack


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
    await eventually(lambda: secure.admits("gw-essingen", after["gw-essingen"]), within=10)
    assert not await secure.admits("gw-essingen", before["gw-essingen"])


async def test_a_restart_leaves_a_revoked_publisher_revoked_and_names_it(
    secure: SecureStack, secure_db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    fleet_file = secure.local.state_dir / "secrets" / "fleet.json"
    old = json.loads(fleet_file.read_text())["gw-norrmalm"]
    await credentials.revoke(secure_db, "gw-norrmalm")
    with caplog.at_level(logging.WARNING, logger="deploy.access"):
        await secure.local.provision_fleet(stockholm())
    account = await credentials.account(secure_db, "gw-norrmalm")
    assert account is not None and account.revoked_at is not None
    assert json.loads(fleet_file.read_text())["gw-norrmalm"] is None  # the simulator skips it
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [w for w in warnings if "revoked" in w and "gw-norrmalm" in w]
    assert not await secure.admits("gw-norrmalm", old)


async def test_the_simulator_publishes_nothing_for_a_publisher_without_credentials(
    secure: SecureStack, tmp_path: Path
) -> None:
    kept = json.loads((secure.local.state_dir / "secrets" / "fleet.json").read_text())
    fleet_file = tmp_path / "fleet.json"
    fleet_file.write_text(json.dumps(kept | {"gw-norrmalm": None}))
    service = (secure.local.state_dir / "secrets" / "stadspuls-ingest.secret").read_text()
    args = ["--from", "2026-10-01T08:00", "--to", "2026-10-01T08:05", "--no-progress",
            "--mqtt-port", str(secure.port), "--credentials", str(fleet_file)]
    async with secure.client("stadspuls-ingest", service.strip()) as listener:
        await listener.subscribe("gateways/+/senml", qos=1)
        await listener.subscribe("devices/+/senml", qos=1)
        result = await asyncio.to_thread(CliRunner().invoke, simulate, args)
        topics = Counter(str(m.topic) for m in await receive_until_quiet(listener))
    assert result.exit_code == 0, result.output
    assert topics["gateways/gw-essingen/senml"] == 5
    assert topics["devices/aq-hornsgatan-108/senml"] == 5
    assert topics["gateways/gw-norrmalm/senml"] == 0
