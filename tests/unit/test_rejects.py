"""Rejects are bounded in a batch's memory: by the per-sender budget, and, past it, by a
flush once the kept rejects hold a few MiB."""

from ingest.batch import REJECT_BYTES, Batch
from ingest.mapping import Rules, map_message
from ingest.registry import Registry
from ingest.rejects import PAYLOAD_BYTES, RejectBudget

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
