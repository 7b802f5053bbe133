"""Pacing of retries and of repeated warnings, shared by the processes that talk to the
broker and the database."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable

import aiomqtt


def jittered(delay: float) -> float:
    """`delay` spread over ±50 %, so that clients cut off together do not return together."""
    return delay * random.uniform(0.5, 1.5)


class ThrottledWarning:
    """Counts occurrences of one problem and logs them at most once every `every_s`
    seconds, so that a broker that is away fills no log."""

    def __init__(self, log: logging.Logger, message: str, action: str,
                 every_s: float = 10.0) -> None:
        self.log = log
        self.message = message  # with one %d for the count and one %s for the detail
        self.action = action
        self.every_s = every_s
        self._unlogged = 0
        self._logged_at = 0.0

    def add(self, count: int, detail: str = "") -> None:
        self._unlogged += count
        now = time.monotonic()
        if self._unlogged and now - self._logged_at >= self.every_s:
            self.log.warning(self.message, self._unlogged, detail,
                             extra={"action": self.action})
            self._unlogged, self._logged_at = 0, now


async def reconnecting(session: Callable[[], Awaitable[None]], log: logging.Logger, what: str,
                       action: str, lost: Callable[[], None]) -> None:
    """Run `session` again and again until cancelled: after it ends or fails, call `lost`
    and wait with jittered exponential backoff (0.5 s doubling up to 30 s, back to 0.5 s
    after a session that ended by itself).

    Args:
        session: one connection's work; an MQTT error means the broker went away.
        log: where losses and failures are logged, with `what` naming the task and the
            actions `<action>_reconnect` and `<action>_failed`.
        what: the task, as a log message names it.
        action: the stem of the log actions.
        lost: called before each wait (clear readiness, forget what the session knew).
    """
    delay = 0.5
    while True:
        try:
            await session()
            delay = 0.5
        except aiomqtt.MqttError as exc:
            log.warning("%s lost the broker: %s; retrying in %.1f s", what, exc, delay,
                        extra={"action": f"{action}_reconnect"})
        except Exception:  # the task outlives any one failure
            log.exception("%s failed; restarting in %.1f s", what, delay,
                          extra={"action": f"{action}_failed"})
        lost()
        await asyncio.sleep(jittered(delay))
        delay = min(delay * 2, 30.0)
