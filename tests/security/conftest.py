"""A stack with authentication on, started as `stadspuls up` starts it: its own database
and broker, the Stockholm fleet with per-publisher credentials, the access sync running,
and ingest running as its own process with its service account."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
import pytest

from core.database import connect
from core.secrets import hash_secret, new_secret
from deploy.ports import free_port
from deploy.settings import StackSettings
from deploy.stack import LocalStack, temporary_state_dir
from deploy.system import Postgres
from devices.broker_access import SYNC_EVERY_S, AccessSync
from devices.fleet import stockholm
from tests.integration.conftest import eventually


@dataclass
class SecureStack:
    """The running stack, its access sync, and the fleet's secrets."""

    local: LocalStack
    sync: AccessSync
    fleet_secrets: dict[str, str] = field(repr=False)

    @property
    def port(self) -> int:
        return self.local.settings.mqtt_port

    @property
    def database_url(self) -> str:
        return self.local.settings.database_url

    async def synced(self) -> None:
        """Wait until the access sync has rendered the files once more (it renders on every
        change the database announces)."""
        seen = self.sync.renders
        await eventually(lambda: _true(self.sync.renders > seen), within=10)

    @asynccontextmanager
    async def client(self, username: str | None = None, password: str | None = None,
                     **options: Any) -> AsyncIterator[aiomqtt.Client]:
        """An MQTT client logged in as `username` (the fleet's secret unless given)."""
        if username is not None and password is None:
            password = self.fleet_secrets[username]
        async with aiomqtt.Client("127.0.0.1", options.pop("port", self.port),
                                  identifier=options.pop("identifier",
                                                         f"test-{uuid.uuid4().hex[:8]}"),
                                  username=username, password=password, **options) as client:
            yield client

    async def admits(self, username: str, password: str) -> bool:
        """Whether the broker lets `username` log in with `password`."""
        try:
            async with self.client(username, password):
                return True
        except aiomqtt.MqttError:
            return False


async def _true(value: bool) -> bool:
    return value


def authenticated_settings() -> StackSettings:
    """A stack's settings as `up` has them (authentication on), on free ports in a
    temporary state directory."""
    return StackSettings(
        state_dir=temporary_state_dir("stadspuls-test-"), db_port=free_port(),
        mqtt_port=free_port(), mqtt_tls_port=free_port(), mqtt_mtls_port=free_port(),
        ingest_metrics_port=free_port(), api_port=free_port(),
    )


@asynccontextmanager
async def authenticated_stack(postgres_install: Postgres, every_s: float = SYNC_EVERY_S
                              ) -> AsyncIterator[tuple[LocalStack, AccessSync]]:
    """The stack as `up` starts it, with the Stockholm fleet provisioned and its access sync
    running (every `every_s` seconds besides NOTIFY, as `up` runs it unless given), and
    stopped after."""
    settings = authenticated_settings()
    local = LocalStack(settings, postgres_install)
    await local.start()
    sync = local.access_sync(every_s)
    task = asyncio.create_task(sync.run(connect), name="test.access_sync")
    try:
        await local.provision_fleet(stockholm())
        yield local, sync
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        local.stop()
        shutil.rmtree(settings.state_dir, ignore_errors=True)


@pytest.fixture(scope="module")
async def secure(postgres_install: Postgres) -> AsyncIterator[SecureStack]:
    # Rendering every 2 s rather than 30 s, so that a key's expiry (which no database
    # change announces) shows within a test's patience.
    async with authenticated_stack(postgres_install, every_s=2.0) as (local, sync):
        secrets_file = local.settings.state_dir / "secrets" / "fleet.json"
        stack = SecureStack(local, sync, json.loads(secrets_file.read_text()))
        await eventually(lambda: _true(sync.renders > 0), within=10)
        local.start_ingest()
        yield stack


@pytest.fixture
async def secure_db(secure: SecureStack) -> AsyncIterator[Any]:
    conn = await connect(secure.database_url)
    yield conn
    await conn.close()


async def api_key(db: Any, agency: str, role: str = "reader",
                  lasts: timedelta = timedelta(days=1)) -> tuple[str, str]:
    """A new API key of `agency` (inserted as the key command would): (key id, key text)."""
    key_id = "k" + uuid.uuid4().hex[:11]
    text = f"sp_{key_id}_{new_secret()}"
    await db.execute(
        "INSERT INTO api_keys (key_id, agency_id, role, label, secret_hash, expires_at) "
        "SELECT $1, id, $2, 'test', $3, $4 FROM agencies WHERE code = $5",
        key_id, role, hash_secret(text), datetime.now(UTC) + lasts, agency)
    return key_id, text


def no2(device: str, value: float, at: float) -> bytes:
    """One no2 reading of an air-quality device as SenML JSON."""
    return json.dumps([{"bn": f"urn:dev:{device}:", "bt": at, "n": "no2", "u": "ug/m3",
                        "v": value}]).encode()


async def datastream_id(db: Any, device: str, record: str) -> int:
    return int(await db.fetchval(
        "SELECT ds.id FROM datastreams ds JOIN things t ON t.id = ds.thing_id "
        "WHERE t.device_id = $1 AND ds.record_name = $2", device, record))


async def results(db: Any, device: str, record: str = "no2") -> list[float]:
    """The stored results of a device's datastream, oldest first."""
    rows = await db.fetch(
        "SELECT o.result_number FROM observations o WHERE o.datastream_id = $1 "
        "ORDER BY o.phenomenon_time", await datastream_id(db, device, record))
    return [r["result_number"] for r in rows]
