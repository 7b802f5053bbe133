-- registry_streams --
-- Every datastream a field device can publish to, by resolved SenML name, with the
-- FeatureOfInterest of its readings (the one provisioning makes for the device), its access,
-- its agency (for metering) and the plausible range of its observed property where that
-- range is in the datastream's unit.
SELECT 'urn:dev:' || t.device_id || ':' || ds.record_name AS name, ds.id, ds.senml_unit,
       ds.observation_type, t.device_id, f.id AS feature_id, ds.access, a.code AS agency,
       op.name AS property,
       CASE WHEN op.plausible_unit = ds.senml_unit THEN op.plausible_min END AS low,
       CASE WHEN op.plausible_unit = ds.senml_unit THEN op.plausible_max END AS high
FROM datastreams ds
JOIN things t ON t.id = ds.thing_id
JOIN agencies a ON a.id = ds.agency_id
JOIN observed_properties op ON op.id = ds.observed_property_id
LEFT JOIN features_of_interest f ON f.key = 'device:' || t.device_id
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
    phenomenon_time, datastream_id, feature_id, result_number, result_integer,
    result_string, result_boolean
)
SELECT to_timestamp(t), d, f, n, i, s, b
FROM unnest($1::float8[], $2::bigint[], $3::bigint[], $4::float8[], $5::bigint[],
            $6::text[], $7::boolean[]) AS r(t, d, f, n, i, s, b)
ON CONFLICT DO NOTHING;

-- insert_observations_returning --
-- The same, answering each row newly stored: what a notification of it needs.
INSERT INTO observations (
    phenomenon_time, datastream_id, feature_id, result_number, result_integer,
    result_string, result_boolean
)
SELECT to_timestamp(t), d, f, n, i, s, b
FROM unnest($1::float8[], $2::bigint[], $3::bigint[], $4::float8[], $5::bigint[],
            $6::text[], $7::boolean[]) AS r(t, d, f, n, i, s, b)
ON CONFLICT DO NOTHING
RETURNING id, datastream_id, feature_id, phenomenon_time, result_number, result_integer,
          result_string, result_boolean;

-- insert_numbers --
-- The same for a batch whose results are all numbers (the usual case): fewer arrays.
INSERT INTO observations (phenomenon_time, datastream_id, feature_id, result_number)
SELECT to_timestamp(t), d, f, n
FROM unnest($1::float8[], $2::bigint[], $3::bigint[], $4::float8[]) AS r(t, d, f, n)
ON CONFLICT DO NOTHING;

-- insert_observation --
-- One reading, for isolating the row the database refuses in a batch; answers the row if
-- it is new.
INSERT INTO observations (
    phenomenon_time, datastream_id, feature_id, result_number, result_integer,
    result_string, result_boolean
) VALUES (to_timestamp($1), $2, $3, $4, $5, $6, $7)
ON CONFLICT DO NOTHING
RETURNING id, datastream_id, feature_id, phenomenon_time, result_number, result_integer,
          result_string, result_boolean;

-- create_staging --
-- A session-local table that COPY fills before the rows move to observations.
CREATE TEMP TABLE IF NOT EXISTS observations_staging (
    phenomenon_time float8, datastream_id bigint, feature_id bigint, result_number float8,
    result_integer bigint, result_string text, result_boolean boolean
) ON COMMIT DELETE ROWS;

-- move_staging --
-- Move a COPYed batch into observations; a reading stored before is skipped.
INSERT INTO observations (
    phenomenon_time, datastream_id, feature_id, result_number, result_integer,
    result_string, result_boolean
)
SELECT to_timestamp(phenomenon_time), datastream_id, feature_id, result_number,
       result_integer, result_string, result_boolean
FROM observations_staging
ON CONFLICT DO NOTHING;

-- move_staging_returning --
-- The same, answering each row newly stored.
INSERT INTO observations (
    phenomenon_time, datastream_id, feature_id, result_number, result_integer,
    result_string, result_boolean
)
SELECT to_timestamp(phenomenon_time), datastream_id, feature_id, result_number,
       result_integer, result_string, result_boolean
FROM observations_staging
ON CONFLICT DO NOTHING
RETURNING id, datastream_id, feature_id, phenomenon_time, result_number, result_integer,
          result_string, result_boolean;

-- extend_datastreams_from_staging --
-- Widen the phenomenonTime and observedArea of each Datastream the staged batch wrote to,
-- by the rules of extend_datastream_times and extend_datastream_areas
-- (core/sql/datastreams.sql), reading the batch where COPY put it instead of having it sent
-- again. Ingest's readings have no result time and no interval end. A Datastream the batch
-- does not widen is not written.
WITH staged AS (
    SELECT datastream_id AS d, feature_id, min(phenomenon_time) AS first,
           max(phenomenon_time) AS last
    FROM observations_staging
    GROUP BY datastream_id, feature_id
), new AS (
    SELECT s.d, to_timestamp(min(s.first)) AS p_start, to_timestamp(max(s.last)) AS p_end,
           ST_Collect(f.feature) AS geom
    FROM staged s
    LEFT JOIN features_of_interest f ON f.id = s.feature_id
    GROUP BY s.d
), widened AS (
    SELECT ds.id, LEAST(ds.phenomenon_time_start, new.p_start) AS p_start,
           GREATEST(ds.phenomenon_time_end, new.p_end) AS p_end,
           CASE WHEN new.geom IS NULL THEN ds.observed_area
                ELSE ST_ConvexHull(CASE WHEN ds.observed_area IS NULL THEN new.geom
                                        ELSE ST_Collect(ds.observed_area, new.geom) END)
           END AS area,
           ds.phenomenon_time_start AS old_start, ds.phenomenon_time_end AS old_end,
           ds.observed_area AS old_area
    FROM datastreams ds JOIN new ON new.d = ds.id
)
UPDATE datastreams ds
SET phenomenon_time_start = w.p_start, phenomenon_time_end = w.p_end, observed_area = w.area
FROM widened w
WHERE ds.id = w.id
  AND (w.old_start IS DISTINCT FROM w.p_start OR w.old_end IS DISTINCT FROM w.p_end
       OR (w.area IS NOT NULL AND (w.old_area IS NULL OR NOT ST_Equals(w.old_area, w.area))));

-- insert_rejects --
-- One row per refused message: its refused records counted (records) and the first of them
-- described (details, JSON); details arrive as text.
INSERT INTO rejected_messages (
    received_at, topic, payload, code, reason, device_id, record_index, records, details,
    payload_bytes
)
SELECT r, t, p, c, why, d, i, n, x::jsonb, b
FROM unnest($1::timestamptz[], $2::text[], $3::bytea[], $4::text[], $5::text[], $6::text[],
            $7::int[], $8::int[], $9::text[], $10::int[]) AS u(r, t, p, c, why, d, i, n, x, b);

-- upsert_over_budget --
-- The rejects a sender left past its budget in one window, counted into that window's one
-- over_budget row (received_at is the window's start): records add up, and so do the
-- messages and the counts by code in details.
INSERT INTO rejected_messages (received_at, topic, payload, code, reason, device_id, records,
                               details)
SELECT to_timestamp(w), t, '', 'over_budget', why, d, n, x::jsonb
FROM unnest($1::float8[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[])
     AS u(w, t, d, n, x, why)
ON CONFLICT (topic, received_at) WHERE code = 'over_budget' DO UPDATE
SET records = rejected_messages.records + EXCLUDED.records,
    details = jsonb_build_object(
        'messages', (rejected_messages.details ->> 'messages')::bigint
                    + (EXCLUDED.details ->> 'messages')::bigint,
        'codes', (SELECT jsonb_object_agg(key, total)
                  FROM (SELECT key, sum(value::bigint) AS total
                        FROM (SELECT * FROM jsonb_each_text(rejected_messages.details -> 'codes')
                              UNION ALL
                              SELECT * FROM jsonb_each_text(EXCLUDED.details -> 'codes')) e
                        GROUP BY key) s));

-- reject_agencies --
-- The agency of the readings refused, weighted by how many each reject row stands for: its
-- device's, else its gateway's (by the sender of the topic), else 'city', the platform
-- operator, for senders the registry does not know.
SELECT coalesce(ad.code, ag.code, 'city') AS agency, sum(u.n)::bigint AS n
FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u (device_id, gateway_id, n)
LEFT JOIN things t ON t.device_id = u.device_id
LEFT JOIN agencies ad ON ad.id = t.agency_id
LEFT JOIN gateways g ON g.gateway_id = u.gateway_id
LEFT JOIN agencies ag ON ag.id = g.agency_id
GROUP BY 1;
