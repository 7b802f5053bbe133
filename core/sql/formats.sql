-- thing_geometries --
-- The geometry of each Thing of $1 that has current Locations: the Location's own, or of
-- several their collection in the order of their ids (a MultiPoint when all are points).
SELECT tl.thing_id AS id,
       ST_AsGeoJSON(CASE WHEN count(*) = 1 THEN (array_agg(l.location))[1]
                         ELSE ST_Collect(l.location ORDER BY l.id) END)::jsonb AS geometry
FROM thing_locations tl
JOIN locations l ON l.id = tl.location_id
WHERE tl.thing_id = ANY($1::bigint[])
GROUP BY tl.thing_id;

-- observation_geometries --
-- The geometry of each Observation of $1 that has a FeatureOfInterest; $2 and $3, the
-- earliest and latest of their phenomenon times, keep the search to their chunks.
SELECT o.id, ST_AsGeoJSON(f.feature)::jsonb AS geometry
FROM observations o
JOIN features_of_interest f ON f.id = o.feature_id
WHERE o.id = ANY($1::bigint[]) AND o.phenomenon_time BETWEEN $2 AND $3;
