"""Commands for access: API keys, agencies, and which Datastreams are restricted.

    stadspuls keys create --agency traffic --role writer --label "signal timing" --days 30
    stadspuls keys list [--agency CODE] [--json]
    stadspuls keys revoke KEY_ID
    stadspuls agencies [--json]
    stadspuls datastreams restrict|open ID...
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import click

from api.keys import KeyRefused, NewKey, create_key, expiry, list_keys, revoke_key
from api.principal import ROLES
from core.queries import query
from deploy.device_commands import report_broker
from deploy.running import BrokerFollowed, changing_access, on_database
from deploy.settings import StackSettings

T = TypeVar("T")


def _run(database_url: str, work: Callable[[Any], Awaitable[T]]) -> T:
    try:
        return on_database(database_url, work)
    except KeyRefused as exc:
        raise click.ClickException(str(exc)) from None


def _change(settings: StackSettings, database_url: str | None,
            work: Callable[[Any], Awaitable[T]]) -> tuple[T, BrokerFollowed]:
    """Run an access change and make sure the broker follows it (deploy/running.py); the
    caller prints its outcome, then `report_broker`."""
    try:
        return changing_access(settings, database_url, work)
    except KeyRefused as exc:
        raise click.ClickException(str(exc)) from None


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"


def register(cli: click.Group, database_option: Callable[..., Any],
             stack_options: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    """Add the access commands to `cli`; `database_option` is the CLI's --database-url,
    `stack_options` its choice of local stack. The commands that change who may use the
    broker take both: --database-url, and the stack whose broker must follow."""

    def changes_access(command: Callable[..., Any]) -> Callable[..., Any]:
        command = click.option("--database-url", envvar="STADSPULS_DATABASE_URL",
                               help="PostgreSQL URL [the local stack's database]")(command)
        return stack_options(command)

    @cli.group()
    def keys() -> None:
        """API keys of agencies: create (shown once), list, revoke."""

    @keys.command("create")
    @changes_access
    @click.option("--agency", required=True, help="Code of the agency the key acts for.")
    @click.option("--role", required=True, type=click.Choice(ROLES),
                  help="reader: reads its agency's restricted data; writer: also writes "
                       "its agency's entities; admin: everything.")
    @click.option("--label", required=True, help="What the key is for (shown in lists).")
    @click.option("--days", type=click.IntRange(min=1),
                  help="Days until the key expires [90].")
    @click.option("--expires", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
                  help="Expiry date instead of --days (UTC), e.g. 2027-03-01.")
    def keys_create(settings: StackSettings, database_url: str | None, agency: str, role: str,
                    label: str, days: int | None, expires: datetime | None) -> None:
        """Create an API key and print it, once."""
        if days is not None and expires is not None:
            raise click.UsageError("give --days or --expires, not both")
        try:
            until = expiry(days, expires)
        except KeyRefused as exc:
            raise click.UsageError(str(exc)) from None
        made: NewKey
        made, broker = _change(settings, database_url,
                               lambda conn: create_key(conn, agency, role, label, until))
        click.echo(f"key {made.key_id} ({made.role} of {made.agency}, "
                   f"expires {_when(made.expires_at)} UTC)\n")
        click.echo(f"  {made.text}\n")
        click.echo("It is shown only now; store it as a secret. Use it as\n"
                   f"  HTTP:  curl -H 'Authorization: Bearer <key>' ...\n"
                   f"  MQTT:  username {made.key_id}, password <key>")
        report_broker(broker)

    @keys.command("list")
    @database_option
    @click.option("--agency", help="Only the keys of this agency.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
    def keys_list(database_url: str, agency: str | None, as_json: bool) -> None:
        """Show the keys (never their secrets)."""
        rows = _run(database_url, lambda conn: list_keys(conn, agency))
        if as_json:
            click.echo(json.dumps(rows, default=str, ensure_ascii=False))
            return
        click.echo(f"{'key_id':<13} {'agency':<20} {'role':<7} {'created':<17} "
                   f"{'expires':<17} {'state':<8} label")
        for r in rows:
            state = "revoked" if r["revoked_at"] else "expired" if r["expired"] else "active"
            click.echo(f"{r['key_id']:<13} {r['agency']:<20} {r['role']:<7} "
                       f"{_when(r['created_at']):<17} {_when(r['expires_at']):<17} "
                       f"{state:<8} {r['label']}")
        click.echo(f"{len(rows)} keys")

    @keys.command("revoke")
    @changes_access
    @click.argument("key_id")
    def keys_revoke(settings: StackSettings, database_url: str | None, key_id: str) -> None:
        """Revoke a key: the API refuses it within seconds, the broker at once (or the
        command fails, saying the broker was not updated)."""
        revoked, broker = _change(settings, database_url,
                                          lambda conn: revoke_key(conn, key_id))
        click.echo(f"revoked {key_id} at {_when(revoked)} UTC")
        report_broker(broker)

    @cli.command()
    @database_option
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
    def agencies(database_url: str, as_json: bool) -> None:
        """Each agency with its devices, open and restricted Datastreams, active keys."""

        async def fetch(conn: Any) -> list[dict[str, Any]]:
            return [dict(r) for r in await conn.fetch(query("api_access", "agencies_overview"))]

        rows = _run(database_url, fetch)
        if as_json:
            click.echo(json.dumps(rows, ensure_ascii=False))
            return
        click.echo(f"{'agency':<20} {'devices':>7} {'open':>6} {'restricted':>10} "
                   f"{'keys':>5}  name")
        for r in rows:
            click.echo(f"{r['code']:<20} {r['devices']:>7} {r['open_datastreams']:>6} "
                       f"{r['restricted_datastreams']:>10} {r['active_keys']:>5}  {r['name']}")

    @cli.group()
    def datastreams() -> None:
        """Who may read a Datastream: open to all, or restricted to its agency."""

    def set_access(access: str) -> Callable[..., None]:
        def command(settings: StackSettings, database_url: str | None,
                    ids: tuple[int, ...]) -> None:
            async def update(conn: Any) -> set[int]:
                rows = await conn.fetch(query("api_access", "set_datastream_access"),
                                        list(ids), access)
                return {r["id"] for r in rows}

            changed, broker = _change(settings, database_url, update)
            missing = sorted(set(ids) - changed)
            if changed:
                click.echo(f"{access}: {', '.join(str(i) for i in sorted(changed))}")
            report_broker(broker)
            if missing:
                raise click.ClickException(
                    f"no Datastream {', '.join(str(i) for i in missing)}")

        return command

    for access, verb, doc in (("restricted", "restrict",
                               "Restrict Datastreams to their agency's keys (and admins)."),
                              ("open", "open", "Open Datastreams to everyone.")):
        command = set_access(access)
        command.__doc__ = doc
        datastreams.command(verb)(changes_access(
            click.argument("ids", nargs=-1, type=int, required=True)(command)))
