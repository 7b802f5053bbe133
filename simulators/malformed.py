"""Malformed payloads, one maker per kind, each built from a real pack of the minute.

Every payload here is something ingest must reject with a reason and survive. None of them
carries a valid reading, so the count of good readings a run publishes does not depend on
how many malformed payloads went with them.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import msgspec

Pack = list[dict[str, Any]]

# Over ingest's 64 KiB limit, under the broker's 256 KiB packet limit (which would drop
# the publisher's connection); a gateway's minute for a hundred stations is about 60 kB.
OVERSIZE_BYTES = 100_000
# Ten years ahead is "far in the future" by any clock-skew tolerance.
FUTURE_SECONDS = 10 * 365 * 86_400


def encode(pack: Any) -> bytes:
    """A pack as compact JSON bytes; the same pack gives the same bytes."""
    return msgspec.json.encode(pack)


def first_record(pack: Pack) -> dict[str, Any]:
    """The pack's first record, which carries the base name and base time."""
    return dict(pack[0])


def _invalid_json(pack: Pack, rng: random.Random) -> bytes:
    text = encode(pack)
    return text[: max(1, len(text) // 2)]


def _non_utf8(pack: Pack, rng: random.Random) -> bytes:
    return encode([first_record(pack)]).replace(b"urn:dev:", b"urn:dev:\xff\xfe", 1)


def _empty(pack: Pack, rng: random.Random) -> bytes:
    return b""


def _oversize(pack: Pack, rng: random.Random) -> bytes:
    record = encode(first_record(pack))
    copies = OVERSIZE_BYTES // (len(record) + 1) + 1
    return b"[" + b",".join([record] * copies) + b"]"


def _object(pack: Pack, rng: random.Random) -> bytes:
    return encode(first_record(pack))


def _with(change: Callable[[dict[str, Any]], None]) -> Callable[[Pack, random.Random], bytes]:
    def make(pack: Pack, rng: random.Random) -> bytes:
        record = first_record(pack)
        change(record)
        return encode([record])

    return make


def _no_value(record: dict[str, Any]) -> None:
    record.pop("v", None)
    record.pop("vs", None)
    record.pop("vb", None)


def _two_values(record: dict[str, Any]) -> None:
    record["vs"] = str(record.get("v", "0"))


def _nan(pack: Pack, rng: random.Random) -> bytes:
    record = first_record(pack)
    record["v"] = 0.0
    return encode([record]).replace(b'"v":0.0', b'"v":NaN')


def _string_value(record: dict[str, Any]) -> None:
    record["v"] = str(record.get("v", "0"))


def _bad_name(record: dict[str, Any]) -> None:
    record["n"] = f"{record['n']} (µg)!"


def _unknown_device(record: dict[str, Any]) -> None:
    record["bn"] = "urn:dev:no-such-device:"


def _unknown_record(record: dict[str, Any]) -> None:
    record["n"] = "co2"


def _wrong_unit(record: dict[str, Any]) -> None:
    record["u"] = "ppb" if record.get("u") != "ppb" else "ug/m3"


def _future_time(record: dict[str, Any]) -> None:
    record["bt"] = record["bt"] + FUTURE_SECONDS


KINDS: dict[str, Callable[[Pack, random.Random], bytes]] = {
    "invalid-json": _invalid_json,
    "non-utf8": _non_utf8,
    "empty": _empty,
    "oversize": _oversize,
    "object": _object,
    "no-value": _with(_no_value),
    "two-values": _with(_two_values),
    "nan": _nan,
    "string-value": _with(_string_value),
    "bad-name": _with(_bad_name),
    "unknown-device": _with(_unknown_device),
    "unknown-record": _with(_unknown_record),
    "wrong-unit": _with(_wrong_unit),
    "future-time": _with(_future_time),
}


def malformed(pack: Pack, rng: random.Random) -> tuple[str, bytes]:
    """A malformed payload of a randomly chosen kind, made from `pack`.

    Args:
        pack: a valid pack of the minute (not changed).
        rng: chooses the kind.

    Returns:
        The kind's name and the payload.
    """
    kind = rng.choice(sorted(KINDS))
    return kind, KINDS[kind](pack, rng)
