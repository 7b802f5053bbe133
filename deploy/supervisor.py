"""The supervision of a local stack: a service that exits is started again after the
delay its `RestartPolicy` sets (the database and the broker before the programs that use
them), each start in a thread so that a slow one leaves the others watched, until it
crashes too often."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from deploy.errors import ServiceFailed
from deploy.process import RestartPolicy

if TYPE_CHECKING:
    from deploy.stack import LocalStack

log = logging.getLogger(__name__)


async def supervise(stack: LocalStack, stop: asyncio.Event,
                    new_policy: Callable[[], RestartPolicy] = RestartPolicy) -> None:
    """Watch the stack's services until `stop` is set, and start each one that exits
    again after the delay its own policy (made by `new_policy`) sets; the database and
    the broker before the programs that use them. A restart that fails counts as a crash.

    Raises:
        ServiceFailed: a service crashed as often as its policy allows; the caller stops
            the rest.
    """
    restarts = _Restarts(stack, new_policy)
    try:
        while not stop.is_set():
            restarts.collect_started()
            restarts.notice_exits()
            restarts.start_due()
            try:
                async with asyncio.timeout(0.25):
                    await stop.wait()
            except TimeoutError:
                pass
    finally:
        await restarts.settle()


# Restarted before the programs, which cannot start without them.
FOUNDATIONS = ("database", "broker")


class _Restarts:
    """The services waiting to be started again, those being started (each in a thread,
    so that a slow start leaves the others watched), and each one's crash history."""

    def __init__(self, stack: LocalStack, new_policy: Callable[[], RestartPolicy]) -> None:
        self.stack = stack
        self.new_policy = new_policy
        self.policies: dict[str, RestartPolicy] = {}
        self.exited_at: dict[str, float] = {}
        self.due: dict[str, float] = {}
        self.starting: dict[str, asyncio.Task[None]] = {}
        self.abandon = threading.Event()

    def notice_exits(self) -> None:
        now = time.monotonic()
        for name in self.stack.exited():
            if name in self.due or name in self.starting:
                continue
            self.exited_at.setdefault(name, now)
            self._crashed(name, f"exited ({self.stack.service(name).exit_status()})", now)

    def start_due(self) -> None:
        now = time.monotonic()
        for name, when in list(self.due.items()):
            if when > now:
                continue
            if name not in FOUNDATIONS and any(
                    f in self.due or f in self.starting for f in FOUNDATIONS):
                continue  # the programs need the database and the broker back first
            del self.due[name]
            self.starting[name] = asyncio.create_task(
                asyncio.to_thread(self.stack.restart, name, self.abandon.is_set),
                name=f"supervisor.restart_{name}")

    def collect_started(self) -> None:
        for name, task in list(self.starting.items()):
            if not task.done():
                continue
            del self.starting[name]
            failure = task.exception()
            if isinstance(failure, ServiceFailed):
                reason = str(failure).splitlines()[0].rstrip(":")
                self._crashed(name, f"did not come back ({reason})", time.monotonic())
            elif failure is not None:
                raise failure
            else:
                self.policies[name].came_back()
                log.info("%s restarted (pid %s), %.1f s after it exited", name,
                         self.stack.service(name).pid,
                         time.monotonic() - self.exited_at.pop(name),
                         extra={"action": "service_restarted"})

    async def settle(self) -> None:
        """Abandon the starts under way and wait for their threads to end."""
        self.abandon.set()
        await asyncio.gather(*self.starting.values(), return_exceptions=True)
        self.starting.clear()

    def _crashed(self, name: str, how: str, now: float) -> None:
        """Count a crash of `name`; plan its restart, or raise ServiceFailed: give up."""
        process = self.stack.service(name)
        policy = self.policies.setdefault(name, self.new_policy())
        delay = policy.crashed(now)
        if delay is None:
            log.error("%s %s, %s; stopping the stack; see %s", name, how, policy.describe(),
                      process.logfile, extra={"action": "service_given_up"})
            raise ServiceFailed(f"{name} given up after {policy.describe()}; "
                                f"see {process.logfile}")
        log.warning("%s %s; restarting in %.1f s (crash %d within %.0f s; the stack stops "
                    "at %d); see %s", name, how, delay, policy.recent, policy.window_s,
                    policy.max_crashes, process.logfile, extra={"action": "service_exited"})
        self.due[name] = now + delay
