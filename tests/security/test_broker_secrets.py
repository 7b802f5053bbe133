"""Secrets stay secret: shown once by the command that makes them, never in logs, error
messages or process arguments."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.integration.conftest import eventually
from tests.security.conftest import SecureStack


def stadspuls(secure: SecureStack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploy", *args, "--database-url", secure.database_url,
         "--state-dir", str(secure.local.state_dir)],
        capture_output=True, text=True, timeout=60, check=False)


def every_secret(secure: SecureStack) -> list[str]:
    secrets_dir = secure.local.state_dir / "secrets"
    return ([p.read_text().strip() for p in secrets_dir.glob("*.secret")]
            + list(secure.fleet_secrets.values()))


async def test_credentials_from_the_command_line_work_until_revoked(secure: SecureStack) -> None:
    device = "tc-essingeleden-n"  # behind a gateway: no account of its own yet
    made = stadspuls(secure, "devices", "credentials", device, "--json")
    assert made.returncode == 0, made.stderr
    issued = json.loads(made.stdout)
    assert issued["username"] == device
    assert "shown this once" in made.stderr
    await eventually(lambda: secure.admits(device, issued["password"]), within=10)

    revoked = stadspuls(secure, "devices", "revoke", device)
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.strip() == f"device {device}: broker credentials revoked"

    async def refused() -> bool:
        return not await secure.admits(device, issued["password"])

    await eventually(refused, within=10)


@pytest.mark.parametrize(("command", "message"), [
    (("credentials", "aq-hornsgatan-108"), "has broker credentials already"),
    (("rotate", "aq-norr-malma"), "has no active broker credentials"),
    (("revoke", "no-such-device"), "no device or gateway 'no-such-device'"),
])
def test_refused_credential_commands_say_why_and_show_no_secret(
    secure: SecureStack, command: tuple[str, ...], message: str
) -> None:
    done = stadspuls(secure, "devices", *command)
    assert done.returncode == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not [s for s in every_secret(secure) if s in done.stdout + done.stderr]


async def test_no_secret_appears_in_logs_or_in_a_services_arguments(
    secure: SecureStack, secure_db: Any
) -> None:
    # Some traffic the logs tell of: a refused login, a device, a gateway.
    assert not await secure.admits("aq-hornsgatan-108", "wrong")
    assert await secure.admits("aq-hornsgatan-108", secure.fleet_secrets["aq-hornsgatan-108"])
    assert await secure.admits("gw-essingen", secure.fleet_secrets["gw-essingen"])
    logs = "".join(p.read_text(errors="replace")
                   for p in (secure.local.state_dir / "logs").glob("*.log"))
    assert "stadspuls-ingest" in logs  # the broker logged ingest's login
    arguments = " ".join(" ".join(p.args) for p in secure.local.programs)
    assert "--mqtt-password-file" in arguments
    leaked = [s for s in every_secret(secure) if s in logs or s in arguments]
    assert leaked == []
