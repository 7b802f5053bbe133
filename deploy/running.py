"""Commands that work on the database of a stack that is already up, and the broker's side
of those that change who may use it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from core.database import connect
from deploy import stack as stacks
from deploy.access import StackAccess
from deploy.errors import BrokerNotUpdated
from deploy.process import read_pid
from deploy.settings import StackSettings
from devices.broker_access import reload_broker, render, write
from devices.errors import BrokerAccessError

T = TypeVar("T")

# A database that does not answer within this time is not starting, it is not there.
CONNECT_WAIT_S = 3


def on_database(database_url: str, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run `work(conn)` on a connection to `database_url`, closed after it."""

    async def run() -> T:
        conn = await connect(database_url, wait=CONNECT_WAIT_S)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(run())


@dataclass(frozen=True)
class BrokerFollowed:
    """What became of the broker after an access change: a note for the user, and the
    failure to report (after the change's own output, say a new secret) if it missed it."""

    note: str | None = None
    failure: BrokerNotUpdated | None = None


def changing_access(settings: StackSettings, database_url: str | None,
                    work: Callable[[Any], Awaitable[T]]) -> tuple[T, BrokerFollowed]:
    """Run `work(conn)`, a change of who may use the broker (a revocation, a rotation, a
    key, a restricted Datastream), on the local stack's database or `database_url`; then
    make sure the broker follows it.

    While the stack's supervisor runs, its sync renders the broker's access files on the
    change's notification. Without it nothing would: this renders them here and signals
    the broker (SIGHUP) to reload them, or reports that the broker was not updated. A
    database other than the local stack's is left to the supervisor beside its broker.

    Returns:
        What `work` returned, and what became of the broker.
    """
    running = stacks.settings_of_running_stack(settings)
    url = database_url or running.database_url

    async def run() -> tuple[T, BrokerFollowed]:
        conn = await connect(url, wait=CONNECT_WAIT_S)
        try:
            done = await work(conn)
            return done, await _follow(running, url, conn)
        finally:
            await conn.close()

    return asyncio.run(run())


async def _follow(settings: StackSettings, url: str, conn: Any) -> BrokerFollowed:
    state = settings.state_dir.resolve()
    if read_pid(state / stacks.SUPERVISOR_PID) is not None:
        return BrokerFollowed()  # its sync has the notification
    if url != settings.database_url:
        return BrokerFollowed()  # not this stack's: its broker is its own supervisor's
    access = StackAccess(state, state / "mosquitto", stacks.service_user())
    if not settings.mqtt_auth or not access.target.password_file.parent.exists():
        return BrokerFollowed()  # no broker with access files here
    try:
        files = await render(conn, access.services())
        await asyncio.to_thread(write, files, access.target)
    except (OSError, BrokerAccessError) as exc:
        return BrokerFollowed(failure=BrokerNotUpdated(
            "the change is in the database, but the supervisor of the stack in "
            f"{state} is not running and the broker's access files could not be "
            f"written here ({exc}): the broker may still admit what the change took "
            "away; run this as the user who started the stack, or `stadspuls up`"))
    if reload_broker(access.target.pid_file):
        return BrokerFollowed(note=(
            "the stack's supervisor is not running: the broker's access files were "
            "written here and the broker reloaded them"))
    return BrokerFollowed(note=(
        "the stack's supervisor and broker are not running: the broker's access files "
        "were written here and the broker reads them when it starts"))
