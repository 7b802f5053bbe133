"""From an MQTT message to rows: who may speak for whom, which datastream a record feeds,
and whether its unit, type and time are acceptable. Every refusal carries its reason; a
message leaves at most one reject, within its sender's budget (ingest/rejects.py)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from core import senml
from ingest.registry import Registry, Target
from ingest.rejects import PAYLOAD_BYTES, OverBudget, Refusals, Reject, RejectBudget, whole

__all__ = ["Mapped", "Origin", "Reject", "Rules", "map_message", "sender", "sender_device",
           "sender_gateway"]

DEVICE_PREFIX = "urn:dev:"


@dataclass(frozen=True, slots=True)
class Rules:
    """Limits a message is held to, and the budget of rejects each sender may leave (which
    keeps its count across messages and batches)."""

    max_payload_bytes: int = 64 * 1024
    max_future_s: float = 300.0
    reject_payload_bytes: int = PAYLOAD_BYTES
    budget: RejectBudget = field(default_factory=RejectBudget, compare=False)


class Origin(NamedTuple):
    """The message the rows of a batch from `first_row` on came from (up to the next).

    A named tuple: every message with a reading makes one, and a frozen dataclass costs
    about twice as much to build."""

    first_row: int
    topic: str
    device_id: str | None


@dataclass(slots=True)
class Mapped:
    """What one message yields: columns of rows to store, and rejects."""

    times: list[float] = field(default_factory=list)  # seconds since the epoch
    datastreams: list[int] = field(default_factory=list)
    features: list[int | None] = field(default_factory=list)
    numbers: list[float | None] = field(default_factory=list)
    integers: list[int | None] = field(default_factory=list)
    strings: list[str | None] = field(default_factory=list)
    booleans: list[bool | None] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    # Rejects past their sender's budget, counted by (topic, window).
    over_budget: dict[tuple[str, float], OverBudget] = field(default_factory=dict)
    # The message of each row: the rows from each origin's first_row, in order.
    origins: list[Origin] = field(default_factory=list)
    reject_bytes: int = 0  # what `rejects` hold, roughly
    only_numbers: bool = True  # every row's result is in `numbers`

    def reject(self, reject: Reject, budget: RejectBudget) -> None:
        """Keep `reject` if its sender is within budget; else count it in a summary."""
        if budget.admit(reject.topic, reject.received):
            self.rejects.append(reject)
            self.reject_bytes += reject.size()
            return
        window = budget.window_of(reject.received)
        summary = self.over_budget.get((reject.topic, window))
        if summary is None:
            summary = self.over_budget[reject.topic, window] = OverBudget(
                reject.topic, window, sender_device(reject.topic), budget.reason())
        summary.count(reject)

    def refused_by_code(self) -> Counter[str]:
        """The records (or whole messages) refused, kept or counted, by code."""
        total: Counter[str] = Counter()
        for reject in self.rejects:
            total.update(reject.by_code())
        for summary in self.over_budget.values():
            total.update(summary.codes)
        return total

    def add(self, time: float, datastream: int, number: float | None = None,
            integer: int | None = None, string: str | None = None,
            boolean: bool | None = None, feature: int | None = None) -> None:
        """One row; its result in the one column its type chooses."""
        self.times.append(time)
        self.datastreams.append(datastream)
        self.features.append(feature)
        self.numbers.append(number)
        self.integers.append(integer)
        self.strings.append(string)
        self.booleans.append(boolean)
        if number is None:
            self.only_numbers = False


def sender(topic: str) -> tuple[str, str] | None:
    """("devices" | "gateways", id) for a topic ending in {kind}/{id}/senml, else None."""
    parts = topic.rsplit("/", 3)
    if len(parts) < 3 or parts[-1] != "senml" or parts[-3] not in ("devices", "gateways"):
        return None
    return parts[-3], parts[-2]


def sender_device(topic: str) -> str | None:
    """The device id of a device topic (devices/{id}/senml), else None."""
    who = sender(topic)
    return who[1] if who is not None and who[0] == "devices" else None


def sender_gateway(topic: str) -> str | None:
    """The gateway id of a gateway topic (gateways/{id}/senml), else None."""
    who = sender(topic)
    return who[1] if who is not None and who[0] == "gateways" else None


def map_message(
    topic: str, payload: bytes, received: float, registry: Registry, rules: Rules,
    out: Mapped,
) -> None:
    """Append the rows and rejects of one message to `out`.

    Args:
        topic: the MQTT topic it arrived on.
        payload: the raw body.
        received: reception time (seconds since the epoch).
        registry: the current registry view.
        rules: the limits to apply.
        out: where rows and rejects are collected.
    """
    who = sender(topic)
    if who is None:
        out.reject(whole(topic, payload, "topic", "topic is not devices/{id}/senml or "
                         "gateways/{id}/senml", received, None, rules.reject_payload_bytes),
                   rules.budget)
        return
    kind, sender_id = who
    device_topic = kind == "devices"
    publisher = sender_id if device_topic else None
    if len(payload) > rules.max_payload_bytes:
        # Only the first part is kept: the reject must not cost what the limit protects.
        out.reject(whole(topic, payload, "too_large",
                         f"payload of {len(payload)} bytes exceeds the limit of "
                         f"{rules.max_payload_bytes}", received, publisher,
                         rules.reject_payload_bytes), rules.budget)
        return
    try:
        records = senml.decode(payload, received, registry.streams)
    except senml.PackError as exc:
        out.reject(whole(topic, payload, exc.code, str(exc), received, publisher,
                         rules.reject_payload_bytes), rules.budget)
        return
    if not records:
        out.reject(whole(topic, payload, "empty_pack", "the pack has no records", received,
                         publisher, rules.reject_payload_bytes), rules.budget)
        return
    first_row = len(out.times)
    refusals = _map_records(records, kind, sender_id, received, registry, rules, out)
    if len(out.times) > first_row:
        out.origins.append(Origin(first_row, topic, publisher))
    if refusals is not None:
        out.reject(refusals.reject(topic, payload, received, publisher,
                                   rules.reject_payload_bytes), rules.budget)


def _map_records(
    records: list[senml.Resolved | senml.Invalid], kind: str, sender_id: str, received: float,
    registry: Registry, rules: Rules, out: Mapped,
) -> Refusals | None:
    """Append the rows of a decoded pack to `out`; its refused records, if any."""
    refusals: Refusals | None = None
    device_topic = kind == "devices"
    publisher = sender_id if device_topic else None
    streams = registry.streams
    own_prefix = f"{DEVICE_PREFIX}{sender_id}:"
    latest = received + rules.max_future_s
    for entry in records:
        if type(entry) is senml.Invalid:
            refusals = refusals or Refusals()
            refusals.add(entry.position, entry.code, entry.reason, publisher, entry.record)
            continue
        assert type(entry) is senml.Resolved
        name = entry.name
        if device_topic and not name.startswith(DEVICE_PREFIX):
            name = own_prefix + name
        target = streams.get(name)
        # The common case inline (Mapped.add spelled out: this runs for every reading): a
        # known datastream, its unit, a number, a sane time.
        if (target is not None and (entry.unit is None or entry.unit == target.unit)
                and entry.time <= latest and target.kind == "number"
                and type(entry.value) in (float, int)
                and target.low <= entry.value <= target.high  # type: ignore[operator]
                and (name.startswith(own_prefix) if device_topic
                     else registry.gateway_of.get(target.device_id) == sender_id)):
            out.times.append(entry.time)
            out.datastreams.append(target.datastream_id)
            out.features.append(target.feature_id)
            out.numbers.append(float(entry.value))
            out.integers.append(None)
            out.strings.append(None)
            out.booleans.append(None)
            continue
        problem = _refusal(entry, name, target, kind, sender_id, registry)
        if problem is None and entry.time > latest:
            problem = ("future_time",
                       f"time {_iso(entry.time)} is {entry.time - received:.0f} s in the "
                       f"future; at most {rules.max_future_s:.0f} s of clock skew is allowed")
        if problem is not None or target is None:
            code, reason = problem or ("unknown_record", "no datastream")
            refusals = refusals or Refusals()
            refusals.add(entry.position, code, reason, _device_of(name), entry)
            continue
        _append(out, entry, target)
    return refusals


def _refusal(
    entry: senml.Resolved, name: str, target: Target | None, kind: str, sender_id: str,
    registry: Registry,
) -> tuple[str, str] | None:
    """(code, reason) when the record may not be stored."""
    device = _device_of(name)
    if device is None:
        return "no_device", f"name {name!r} does not start with urn:dev:{{device id}}:"
    if kind == "devices" and device != sender_id:
        return "foreign_device", f"device {sender_id!r} may not publish for device {device!r}"
    if device not in registry.gateway_of:
        return "unknown_device", f"unknown device {device!r}"
    if kind == "gateways" and registry.gateway_of[device] != sender_id:
        return ("not_behind_gateway",
                f"device {device!r} is not registered behind gateway {sender_id!r}")
    if target is None:
        return ("unknown_record",
                f"device {device!r} has no datastream {name[len(device) + 9:]!r}")
    if entry.unit is not None and entry.unit != target.unit:
        return ("wrong_unit",
                f"unit {entry.unit!r} does not match the datastream's unit {target.unit!r}")
    reason = _type_refusal(entry.value, target.kind)
    if reason:
        return "wrong_type", reason
    value = entry.value
    if type(value) in (int, float) and not target.low <= value <= target.high:  # type: ignore[operator]
        return ("implausible",
                f"{value!r} {target.unit or ''} is outside the plausible range of "
                f"{target.property or 'the observed property'}, {target.low:g} to "
                f"{target.high:g}")
    return None


def _type_refusal(value: object, kind: str) -> str | None:
    is_bool = type(value) is bool
    if kind == "number" and (is_bool or not isinstance(value, int | float)):
        return f"datastream expects a number, got {_type_name(value)}"
    if kind == "integer" and (is_bool or not isinstance(value, int | float)
                              or value != int(value)
                              or not senml.INT64_MIN <= value <= senml.INT64_MAX):
        return f"datastream expects a 64-bit integer count, got {value!r}"
    if kind == "boolean" and not is_bool:
        return f"datastream expects a boolean, got {_type_name(value)}"
    if kind == "string" and not isinstance(value, str):
        return f"datastream expects a string, got {_type_name(value)}"
    return None


def _append(out: Mapped, entry: senml.Resolved, target: Target) -> None:
    value, at = entry.value, entry.time
    datastream, feature = target.datastream_id, target.feature_id
    if type(value) is bool:
        out.add(at, datastream, boolean=value, feature=feature)
    elif isinstance(value, str):
        out.add(at, datastream, string=value, feature=feature)
    elif target.kind == "integer" or (target.kind == "any" and isinstance(value, int)):
        out.add(at, datastream, integer=int(value), feature=feature)
    else:
        out.add(at, datastream, number=float(value), feature=feature)


def _device_of(name: str) -> str | None:
    if not name.startswith(DEVICE_PREFIX):
        return None
    device, sep, _ = name[len(DEVICE_PREFIX):].partition(":")
    return device if sep and device else None


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def _type_name(value: object) -> str:
    return {bool: "a boolean", str: "a string"}.get(type(value), "a number")
