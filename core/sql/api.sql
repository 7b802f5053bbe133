-- latest_observations --
-- The newest Observation of every Datastream (or of one Thing's, when $1 is not null), for a
-- live map: one backward index probe per Datastream.
SELECT d.id AS datastream_id, d.name, t.id AS thing_id, d.unit_symbol,
       o.id AS observation_id, o.phenomenon_time,
       COALESCE(to_jsonb(o.result_number), to_jsonb(o.result_integer),
                to_jsonb(o.result_string), to_jsonb(o.result_boolean), o.result_json) AS result,
       ST_AsGeoJSON(l.location)::jsonb AS location
FROM datastreams d
JOIN things t ON t.id = d.thing_id
LEFT JOIN LATERAL (
    SELECT l.location FROM thing_locations tl JOIN locations l ON l.id = tl.location_id
    WHERE tl.thing_id = t.id ORDER BY l.id LIMIT 1
) l ON TRUE
LEFT JOIN LATERAL (
    SELECT * FROM observations o
    WHERE o.datastream_id = d.id
    ORDER BY o.phenomenon_time DESC
    LIMIT 1
) o ON TRUE
WHERE $1::bigint IS NULL OR t.id = $1
ORDER BY d.id;

-- downsampled --
-- A Datastream's numeric results in buckets of $2 over [$3, $4): average, minimum,
-- maximum and count per bucket.
SELECT time_bucket($2::interval, phenomenon_time) AS bucket,
       avg(COALESCE(result_number, result_integer)) AS avg,
       min(COALESCE(result_number, result_integer)) AS min,
       max(COALESCE(result_number, result_integer)) AS max,
       count(*) AS count
FROM observations
WHERE datastream_id = $1 AND phenomenon_time >= $3 AND phenomenon_time < $4
GROUP BY bucket
ORDER BY bucket;

-- datastream_exists --
SELECT EXISTS (SELECT 1 FROM datastreams WHERE id = $1);
