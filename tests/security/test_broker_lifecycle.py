"""Credentials over their life: revoked, rotated, by certificate, over TLS; accounts of
devices and gateways that are deleted."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from aiomqtt import MqttError

from core.database import connect
from deploy.tls import issue_client_certificate
from devices import credentials
from devices.broker_access import AccessSync, BrokerFiles, render
from devices.errors import NoAccount
from tests.integration.conftest import eventually
from tests.security.conftest import SecureStack, no2, results


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
    assert not await secure.admits(device, secret)


async def test_after_rotation_the_old_secret_is_refused_and_the_new_one_works(
    secure: SecureStack, secure_db: Any
) -> None:
    device = "aq-torkel-knutssonsgatan"
    old = secure.fleet_secrets[device]
    new = (await credentials.rotate(secure_db, device)).secret

    async def new_accepted() -> bool:
        return await secure.admits(device, new)

    await eventually(new_accepted, within=10)
    assert not await secure.admits(device, old)


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


_readings = itertools.count(1)


def certificate(secure: SecureStack, issued: credentials.Credentials,
                directory: Path) -> aiomqtt.TLSParameters:
    """The TLS parameters of a client certificate issued for `issued`'s identity."""
    assert issued.account.cert_identity is not None
    cert, key = issue_client_certificate(secure.local.authority, issued.username,
                                         issued.account.cert_identity, directory)
    return aiomqtt.TLSParameters(ca_certs=str(secure.local.authority.ca_cert),
                                 certfile=str(cert), keyfile=str(key))


async def publish_by_certificate(secure: SecureStack, tls: aiomqtt.TLSParameters,
                                 device: str) -> float:
    """Publish a new no2 reading of `device` on its topic, logged in by certificate; its
    value."""
    n = next(_readings)
    value = 1000.0 + n
    async with secure.client(port=secure.local.settings.mqtt_mtls_port,
                             tls_params=tls) as client:
        await client.publish(f"devices/{device}/senml",
                             no2(device, value, time.time() - 86_400 + 60 * n), qos=1)
    return value


async def certificate_publishes(secure: SecureStack, db: Any, tls: aiomqtt.TLSParameters,
                                device: str) -> None:
    """Wait until a reading published with the certificate is stored (its ACL lines reach
    the broker within seconds of the change)."""
    sent: list[float] = []

    async def stored() -> bool:
        sent.append(await publish_by_certificate(secure, tls, device))
        return bool(set(sent) & set(await results(db, device)))

    await eventually(stored)


async def publishes_nothing(secure: SecureStack, db: Any, old: aiomqtt.TLSParameters,
                            current: aiomqtt.TLSParameters, device: str) -> bool:
    """Whether a reading published with `old` is dropped while one published after it with
    `current` is stored."""
    dropped = await publish_by_certificate(secure, old, device)
    kept = await publish_by_certificate(secure, current, device)

    async def kept_stored() -> bool:
        return kept in await results(db, device)

    await eventually(kept_stored)
    return dropped not in await results(db, device)


async def test_after_rotation_only_the_new_client_certificate_may_publish(
    secure: SecureStack, secure_db: Any, tmp_path: Path
) -> None:
    device = "aq-sveavagen-59"
    first = await credentials.rotate(secure_db, device, certificate=True)
    old = certificate(secure, first, tmp_path / "first")
    await certificate_publishes(secure, secure_db, old, device)  # no password needed

    second = await credentials.rotate(secure_db, device, certificate=True)
    assert second.account.cert_identity != first.account.cert_identity
    new = certificate(secure, second, tmp_path / "second")
    await certificate_publishes(secure, secure_db, new, device)
    assert await publishes_nothing(secure, secure_db, old, new, device)

    acl = secure.local.access.target.certificate_acl_file.read_text()
    assert f"user {second.account.cert_identity}\n" in acl
    assert f"user {first.account.cert_identity}\n" not in acl


async def test_after_revocation_and_new_credentials_an_old_client_certificate_stays_cut_off(
    secure: SecureStack, secure_db: Any, tmp_path: Path
) -> None:
    device = "aq-norr-malma"  # behind a gateway: no account of its own yet
    issued = await credentials.create(secure_db, device, certificate=True)
    old = certificate(secure, issued, tmp_path / "old")
    await certificate_publishes(secure, secure_db, old, device)

    await credentials.revoke(secure_db, device)
    again = await credentials.create(secure_db, device, certificate=True)
    current = certificate(secure, again, tmp_path / "current")
    await certificate_publishes(secure, secure_db, current, device)
    assert await publishes_nothing(secure, secure_db, old, current, device)


async def test_rotating_without_a_certificate_cuts_off_the_accounts_certificate(
    secure: SecureStack, secure_db: Any, tmp_path: Path
) -> None:
    device = "aq-hornsgatan-108"
    issued = await credentials.rotate(secure_db, device, certificate=True)
    cert = certificate(secure, issued, tmp_path)
    await certificate_publishes(secure, secure_db, cert, device)

    rotated = await credentials.rotate(secure_db, device)
    assert rotated.account.cert_identity is None

    async def reloaded() -> bool:  # both files are reloaded at once
        return not await secure.admits(device, issued.secret)

    await eventually(reloaded, within=10)
    assert f"user {issued.account.cert_identity}\n" not in (
        secure.local.access.target.certificate_acl_file.read_text())
    dropped = await publish_by_certificate(secure, cert, device)
    async with secure.client(device, rotated.secret) as client:  # a later reading
        await client.publish(f"devices/{device}/senml",
                             no2(device, 7.125, time.time() - 30), qos=1)

    async def later_stored() -> bool:
        return 7.125 in await results(secure_db, device)

    await eventually(later_stored)
    assert dropped not in await results(secure_db, device)


async def test_a_certificate_naming_an_account_rather_than_an_identity_may_do_nothing(
    secure: SecureStack, secure_db: Any, tmp_path: Path
) -> None:
    device = "aq-torkel-knutssonsgatan"
    current = certificate(secure, await credentials.rotate(secure_db, device, certificate=True),
                          tmp_path / "current")
    cert, key = issue_client_certificate(secure.local.authority, device, device,
                                         tmp_path / "bare")  # common name: the device id
    bare = aiomqtt.TLSParameters(ca_certs=str(secure.local.authority.ca_cert),
                                 certfile=str(cert), keyfile=str(key))
    await certificate_publishes(secure, secure_db, current, device)
    assert await publishes_nothing(secure, secure_db, bare, current, device)


async def test_a_rotation_racing_a_revocation_leaves_the_account_revoked(
    secure: SecureStack, secure_db: Any
) -> None:
    gateway = "gw-sodermalm"
    revoker, rotator = await connect(secure.database_url), await connect(secure.database_url)
    try:
        revoking = revoker.transaction()
        await revoking.start()
        await credentials.revoke(revoker, gateway)  # not committed yet: the row is locked
        rotating = asyncio.create_task(credentials.rotate(rotator, gateway))
        pid = rotator.get_server_pid()

        async def rotation_waits() -> bool:
            return await secure_db.fetchval(
                "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1",
                pid) is True

        await eventually(rotation_waits, within=10)
        await revoking.commit()
        with pytest.raises(NoAccount):
            await rotating
    finally:
        await revoker.close()
        await rotator.close()
    account = await credentials.account(secure_db, gateway)
    assert account is not None and account.revoked_at is not None
    with pytest.raises(NoAccount):
        await credentials.rotate(secure_db, gateway)


async def test_deleting_a_gateway_or_device_takes_its_account_off_the_broker_at_once(
    secure: SecureStack, secure_db: Any, tmp_path: Path
) -> None:
    agency = await secure_db.fetchval("SELECT id FROM agencies WHERE code = 'trafikkontoret'")
    await secure_db.execute("INSERT INTO gateways (gateway_id, agency_id, name, model) "
                            "VALUES ('gw-temporary', $1, 'Temporary', 'test')", agency)
    await secure_db.execute("INSERT INTO things (agency_id, name, device_id) "
                            "VALUES ($1, 'Temporary', 'aq-temporary')", agency)
    await credentials.create(secure_db, "gw-temporary")
    await credentials.create(secure_db, "aq-temporary")
    # A sync of its own that renders on notifications only (its period is an hour).
    target = BrokerFiles(tmp_path / "passwords", tmp_path / "acl", tmp_path / "acl-certificates",
                         tmp_path / "none.pid")
    sync = AccessSync(secure.database_url, target, [], every_s=3600)
    task = asyncio.create_task(sync.run(connect), name="test.notified_sync")

    def listed(name: str) -> bool:
        return target.acl_file.exists() and f"user {name}\n" in target.acl_file.read_text()

    async def both_listed() -> bool:
        return listed("gw-temporary") and listed("aq-temporary")

    async def gateway_gone() -> bool:
        return not listed("gw-temporary")

    async def device_gone() -> bool:
        return not listed("aq-temporary")

    try:
        await eventually(both_listed, within=10)
        await secure_db.execute("DELETE FROM gateways WHERE gateway_id = 'gw-temporary'")
        await eventually(gateway_gone, within=10)
        assert listed("aq-temporary")
        await secure_db.execute("DELETE FROM things WHERE device_id = 'aq-temporary'")
        await eventually(device_gone, within=10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert "gw-temporary" not in target.password_file.read_text()


async def test_a_device_made_again_under_a_deleted_ones_id_does_not_inherit_its_secret(
    secure: SecureStack, secure_db: Any
) -> None:
    agency = await secure_db.fetchval("SELECT id FROM agencies WHERE code = 'trafikkontoret'")
    made = "INSERT INTO things (agency_id, name, device_id) VALUES ($1, 'Again', 'aq-again')"
    await secure_db.execute(made, agency)
    await credentials.create(secure_db, "aq-again")
    await secure_db.execute("DELETE FROM things WHERE device_id = 'aq-again'")
    await secure_db.execute(made, agency)
    rendered = await render(secure_db, [])
    assert "aq-again" not in rendered.passwords
    assert await secure_db.fetchval(
        "SELECT revoked_at IS NOT NULL FROM mqtt_accounts WHERE username = 'aq-again'")


async def test_the_mutual_tls_listener_refuses_a_client_without_a_certificate(
    secure: SecureStack,
) -> None:
    tls = aiomqtt.TLSParameters(ca_certs=str(secure.local.authority.ca_cert))
    with pytest.raises(MqttError):
        async with secure.client("aq-sveavagen-59", port=secure.local.settings.mqtt_mtls_port,
                                 tls_params=tls):
            pass
