-- Seven-day chunks for observations (new chunks; existing ones keep their size).
-- A year of one-day chunks is 365 chunks that every query on a Datastream plans and starts
-- over; measured with a year of one-minute data for the Stockholm air-quality stations, the
-- newest 1,000 readings took 37 ms and a nested expand 370 ms. docs/operations.md has the
-- sizes this gives and when to choose shorter chunks.
SELECT set_chunk_time_interval('observations', INTERVAL '7 days');
