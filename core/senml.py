"""SenML (RFC 8428) in JSON: decoding a pack and resolving its records.

Resolution follows RFC 8428 section 4.6: base fields apply to their own record and all that
follow until changed; the name is base name + name, the time base time + time, and a
resolved time below 2**28 is relative to the moment of reception. A record must carry
exactly one value (v, vs, vb or vd).

The typed decoder handles well-formed packs in one pass. A pack it refuses because of a
type error in one record is decoded again loosely and checked record by record, so that the
good records of a mixed pack are kept and each bad one gets its own reason.
"""

from __future__ import annotations

import math
import re
from collections.abc import Container
from typing import Any, NamedTuple

import msgspec

RELATIVE_TIME_LIMIT = 2**28
LATEST_TIME = 253_402_300_800.0  # 10000-01-01: past it no timestamp can hold the time
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-:./_]*\Z")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
SUPPORTED_VERSION = 10


class Record(msgspec.Struct, omit_defaults=True):
    """One SenML record as sent; every field optional."""

    bn: str | None = None
    bt: float | None = None
    bu: str | None = None
    bv: float | None = None
    bver: int | None = None
    n: str | None = None
    u: str | None = None
    v: int | float | None = None
    vs: str | None = None
    vb: bool | None = None
    vd: str | None = None
    s: float | None = None
    t: float | None = None


_new_tuple = tuple.__new__
_decoder = msgspec.json.Decoder(list[Record])
# Out-of-range numbers become infinities here, so that only their own record is refused.
_loose = msgspec.json.Decoder(float_hook=float)
_encoder = msgspec.json.Encoder()


class PackError(ValueError):
    """The payload as a whole is not a SenML pack."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


class Resolved(NamedTuple):
    """A record after resolution: full name, absolute time, unit and one value."""

    position: int
    name: str
    time: float
    unit: str | None
    value: int | float | str | bool


class Invalid(NamedTuple):
    """A record that cannot be resolved: a stable code, the reason, the record as sent.

    A named tuple, like Resolved: a pack of thousands of bad records makes one each, and a
    frozen dataclass costs several times as much to build."""

    position: int
    code: str
    reason: str
    record: bytes


def decode(
    payload: bytes, received: float, known: Container[str] = frozenset()
) -> list[Resolved | Invalid]:
    """Resolve every record of a SenML JSON pack.

    Args:
        payload: the raw message body.
        received: reception time, seconds since the epoch, for relative times.
        known: names already known to be valid (they skip the name-rule check).

    Returns:
        One entry per record, in order: resolved, or invalid with its reason.

    Raises:
        PackError: the payload is empty, not UTF-8, not JSON, or not an array of records.
    """
    if not payload:
        raise PackError("empty", "empty payload")
    _check_utf8(payload)
    try:
        records = _decoder.decode(payload)
    except msgspec.ValidationError:
        return _decode_loosely(payload, received)
    except msgspec.DecodeError as exc:
        raise PackError("invalid_json", f"payload is not valid JSON: {exc}") from None
    return resolve(records, received, known)


def _check_utf8(payload: bytes) -> None:
    # Checked here rather than left to the JSON decoder, whose error for bad UTF-8 differs
    # between versions; nearly every payload is ASCII, which needs no decoding.
    if payload.isascii():
        return
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PackError("not_utf8", f"payload is not valid UTF-8 (byte {exc.start})") from None


def resolve(
    records: list[Record], received: float, known: Container[str] = frozenset()
) -> list[Resolved | Invalid]:
    """Resolve decoded records against their base fields (RFC 8428 section 4.6).

    Args:
        records: the decoded pack.
        received: reception time, for relative times.
        known: names already known to be valid (they skip the name-rule check).

    Returns:
        One entry per record, in order.
    """
    out: list[Resolved | Invalid] = []
    bn, bt, bu, bv, bver = "", 0.0, None, 0.0, None
    for i, r in enumerate(records):
        if r.bver is not None:
            bver = r.bver
        if bver is not None and bver > SUPPORTED_VERSION:
            # A base field: the record that declares it and every one after it.
            out.append(Invalid(i, "version", f"SenML version {bver} is newer than "
                               f"{SUPPORTED_VERSION}", _encoder.encode(r)))
            continue
        if r.bn is not None:
            bn = r.bn
        if r.bt is not None:
            bt = r.bt
        if r.bu is not None:
            bu = r.bu
        if r.bv is not None:
            bv = r.bv
        v = r.v
        value: int | float | str | bool
        # The common case, a plain number (a count within 64 bits included), is checked
        # inline; anything else in _check.
        if (v is None or r.vs is not None or r.vb is not None or r.vd is not None
                or r.bver is not None
                or (type(v) is int and not INT64_MIN <= v <= INT64_MAX)):
            problem = _check(r)
            if problem is not None:
                out.append(Invalid(i, *problem, _encoder.encode(r)))
                continue
            value = _value(r, bv)
        else:
            value = v + bv if bv else v
        if type(value) is float and not math.isfinite(value):
            out.append(Invalid(i, "not_finite", "value is not a finite number",
                               _encoder.encode(r)))
            continue
        name = bn + r.n if r.n is not None else bn
        if name not in known and not NAME.match(name):
            out.append(Invalid(i, "bad_name", f"name {name!r} breaks the SenML name rules",
                               _encoder.encode(r)))
            continue
        time = bt + r.t if r.t is not None else bt
        if time < RELATIVE_TIME_LIMIT:
            time += received
        if not 0 <= time < LATEST_TIME:
            out.append(Invalid(i, "bad_time", f"time {time!r} is not between 1970 and 9999",
                               _encoder.encode(r)))
            continue
        # tuple.__new__ directly: the named tuple's own constructor is a Python-level call,
        # a few percent of ingest's time at full load.
        out.append(_new_tuple(Resolved, (i, name, time, r.u if r.u is not None else bu, value)))
    return out


def encode_resolved(entry: Resolved) -> bytes:
    """A resolved record as a self-contained SenML JSON record (for keeping a reject)."""
    field = {bool: "vb", str: "vs"}.get(type(entry.value), "v")
    record: dict[str, Any] = {"n": entry.name, "t": entry.time, field: entry.value}
    if entry.unit is not None:
        record["u"] = entry.unit
    return _encoder.encode(record)


def _check(r: Record) -> tuple[str, str] | None:
    """(code, reason) when the record cannot be resolved."""
    values = sum(x is not None for x in (r.v, r.vs, r.vb, r.vd))
    if values == 0 and r.s is not None:
        return "sum", "sum values are not accepted"
    if values == 0:
        return "no_value", "record has no value"
    if values > 1:
        return "several_values", "record has more than one value"
    if isinstance(r.v, float) and not math.isfinite(r.v):
        return "not_finite", "value is not a finite number"
    if isinstance(r.v, int) and not INT64_MIN <= r.v <= INT64_MAX:
        return "int_range", "integer value does not fit in 64 bits"
    return None


def _value(r: Record, bv: float) -> int | float | str | bool:
    if r.v is not None:
        return r.v + bv if bv else r.v
    if r.vb is not None:
        return r.vb
    if r.vs is not None:
        return r.vs
    return str(r.vd)


def _decode_loosely(payload: bytes, received: float) -> list[Resolved | Invalid]:
    try:
        raw = _loose.decode(payload)
    except msgspec.DecodeError as exc:
        raise PackError("invalid_json", f"payload is not valid JSON: {exc}") from None
    if not isinstance(raw, list):
        raise PackError("not_array", f"a SenML pack is a JSON array, not {_json_kind(raw)}")
    checked: list[Record | Invalid] = []
    for i, item in enumerate(raw):
        try:
            checked.append(msgspec.convert(item, Record))
        except msgspec.ValidationError as exc:
            checked.append(Invalid(i, "bad_field", f"record {i}: {exc}", _encoder.encode(item)))
    good = [r for r in checked if isinstance(r, Record)]
    resolved = iter(resolve(good, received)) if good else iter(())
    # Base fields of a rejected record do not carry over: its fields could not be read.
    out: list[Resolved | Invalid] = []
    for i, entry in enumerate(checked):
        if isinstance(entry, Invalid):
            out.append(entry)
            continue
        result = next(resolved)
        out.append(_reindex(result, i))
    return out


def _reindex(entry: Resolved | Invalid, index: int) -> Resolved | Invalid:
    if isinstance(entry, Resolved):
        return Resolved(index, entry.name, entry.time, entry.unit, entry.value)
    return Invalid(index, entry.code, entry.reason, entry.record)


def _json_kind(value: Any) -> str:
    kinds = {dict: "an object", str: "a string", bool: "a boolean", type(None): "null"}
    return kinds.get(type(value), "a number")
