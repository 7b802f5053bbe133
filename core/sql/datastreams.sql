-- extend_datastream_times --
-- Widen the phenomenonTime and resultTime of Datastreams to cover new Observations, given
-- one array element per Observation: Datastream id, phenomenon time (the start of an
-- interval), the end of the interval or null, result time or null. A Datastream whose
-- times already cover its new Observations is not written.
WITH new AS (
    SELECT d, min(p) AS p_start, max(COALESCE(p_end, p)) AS p_end,
           min(r) AS r_start, max(r) AS r_end
    FROM unnest($1::bigint[], $2::timestamptz[], $3::timestamptz[], $4::timestamptz[])
         AS o(d, p, p_end, r)
    GROUP BY d
)
UPDATE datastreams ds
SET phenomenon_time_start = LEAST(ds.phenomenon_time_start, new.p_start),
    phenomenon_time_end = GREATEST(ds.phenomenon_time_end, new.p_end),
    result_time_start = LEAST(ds.result_time_start, new.r_start),
    result_time_end = GREATEST(ds.result_time_end, new.r_end)
FROM new
WHERE ds.id = new.d
  AND (ds.phenomenon_time_start IS NULL OR new.p_start < ds.phenomenon_time_start
       OR ds.phenomenon_time_end IS NULL OR new.p_end > ds.phenomenon_time_end
       OR (new.r_start IS NOT NULL
           AND (ds.result_time_start IS NULL OR new.r_start < ds.result_time_start
                OR new.r_end > ds.result_time_end)));

-- refresh_datastream_times --
-- Recompute the phenomenonTime and resultTime of Datastreams $1 from their Observations,
-- after some were removed or changed. The start and latest phenomenon time come from the
-- (datastream, time) index; interval ends and result times read the Datastream's rows.
WITH span AS (
    SELECT d.id,
           (SELECT min(o.phenomenon_time) FROM observations o WHERE o.datastream_id = d.id)
               AS p_start,
           GREATEST(
               (SELECT max(o.phenomenon_time) FROM observations o
                WHERE o.datastream_id = d.id),
               (SELECT max(o.phenomenon_time_end) FROM observations o
                WHERE o.datastream_id = d.id AND o.phenomenon_time_end IS NOT NULL)
           ) AS p_end,
           (SELECT min(o.result_time) FROM observations o WHERE o.datastream_id = d.id)
               AS r_start,
           (SELECT max(o.result_time) FROM observations o WHERE o.datastream_id = d.id)
               AS r_end
    FROM unnest($1::bigint[]) AS d(id)
)
UPDATE datastreams ds
SET phenomenon_time_start = span.p_start, phenomenon_time_end = span.p_end,
    result_time_start = span.r_start, result_time_end = span.r_end
FROM span
WHERE ds.id = span.id;

-- extend_datastream_areas --
-- Grow the observedArea of Datastreams (the convex hull of their features' geometries) to
-- cover new Observations, given one array element per Observation: Datastream id and
-- FeatureOfInterest id. A Datastream whose area does not change is not written.
WITH new AS (
    SELECT o.d, ST_Collect(f.feature) AS geom
    FROM unnest($1::bigint[], $2::bigint[]) AS o(d, feature_id)
    JOIN features_of_interest f ON f.id = o.feature_id
    GROUP BY o.d
), hull AS (
    SELECT ds.id,
           ST_ConvexHull(CASE WHEN ds.observed_area IS NULL THEN new.geom
                              ELSE ST_Collect(ds.observed_area, new.geom) END) AS area,
           ds.observed_area AS old
    FROM datastreams ds JOIN new ON new.d = ds.id
)
UPDATE datastreams ds
SET observed_area = hull.area
FROM hull
WHERE ds.id = hull.id AND (hull.old IS NULL OR NOT ST_Equals(hull.old, hull.area));

-- refresh_datastream_areas --
-- Recompute the observedArea of Datastreams $1 from the features of all their Observations.
UPDATE datastreams ds
SET observed_area = (
    SELECT ST_ConvexHull(ST_Collect(f.feature))
    FROM features_of_interest f
    WHERE f.id IN (SELECT o.feature_id FROM observations o WHERE o.datastream_id = ds.id)
)
WHERE ds.id = ANY($1::bigint[]);
