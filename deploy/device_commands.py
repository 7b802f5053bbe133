"""`stadspuls devices credentials | rotate | revoke`: broker credentials of devices and
gateways. A new secret is printed once and stored nowhere but as its hash."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from deploy.running import BrokerFollowed, changing_access
from deploy.settings import StackSettings
from deploy.tls import Authority, issue_client_certificate
from devices import credentials
from devices.errors import DeviceError

WARNING = ("The password is shown this once and stored nowhere; give it to the device now. "
           "The broker accepts it within seconds.")


def add_device_commands(group: click.Group,
                        stack_options: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    """Add the credential commands to the `devices` group."""

    def common(command: Callable[..., Any]) -> Callable[..., Any]:
        command = click.option("--json", "as_json", is_flag=True,
                               help="Print JSON (for scripts).")(command)
        command = click.option("--database-url", envvar="STADSPULS_DATABASE_URL",
                               help="PostgreSQL URL [the local stack's database]")(command)
        command = click.argument("publisher_id")(command)
        return stack_options(command)

    cert_option = click.option(
        "--cert", "cert_dir", type=click.Path(path_type=Path, file_okay=False),
        help="Also write a client certificate of the stack's CA to DIR/<id>.crt and "
             "DIR/<id>.key, for the mutual-TLS listener; it replaces every earlier one. "
             "Without it the account has no certificate.")

    @group.command("credentials")
    @common
    @cert_option
    def devices_credentials(settings: StackSettings, publisher_id: str,
                            database_url: str | None, as_json: bool,
                            cert_dir: Path | None) -> None:
        """Give a device or gateway broker credentials (username: its id)."""
        authority = _authority(settings, cert_dir)
        issued, broker = changing_access(settings, database_url, lambda c: credentials.create(
            c, publisher_id, certificate=authority is not None))
        _print_secret(issued, "created", _certificate(authority, issued, cert_dir), as_json)
        report_broker(broker)

    @group.command("rotate")
    @common
    @cert_option
    def devices_rotate(settings: StackSettings, publisher_id: str, database_url: str | None,
                       as_json: bool, cert_dir: Path | None) -> None:
        """Give a device or gateway a new secret; the old one, and every client certificate
        issued before, stop working."""
        authority = _authority(settings, cert_dir)
        issued, broker = changing_access(settings, database_url, lambda c: credentials.rotate(
            c, publisher_id, certificate=authority is not None))
        _print_secret(issued, "rotated", _certificate(authority, issued, cert_dir), as_json)
        report_broker(broker)

    @group.command("revoke")
    @common
    def devices_revoke(settings: StackSettings, publisher_id: str, database_url: str | None,
                       as_json: bool) -> None:
        """Revoke a device's or gateway's credentials and client certificate: the broker
        disconnects it within seconds and refuses it from then on (or the command fails,
        saying the broker was not updated)."""
        account, broker = changing_access(settings, database_url,
                                          lambda c: credentials.revoke(c, publisher_id))
        if as_json:
            click.echo(json.dumps({"username": account.username, "kind": account.kind,
                                   "revoked_at": account.revoked_at.isoformat()
                                   if account.revoked_at else None}))
        else:
            click.echo(f"{account.kind} {account.username}: broker credentials revoked")
        report_broker(broker)


def report_broker(broker: BrokerFollowed) -> None:
    """Tell what became of the broker after an access change; exit non-zero (through the
    error) if it was not updated."""
    if broker.note:
        click.echo(broker.note, err=True)
    if broker.failure is not None:
        raise broker.failure


def _authority(settings: StackSettings, cert_dir: Path | None) -> Authority | None:
    """The stack's CA when a certificate is asked for; checked before anything changes."""
    if cert_dir is None:
        return None
    authority = Authority(settings.state_dir.resolve() / "tls")
    if not authority.exists():
        raise DeviceError(f"the stack in {settings.state_dir} has no CA yet; "
                          "`stadspuls up` makes one")
    return authority


def _certificate(authority: Authority | None, issued: credentials.Credentials,
                 cert_dir: Path | None) -> tuple[Path, Path] | None:
    identity = issued.account.cert_identity
    if authority is None or cert_dir is None or identity is None:
        return None
    return issue_client_certificate(authority, issued.username, identity, cert_dir)


def _print_secret(issued: credentials.Credentials, done: str,
                  certificate: tuple[Path, Path] | None, as_json: bool) -> None:
    if as_json:
        out: dict[str, Any] = {"username": issued.username, "kind": issued.account.kind,
                               "password": issued.secret}
        if certificate:
            out |= {"certificate": str(certificate[0]), "key": str(certificate[1]),
                    "common_name": issued.account.cert_identity}
        click.echo(json.dumps(out))
        click.echo(WARNING, err=True)
        return
    click.echo(f"{issued.account.kind} {issued.username}: broker credentials {done}\n"
               f"  username  {issued.username}\n"
               f"  password  {issued.secret}")
    if certificate:
        click.echo(f"  certificate  {certificate[0]}\n  key          {certificate[1]}\n"
                   f"  common name  {issued.account.cert_identity}")
    click.echo(WARNING, err=True)
