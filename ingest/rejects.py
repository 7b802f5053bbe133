"""Rejects, kept within bounds.

A message leaves at most one row in `rejected_messages`, however many of its records are
refused: the row counts them (`records`), counts them by code and names the first
`FIRST_REFUSALS` of them (`details`), and keeps the message once, cut to
`PAYLOAD_BYTES` with a note. Names and units have no length limit, so each text of the row is
cut too: a record in `details` to `RECORD_BYTES`, `details` to `DETAILS_BYTES`, the reason to
`REASON_BYTES`; a row holds at most `ROW_BYTES` of payload, details and reason.

Past `BUDGET_ROWS` rows a sender (a topic) may leave in one window of `BUDGET_WINDOW_S`,
its further rejects are not kept one by one: they are counted into one `over_budget` row
per sender and window. Nothing is dropped without its count.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import msgspec

from core import senml

PAYLOAD_BYTES = 16 * 1024
FIRST_REFUSALS = 10
RECORD_BYTES = 1024  # a refused record as `details` shows it
DETAIL_REASON_BYTES = 256  # the reason of one refused record in `details`
DETAILS_BYTES = 16 * 1024
REASON_BYTES = 2 * 1024
ROW_BYTES = PAYLOAD_BYTES + DETAILS_BYTES + REASON_BYTES
BUDGET_ROWS = 20
BUDGET_WINDOW_S = 60.0
OVER_BUDGET = "over_budget"
# What a reject costs in memory beyond its payload, reason and details (objects, topic).
OVERHEAD_BYTES = 300

_encoder = msgspec.json.Encoder()


@dataclass(slots=True)
class Reject:
    """A message, or records of it, that is not stored, and why.

    `records` is how many records (or 1, a message refused whole) the row stands for;
    `codes` counts them by code when there are several; `details` is the JSON of the
    first refusals; `payload_bytes` the size of the message as received.
    """

    topic: str
    payload: bytes
    code: str
    reason: str
    received: float
    device_id: str | None = None
    record_index: int | None = None
    records: int = 1
    codes: Counter[str] | None = None
    details: bytes | None = None
    payload_bytes: int | None = None

    def by_code(self) -> Counter[str]:
        """The refused records (or message) this reject stands for, by code."""
        return self.codes if self.codes is not None else Counter({self.code: self.records})

    def size(self) -> int:
        """Roughly what the reject holds in memory until it is written, in bytes."""
        return (len(self.payload) + len(self.reason) + len(self.details or b"")
                + len(self.topic) + OVERHEAD_BYTES)


def clip(text: str, limit: int) -> str:
    """`text`, at most `limit` bytes of UTF-8 with a note if it was cut."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    note = f"… (cut from {len(encoded)} bytes)"
    return encoded[:limit - len(note.encode())].decode(errors="ignore") + note


def cut(payload: bytes, reason: str, limit: int) -> tuple[bytes, str]:
    """The payload as kept, at most `limit` bytes, and the reason with a note if it was cut;
    the reason is at most `REASON_BYTES`."""
    if len(payload) <= limit:
        return payload, clip(reason, REASON_BYTES)
    note = f"; the payload is cut to its first {limit} of {len(payload)} bytes"
    return payload[:limit], clip(reason, REASON_BYTES - len(note)) + note


def whole(topic: str, payload: bytes, code: str, reason: str, received: float,
          device_id: str | None, limit: int = PAYLOAD_BYTES) -> Reject:
    """A message refused as a whole."""
    kept, reason = cut(payload, reason, limit)
    return Reject(topic, kept, code, reason, received, device_id, payload_bytes=len(payload))


class Refusals:
    """The refused records of one message: every one counted, the first few described."""

    __slots__ = ("codes", "count", "device_id", "first", "index")

    def __init__(self) -> None:
        self.count = 0
        self.codes: Counter[str] = Counter()
        self.first: list[dict[str, object]] = []
        self.device_id: str | None = None
        self.index: int | None = None

    def add(self, position: int | None, code: str, reason: str, device_id: str | None,
            record: bytes | senml.Resolved) -> None:
        """One refused record; `record` as sent (bytes) or as resolved (JSON bytes)."""
        self.count += 1
        self.codes[code] += 1
        if len(self.first) >= FIRST_REFUSALS:
            return
        if not self.first:
            self.device_id, self.index = device_id, position
        raw = record if isinstance(record, bytes) else senml.encode_resolved(record)
        refusal: dict[str, object] = {"index": position, "code": code,
                                      "reason": clip(reason, DETAIL_REASON_BYTES)}
        if len(raw) <= RECORD_BYTES:
            refusal["record"] = msgspec.Raw(raw)
        else:  # its first bytes as text, and its size: it is no longer JSON
            refusal["record_cut"] = raw[:RECORD_BYTES].decode(errors="ignore")
            refusal["record_bytes"] = len(raw)
        self.first.append(refusal)

    def reject(self, topic: str, payload: bytes, received: float, publisher: str | None,
               limit: int = PAYLOAD_BYTES) -> Reject:
        """The one row of the message: its first refusal's code and reason, and the count."""
        first = self.first[0]
        code, reason = str(first["code"]), str(first["reason"])  # cut in `add`
        if self.count > 1:
            others = ", ".join(f"{c} {n:,}" for c, n in self.codes.most_common())
            reason = f"{reason}; {self.count:,} records refused in all ({others})"
        kept, reason = cut(payload, reason, limit)
        details = self.details()
        return Reject(topic, kept, code, reason, received, self.device_id or publisher,
                      self.index, self.count, self.codes, details, len(payload))

    def details(self) -> bytes:
        """The counts by code and the first refusals, at most `DETAILS_BYTES`: the last
        refusals are left out (and counted in `first_left_out`) until they fit."""
        first = list(self.first)
        details = _encoder.encode({"codes": dict(self.codes), "first": first})
        while len(details) > DETAILS_BYTES and first:
            first.pop()
            details = _encoder.encode({"codes": dict(self.codes), "first": first,
                                       "first_left_out": len(self.first) - len(first)})
        return details


@dataclass(slots=True)
class OverBudget:
    """The rejects of one sender in one window past its budget: counted, not kept."""

    topic: str
    window: float
    device_id: str | None
    reason: str
    messages: int = 0
    records: int = 0
    codes: Counter[str] = field(default_factory=Counter)

    def count(self, reject: Reject) -> None:
        self.messages += 1
        self.records += reject.records
        self.codes.update(reject.by_code())

    def details(self) -> str:
        return _encoder.encode({"messages": self.messages, "codes": dict(self.codes)}).decode()

    def plus(self, other: OverBudget) -> OverBudget:
        """A new summary counting both, which leaves this one as it was."""
        return OverBudget(self.topic, self.window, self.device_id, self.reason,
                          self.messages + other.messages, self.records + other.records,
                          self.codes + other.codes)


def merged(a: dict[tuple[str, float], OverBudget],
           b: dict[tuple[str, float], OverBudget]) -> list[OverBudget]:
    """The summaries of both, one per sender and window (`a` and `b` are left as they were)."""
    out = dict(a)
    for key, summary in b.items():
        out[key] = out[key].plus(summary) if key in out else summary
    return list(out.values())


class RejectBudget:
    """How many reject rows each sender may still leave in the current window.

    Args:
        rows: reject rows a sender may leave per window.
        window_s: the length of a window, in seconds.
    """

    def __init__(self, rows: int = BUDGET_ROWS, window_s: float = BUDGET_WINDOW_S) -> None:
        self.rows = rows
        self.window_s = window_s
        self._window = -math.inf
        self._used: Counter[str] = Counter()

    def window_of(self, at: float) -> float:
        """The start of the window `at` falls in (seconds since the epoch)."""
        return math.floor(at / self.window_s) * self.window_s

    def admit(self, sender: str, at: float) -> bool:
        """Whether `sender` may leave one more reject row at `at`; counts it if so."""
        window = self.window_of(at)
        if window != self._window:
            # A new window: every sender starts afresh, and the old counts go.
            self._window = window
            self._used.clear()
        if self._used[sender] >= self.rows:
            return False
        self._used[sender] += 1
        return True

    def reason(self) -> str:
        return (f"over the sender's budget of {self.rows} reject rows per "
                f"{self.window_s:g} s: its further rejects in this window are counted here "
                "(records; messages and codes in details), not kept one by one")
