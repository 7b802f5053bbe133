-- add_usage --
-- Add amounts to the day's usage of agencies (by agency code); unknown codes are skipped.
INSERT INTO usage_daily (day, agency_id, metric, amount)
SELECT u.day, a.id, u.metric, sum(u.amount)
FROM unnest($1::date[], $2::text[], $3::text[], $4::bigint[]) AS u (day, agency, metric, amount)
JOIN agencies a ON a.code = u.agency
GROUP BY u.day, a.id, u.metric
ON CONFLICT (day, agency_id, metric)
DO UPDATE SET amount = usage_daily.amount + EXCLUDED.amount;

-- stored_in_transaction --
-- Of a batch's readings (Datastream, seconds since the epoch), how many per Datastream the
-- current transaction stored: the rows it wrote itself (their xmin), not those stored
-- before. Asked only of a batch that held readings stored before.
SELECT o.datastream_id, count(*) AS n
FROM (SELECT DISTINCT d, t FROM unnest($1::bigint[], $2::float8[]) AS r (d, t)) r
JOIN observations o ON o.datastream_id = r.d AND o.phenomenon_time = to_timestamp(r.t)
WHERE o.xmin::text::bigint = pg_current_xact_id()::text::bigint % 4294967296
GROUP BY o.datastream_id;

-- owner_agencies --
-- The agency code owning each (entity set, id): a Datastream's or a Thing's agency, 'city'
-- (the platform operator) for anything else or anything gone.
SELECT u.ord, coalesce(a_ds.code, a_th.code, 'city') AS agency
FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS u (entity_set, id, ord)
LEFT JOIN datastreams ds ON u.entity_set = 'Datastreams' AND ds.id = u.id
LEFT JOIN agencies a_ds ON a_ds.id = ds.agency_id
LEFT JOIN things t ON u.entity_set = 'Things' AND t.id = u.id
LEFT JOIN agencies a_th ON a_th.id = t.agency_id
ORDER BY u.ord;

-- usage_between --
-- Metered amounts per day, agency and metric between two days (both included).
SELECT u.day, a.code AS agency, u.metric, u.amount
FROM usage_daily u JOIN agencies a ON a.id = u.agency_id
WHERE u.day BETWEEN $1::date AND $2::date
ORDER BY u.day, a.code, u.metric;

-- storage_between --
-- Observation rows stored per agency at the end of each day between two days (both
-- included), by the UTC day of their phenomenon time, counting what is stored now; and
-- the hypertable's bytes per row, measured in the same run (all of its size, indexes
-- included, over all of its rows). Each row is read once: those before the first day count
-- towards it, those after the last only towards the total, and only those between pay for
-- finding their day.
WITH bounds AS (
    SELECT $1::date AS first, $2::date AS last,
           $1::date::timestamp AT TIME ZONE 'UTC' AS start,
           ($2::date + 1)::timestamp AT TIME ZONE 'UTC' AS stop
), per_stream AS (
    SELECT o.datastream_id, b.first AS day, count(*) AS n
    FROM observations o, bounds b WHERE o.phenomenon_time < b.start
    GROUP BY 1, 2
    UNION ALL
    SELECT o.datastream_id, (o.phenomenon_time AT TIME ZONE 'UTC')::date, count(*)
    FROM observations o, bounds b
    WHERE o.phenomenon_time >= b.start AND o.phenomenon_time < b.stop
    GROUP BY 1, 2
    UNION ALL
    SELECT o.datastream_id, b.last + 1, count(*)
    FROM observations o, bounds b WHERE o.phenomenon_time >= b.stop
    GROUP BY 1, 2
), per_agency AS (
    SELECT ds.agency_id, p.day, sum(p.n) AS n
    FROM per_stream p JOIN datastreams ds ON ds.id = p.datastream_id
    GROUP BY 1, 2
), size AS (
    SELECT hypertable_size('observations')::float8 / greatest(sum(n), 1) AS bytes_per_row
    FROM per_agency
), grid AS (
    SELECT a.agency_id, d::date AS day
    FROM (SELECT DISTINCT agency_id FROM per_agency WHERE day <= $2::date) a
    CROSS JOIN generate_series($1::date, $2::date, interval '1 day') d
)
SELECT g.day, ag.code AS agency,
       sum(coalesce(p.n, 0)) OVER (PARTITION BY g.agency_id ORDER BY g.day)::bigint AS rows,
       size.bytes_per_row
FROM grid g
LEFT JOIN per_agency p ON p.agency_id = g.agency_id AND p.day = g.day
JOIN agencies ag ON ag.id = g.agency_id
CROSS JOIN size
ORDER BY g.day, ag.code;
