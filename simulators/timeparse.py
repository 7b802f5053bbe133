"""Reading the times a user gives on the command line."""

from __future__ import annotations

import re
import time
from datetime import datetime

from simulators.calendar import STOCKHOLM
from simulators.errors import BadTimeRange

_RELATIVE = re.compile(r"^(?P<sign>[-+])(?P<amount>\d+)(?P<unit>[mhd])$")
_UNIT_SECONDS = {"m": 60, "h": 3_600, "d": 86_400}


def parse_time(text: str, now: float | None = None) -> int:
    """A time as epoch seconds, floored to the whole minute.

    Args:
        text: ``now``; a relative time such as ``-30d``, ``-6h`` or ``+90m``; or an ISO 8601
            date or date and time (``2026-10-01``, ``2026-10-01T08:00``), read as Stockholm
            local time unless it names its own offset.
        now: the current time, for relative times; the wall clock when None.

    Returns:
        Seconds since the epoch, a multiple of 60.

    Raises:
        BadTimeRange: the text is none of those.
    """
    current = time.time() if now is None else now
    relative = _RELATIVE.match(text.strip())
    if text.strip() == "now":
        epoch = current
    elif relative:
        seconds = int(relative["amount"]) * _UNIT_SECONDS[relative["unit"]]
        epoch = current + (seconds if relative["sign"] == "+" else -seconds)
    else:
        try:
            when = datetime.fromisoformat(text.strip())
        except ValueError:
            raise BadTimeRange(
                f"cannot read the time {text!r}; give 2026-10-01, 2026-10-01T08:00, "
                "now, or -30d / -6h / +90m"
            ) from None
        epoch = (when if when.tzinfo else when.replace(tzinfo=STOCKHOLM)).timestamp()
    return int(epoch // 60) * 60
