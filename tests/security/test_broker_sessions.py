"""Client ids of the stack's services belong to those services: no other account may take
over ingest's persistent session (or the API's), so readings the broker acknowledged are
never taken, or thrown away with a clean session, by someone else."""

from __future__ import annotations

import asyncio
import itertools
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiomqtt

from deploy.access import API, INGEST, LOAD, SERVICES
from deploy.tls import issue_client_certificate
from devices import credentials
from tests.integration.conftest import eventually
from tests.security.conftest import SecureStack, api_key, no2, results

PUBLISHER = "aq-hornsgatan-108"  # publishes the readings that must all be stored
DEVICE, GATEWAY = "aq-sveavagen-59", "gw-essingen"
CERTIFIED = "aq-torkel-knutssonsgatan"  # given a certificate; its password is not used

# Each service's own id and the suffixed ids the stack's processes use.
SERVICE_CLIENT_IDS = [client_id for service in SERVICES for client_id in (
    service, f"{service}-create", f"{service}-notify-1a2b3c",
    f"{service}-subscriptions-{uuid.uuid4().hex[:8]}")]

_values = itertools.count(1)


def service_login(secure: SecureStack, account: str) -> tuple[str, str]:
    return account, (secure.local.state_dir / "secrets" / f"{account}.secret").read_text().strip()


async def admitted(secure: SecureStack, username: str, password: str, client_id: str,
                   **options: Any) -> bool:
    """Whether the broker lets `username` in with `client_id` (clean session, as a client
    that means to throw the session away would)."""
    try:
        async with secure.client(username, password, identifier=client_id, **options):
            return True
    except aiomqtt.MqttError:
        return False


class Readings:
    """A device publishing new readings at QoS 1 while something else happens."""

    def __init__(self, secure: SecureStack) -> None:
        self.secure = secure
        self.sent: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Readings:
        self._task = asyncio.create_task(self._publish())
        await eventually(lambda: _true(len(self.sent) >= 5), within=10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _publish(self) -> None:
        async with self.secure.client(PUBLISHER) as device:
            while True:
                n = next(_values)
                value = 500.0 + n / 1000  # within NO2's plausible range
                await device.publish(f"devices/{PUBLISHER}/senml",
                                     no2(PUBLISHER, value, time.time() - 40_000 + n), qos=1)
                self.sent.append(value)  # acknowledged by the broker
                await asyncio.sleep(0.02)

    async def all_stored(self, db: Any) -> None:
        async def stored() -> bool:
            return set(self.sent) <= set(await results(db, PUBLISHER))

        await eventually(stored, within=30)


async def _true(value: bool) -> bool:
    return value


async def test_no_device_gateway_key_or_other_service_may_use_a_services_client_id(
    secure: SecureStack, secure_db: Any
) -> None:
    principals = {
        "device": (DEVICE, secure.fleet_secrets[DEVICE]),
        "gateway": (GATEWAY, secure.fleet_secrets[GATEWAY]),
        "reader": await api_key(secure_db, "miljoforvaltningen", "reader"),
        "writer": await api_key(secure_db, "miljoforvaltningen", "writer"),
        "admin": await api_key(secure_db, "miljoforvaltningen", "admin"),
    }
    await eventually(lambda: admitted(secure, *principals["admin"], f"t-{uuid.uuid4().hex}"))
    # The controls: each is admitted with an id of its own, as the simulators' are.
    for username, password in principals.values():
        assert await admitted(secure, username, password, f"stadspuls-sim-{uuid.uuid4().hex}")
    assert await admitted(secure, *service_login(secure, LOAD), f"{LOAD}-{uuid.uuid4().hex}")

    tls = aiomqtt.TLSParameters(ca_certs=str(secure.local.authority.ca_cert))
    assert await admitted(secure, *principals["reader"], f"t-{uuid.uuid4().hex}",
                          tls_params=tls, port=secure.local.settings.mqtt_tls_port)
    admitted_as: list[tuple[str, str]] = []
    async with Readings(secure) as readings:
        for client_id in SERVICE_CLIENT_IDS:
            others = {service: service_login(secure, service) for service in SERVICES
                      if not (client_id == service or client_id.startswith(f"{service}-"))}
            for kind, (username, password) in {**principals, **others}.items():
                if await admitted(secure, username, password, client_id):
                    admitted_as.append((kind, client_id))
        for kind, (username, password) in principals.items():  # the TLS listener too
            if await admitted(secure, username, password, INGEST, tls_params=tls,
                              port=secure.local.settings.mqtt_tls_port):
                admitted_as.append((f"{kind} over TLS", INGEST))
        await readings.all_stored(secure_db)
    assert admitted_as == []
    assert {INGEST, API, LOAD} <= set(SERVICES)


async def test_a_certificate_naming_ingests_client_id_gets_a_session_of_its_own(
    secure: SecureStack, secure_db: Any
) -> None:
    issued = await credentials.rotate(secure_db, CERTIFIED, certificate=True)
    assert issued.account.cert_identity is not None
    with tempfile.TemporaryDirectory() as directory:
        cert, key = issue_client_certificate(secure.local.authority, issued.username,
                                             issued.account.cert_identity, Path(directory))
        tls = aiomqtt.TLSParameters(ca_certs=str(secure.local.authority.ca_cert),
                                    certfile=str(cert), keyfile=str(key))
        mtls = secure.local.settings.mqtt_mtls_port
        async with Readings(secure) as readings:
            for clean in (True, False):
                async with aiomqtt.Client("127.0.0.1", mtls, identifier=INGEST, tls_params=tls,
                                          clean_session=clean) as client:
                    await client.subscribe(f"devices/{PUBLISHER}/senml", qos=1)
                    await asyncio.sleep(1)  # ingest's session would be this client's now
            await readings.all_stored(secure_db)
