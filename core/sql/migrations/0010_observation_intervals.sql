-- Observations unique on (datastream, phenomenon time, interval end), where a missing end
-- (an instant) counts as one value.
--
-- The standard lets a Datastream hold an instant and an interval that start together (a
-- reading at 10:00 and the hourly mean 10:00/11:00), so the start alone is no key. The end
-- joins it with NULLS NOT DISTINCT (PostgreSQL 15): without it two instants at one time
-- would both be kept, and a redelivered reading, which ingest writes with ON CONFLICT DO
-- NOTHING and no end, would be stored twice. Instants sort before the intervals that start
-- with them (NULLS FIRST), the order reads and keyset paging use (api/keyset.py).
--
-- Built in this migration's transaction, on every chunk: on a large hypertable, writes
-- wait for as long as the build takes.
CREATE UNIQUE INDEX observations_datastream_time_end_key
    ON observations (datastream_id, phenomenon_time, phenomenon_time_end NULLS FIRST)
    NULLS NOT DISTINCT;

ALTER TABLE observations DROP CONSTRAINT observations_datastream_id_phenomenon_time_key;
