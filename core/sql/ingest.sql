-- registry_streams --
-- Every datastream a field device can publish to, by resolved SenML name.
SELECT 'urn:dev:' || t.device_id || ':' || ds.record_name AS name, ds.id, ds.senml_unit,
       ds.observation_type, t.device_id
FROM datastreams ds
JOIN things t ON t.id = ds.thing_id
WHERE t.device_id IS NOT NULL AND ds.record_name IS NOT NULL;

-- registry_devices --
-- Every field device and the gateway it sits behind, if any.
SELECT t.device_id, g.gateway_id
FROM things t
LEFT JOIN gateways g ON g.id = t.gateway_id
WHERE t.device_id IS NOT NULL;

-- insert_observations --
-- Insert a batch from column arrays; a reading stored before (a redelivery) is skipped.
-- Times come as seconds since the epoch and become timestamps here, in C.
INSERT INTO observations (
    phenomenon_time, datastream_id, result_number, result_integer, result_string,
    result_boolean
)
SELECT to_timestamp(t), d, n, i, s, b
FROM unnest($1::float8[], $2::bigint[], $3::float8[], $4::bigint[], $5::text[], $6::boolean[])
     AS r(t, d, n, i, s, b)
ON CONFLICT DO NOTHING;

-- insert_numbers --
-- The same for a batch whose results are all numbers (the usual case): half the arrays.
INSERT INTO observations (phenomenon_time, datastream_id, result_number)
SELECT to_timestamp(t), d, n
FROM unnest($1::float8[], $2::bigint[], $3::float8[]) AS r(t, d, n)
ON CONFLICT DO NOTHING;

-- insert_observation --
-- One reading, for isolating the row the database refuses in a batch.
INSERT INTO observations (
    phenomenon_time, datastream_id, result_number, result_integer, result_string,
    result_boolean
) VALUES (to_timestamp($1), $2, $3, $4, $5, $6)
ON CONFLICT DO NOTHING;

-- create_staging --
-- A session-local table that COPY fills before the rows move to observations.
CREATE TEMP TABLE IF NOT EXISTS observations_staging (
    phenomenon_time float8, datastream_id bigint, result_number float8,
    result_integer bigint, result_string text, result_boolean boolean
) ON COMMIT DELETE ROWS;

-- move_staging --
-- Move a COPYed batch into observations; a reading stored before is skipped.
INSERT INTO observations (
    phenomenon_time, datastream_id, result_number, result_integer, result_string,
    result_boolean
)
SELECT to_timestamp(phenomenon_time), datastream_id, result_number, result_integer,
       result_string, result_boolean
FROM observations_staging
ON CONFLICT DO NOTHING;

-- insert_rejects --
INSERT INTO rejected_messages (
    received_at, topic, payload, code, reason, device_id, record_index
)
SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::bytea[], $4::text[], $5::text[],
                     $6::text[], $7::int[]);
