-- Rejects within bounds (docs/ingest.md#rejects): a message leaves one row however many of
-- its records are refused. `records` is how many records (or 1, a message refused whole)
-- the row stands for, `details` counts them by code and describes the first ten,
-- `payload_bytes` is the size of the message as received (the payload kept may be cut).
-- A sender past its budget leaves one `over_budget` row per window, which each batch adds
-- to: the unique index is what it is found by.
ALTER TABLE rejected_messages
    ADD COLUMN records integer NOT NULL DEFAULT 1,
    ADD COLUMN details jsonb,
    ADD COLUMN payload_bytes integer;

CREATE UNIQUE INDEX rejected_messages_over_budget_key ON rejected_messages (topic, received_at)
    WHERE code = 'over_budget';
