"""Pacing of retries and of repeated warnings, shared by the processes that talk to the
broker and the database."""

from __future__ import annotations

import logging
import random
import time


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
