"""Rejects are bounded in a batch's memory: by the per-sender budget, and, past it, by a
flush once the kept rejects hold a few MiB."""

import json

from ingest.batch import REJECT_BYTES, Batch
from ingest.mapping import Rules, map_message, sender_device, sender_gateway
from ingest.registry import Registry
from ingest.rejects import (
    DETAILS_BYTES,
    PAYLOAD_BYTES,
    REASON_BYTES,
    Refusals,
    RejectBudget,
    clip,
    merged,
)

NOT_JSON = b"x" * 20_000
T0 = 1_790_000_000.0


def test_a_batch_is_full_once_its_kept_rejects_hold_the_byte_limit() -> None:
    rules = Rules(budget=RejectBudget(rows=10_000))
    batch = Batch(0)
    sent = 0
    while not batch.full(max_rows=5_000, max_messages=5_000):
        map_message(f"devices/d{sent}/senml", NOT_JSON, T0, Registry.empty(), rules,
                    batch.mapped)
        batch.messages += 1
        sent += 1
    # About 4 MiB of 16 KiB payloads: some 250 messages, not the 5,000 a batch may hold.
    assert 200 < sent <= REJECT_BYTES // PAYLOAD_BYTES
    assert all(len(r.payload) == PAYLOAD_BYTES for r in batch.mapped.rejects)


def test_past_its_budget_a_sender_costs_a_counter_not_a_row() -> None:
    rules = Rules(budget=RejectBudget(rows=20, window_s=60))
    batch = Batch(0)
    for _ in range(1_000):
        map_message("devices/noisy/senml", NOT_JSON, T0, Registry.empty(), rules,
                    batch.mapped)
    assert len(batch.mapped.rejects) == 20
    [summary] = batch.mapped.over_budget.values()
    assert (summary.messages, summary.records, summary.device_id) == (980, 980, "noisy")
    assert batch.mapped.refused_by_code() == {"invalid_json": 1_000}
    assert not batch.full(max_rows=5_000, max_messages=5_000)


def test_a_reason_is_cut_to_its_bytes_with_a_note_and_never_mid_character() -> None:
    reason = clip("ö" * 5_000, REASON_BYTES)
    assert len(reason.encode()) <= REASON_BYTES
    assert reason.endswith("… (cut from 10000 bytes)")
    assert reason.startswith("ööö")


def test_details_stay_within_their_bound_however_much_their_records_expand_as_json() -> None:
    refusals = Refusals()
    for k in range(12):  # control characters: each becomes six bytes in JSON
        refusals.add(k, "bad_field", "a field of the wrong type", "d1", b"\x01" * 5_000)
    details = json.loads(refusals.details())
    assert len(refusals.details()) <= DETAILS_BYTES
    assert details["codes"] == {"bad_field": 12}
    assert details["first_left_out"] == 10 - len(details["first"])
    assert details["first"][0]["record_bytes"] == 5_000


def test_the_sender_of_a_topic_is_a_device_or_a_gateway() -> None:
    assert sender_device("city/devices/d1/senml") == "d1"
    assert sender_device("city/gateways/g1/senml") is None
    assert sender_gateway("city/gateways/g1/senml") == "g1"
    assert sender_device("city/devices/d1/other") is None


def test_merged_over_budget_summaries_leave_the_originals_as_they_were() -> None:
    rules = Rules(budget=RejectBudget(rows=0, window_s=60))
    first, second = Batch(0), Batch(0)
    for batch in (first, second, second):
        map_message("devices/noisy/senml", NOT_JSON, T0, Registry.empty(), rules,
                    batch.mapped)
    [both] = merged(first.mapped.over_budget, second.mapped.over_budget)
    assert (both.messages, both.records, both.codes) == (3, 3, {"invalid_json": 3})
    assert [s.messages for s in first.mapped.over_budget.values()] == [1]
