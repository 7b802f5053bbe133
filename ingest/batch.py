"""A batch: the rows and rejects of consecutive messages, and the packet ids to acknowledge
once they are committed. Its rejects are bounded in bytes too: a flood of refused messages
is written in batches of a few MiB, not held until the rows or messages fill one."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ingest.mapping import Mapped

REJECT_BYTES = 4 * 1024 * 1024


@dataclass
class Batch:
    """Messages received since the last flush, in arrival order."""

    generation: int
    mapped: Mapped = field(default_factory=Mapped)
    mids: list[int] = field(default_factory=list)
    messages: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def rows(self) -> int:
        return len(self.mapped.times)

    @property
    def empty(self) -> bool:
        return self.messages == 0

    def age(self) -> float:
        return time.monotonic() - self.started

    def full(self, max_rows: int, max_messages: int) -> bool:
        """Whether the batch should be written now, whatever its age."""
        return (self.rows >= max_rows or self.messages >= max_messages
                or self.mapped.reject_bytes >= REJECT_BYTES)
