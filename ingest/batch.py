"""A batch: the rows and rejects of consecutive messages, and the packet ids to acknowledge
once they are committed."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ingest.mapping import Mapped


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
