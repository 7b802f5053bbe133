-- insert_thing --
-- A Thing created over the API, owned by the agency with code $1.
INSERT INTO things (agency_id, name, description, properties)
SELECT id, $2, $3, $4 FROM agencies WHERE code = $1
RETURNING id;

-- update_thing --
UPDATE things SET name = $2, description = $3, properties = $4 WHERE id = $1;

-- thing_location_ids --
-- The Thing's current Locations.
SELECT location_id FROM thing_locations WHERE thing_id = $1 ORDER BY location_id;

-- clear_thing_locations --
DELETE FROM thing_locations WHERE thing_id = $1;

-- set_thing_locations --
-- Make Locations $2 the current ones of Thing $1 and record them as a HistoricalLocation
-- at the time of the transaction; returns the HistoricalLocation's id. Its Locations are
-- added by add_historical_location_locations, in a statement of their own: the policy on
-- them (migration 0008) looks the new HistoricalLocation up, which a later part of this
-- statement would not see.
WITH dropped AS (
    DELETE FROM thing_locations WHERE thing_id = $1 AND location_id <> ALL($2::bigint[])
), added AS (
    INSERT INTO thing_locations (thing_id, location_id)
    SELECT $1, unnest($2::bigint[])
    ON CONFLICT DO NOTHING
)
INSERT INTO historical_locations (thing_id, time) VALUES ($1, now())
RETURNING id;

-- insert_location --
INSERT INTO locations (name, description, encoding_type, location, properties)
VALUES ($1, $2, $3, ST_SetSRID(ST_GeomFromGeoJSON($4::text), 4326), $5)
RETURNING id;

-- update_location --
-- A FeatureOfInterest made from the Location's old place no longer stands for it: the next
-- Observation gets a new one, the earlier keep theirs.
WITH place AS (
    SELECT ST_SetSRID(ST_GeomFromGeoJSON($5::text), 4326) AS geom
), moved AS (
    UPDATE features_of_interest f SET location_id = NULL
    FROM locations l, place
    WHERE l.id = $1 AND f.location_id = l.id
      AND ST_AsEWKB(l.location) <> ST_AsEWKB(place.geom)
)
UPDATE locations
SET name = $2, description = $3, encoding_type = $4, location = place.geom, properties = $6
FROM place
WHERE id = $1;

-- delete_location_history --
-- HistoricalLocations that would be left without a Location when Location $1 goes.
DELETE FROM historical_locations h
WHERE h.id IN (SELECT historical_location_id FROM historical_location_locations
               WHERE location_id = $1)
  AND NOT EXISTS (SELECT 1 FROM historical_location_locations o
                  WHERE o.historical_location_id = h.id AND o.location_id <> $1);

-- insert_historical_location --
INSERT INTO historical_locations (thing_id, time) VALUES ($1, $2) RETURNING id;

-- historical_location_things --
-- The Things of HistoricalLocations $1.
SELECT DISTINCT thing_id FROM historical_locations WHERE id = ANY($1::bigint[]);

-- latest_historical_locations --
-- The latest HistoricalLocation of each of Things $1 that has any (of two at one time, the
-- one made last), with its Locations.
SELECT DISTINCT ON (h.thing_id) h.thing_id, h.id,
       ARRAY(SELECT l.location_id FROM historical_location_locations l
             WHERE l.historical_location_id = h.id ORDER BY l.location_id) AS locations
FROM historical_locations h
WHERE h.thing_id = ANY($1::bigint[])
ORDER BY h.thing_id, h.time DESC, h.id DESC;

-- replace_thing_locations --
-- Make Locations $2 the current ones of Thing $1, recording nothing: the HistoricalLocation
-- that says so exists already.
WITH dropped AS (
    DELETE FROM thing_locations WHERE thing_id = $1 AND location_id <> ALL($2::bigint[])
)
INSERT INTO thing_locations (thing_id, location_id)
SELECT $1, unnest($2::bigint[])
ON CONFLICT DO NOTHING;

-- update_historical_location --
-- A null Thing keeps the one it has.
UPDATE historical_locations SET thing_id = COALESCE($2::bigint, thing_id), time = $3
WHERE id = $1;

-- add_historical_location_locations --
INSERT INTO historical_location_locations (historical_location_id, location_id)
SELECT $1, unnest($2::bigint[])
ON CONFLICT DO NOTHING;

-- set_historical_location_locations --
WITH dropped AS (
    DELETE FROM historical_location_locations
    WHERE historical_location_id = $1 AND location_id <> ALL($2::bigint[])
)
INSERT INTO historical_location_locations (historical_location_id, location_id)
SELECT $1, unnest($2::bigint[])
ON CONFLICT DO NOTHING;

-- insert_sensor --
INSERT INTO sensors (name, description, encoding_type, metadata, properties)
VALUES ($1, $2, $3, $4, $5)
RETURNING id;

-- update_sensor --
UPDATE sensors
SET name = $2, description = $3, encoding_type = $4, metadata = $5, properties = $6
WHERE id = $1;

-- insert_observed_property --
INSERT INTO observed_properties (name, definition, description, properties)
VALUES ($1, $2, $3, $4)
RETURNING id;

-- update_observed_property --
UPDATE observed_properties SET name = $2, definition = $3, description = $4, properties = $5
WHERE id = $1;

-- insert_datastream --
-- A Datastream of Thing $1, owned by the Thing's agency.
INSERT INTO datastreams (
    agency_id, thing_id, sensor_id, observed_property_id, name, description, observation_type,
    unit_name, unit_symbol, unit_definition, properties
)
SELECT t.agency_id, t.id, $2, $3, $4, $5, $6, $7, $8, $9, $10
FROM things t WHERE t.id = $1
RETURNING id;

-- update_datastream --
UPDATE datastreams ds
SET agency_id = t.agency_id, thing_id = t.id, sensor_id = $3, observed_property_id = $4,
    name = $5, description = $6, observation_type = $7, unit_name = $8, unit_symbol = $9,
    unit_definition = $10, properties = $11
FROM things t
WHERE ds.id = $1 AND t.id = $2;

-- datastream_links --
-- What a Datastream links to, for an update that keeps some of it.
SELECT thing_id, sensor_id, observed_property_id FROM datastreams WHERE id = $1;

-- insert_observation --
-- One Observation; $1 keeps the id of one being replaced, null takes a new one. The result
-- sits in the one column its type chooses; $12 is JSON text, so that a JSON null result is
-- told apart from no result. None when the Datastream has an Observation at that
-- phenomenon time (start and end) already.
INSERT INTO observations (
    id, phenomenon_time, phenomenon_time_end, datastream_id, result_time, valid_time_start,
    valid_time_end, result_number, result_integer, result_string, result_boolean, result_json,
    result_quality, parameters, feature_id
)
VALUES (COALESCE($1::bigint, nextval('observations_id_seq')), $2, $3, $4, $5, $6, $7, $8, $9,
        $10, $11, $12::text::jsonb, $13, $14, $15)
ON CONFLICT DO NOTHING
RETURNING id;

-- delete_observation --
DELETE FROM observations WHERE id = $1
RETURNING datastream_id, phenomenon_time, phenomenon_time_end, result_time, feature_id;

-- thing_location_of_datastream --
-- The current Location of the Thing of Datastream $1 (the first, when it has several).
SELECT tl.location_id
FROM datastreams d JOIN thing_locations tl ON tl.thing_id = d.thing_id
WHERE d.id = $1
ORDER BY tl.location_id
LIMIT 1;

-- feature_of_location --
SELECT id FROM features_of_interest WHERE location_id = $1;

-- lock_location_feature --
-- Only one API transaction at a time makes the FeatureOfInterest of Location $1; the
-- others wait here, before they have written anything. Waiting instead on the new feature's
-- unique key, they would hold a lock on features_of_interest that the first one's new
-- hypertable chunk needs (its foreign key), and deadlock.
SELECT pg_advisory_xact_lock(hashtextextended('location_feature:' || $1::bigint, 0));

-- insert_location_feature --
-- A FeatureOfInterest made from Location $1. None when the Location is gone, or when a
-- feature stands for it already: the advisory lock above keeps out other API writes, not
-- registry provisioning (upsert_device_places), which may give it one meanwhile.
INSERT INTO features_of_interest (name, description, encoding_type, feature, location_id)
SELECT name, description, encoding_type, location, id FROM locations WHERE id = $1
ON CONFLICT (location_id) DO NOTHING
RETURNING id;

-- insert_feature --
INSERT INTO features_of_interest (name, description, encoding_type, feature, properties)
VALUES ($1, $2, $3, ST_SetSRID(ST_GeomFromGeoJSON($4::text), 4326), $5)
RETURNING id;

-- update_feature --
-- A feature given a new geometry no longer stands for the Location it was made from.
WITH place AS (
    SELECT ST_SetSRID(ST_GeomFromGeoJSON($5::text), 4326) AS geom
)
UPDATE features_of_interest f
SET name = $2, description = $3, encoding_type = $4, feature = place.geom, properties = $6,
    location_id = CASE WHEN ST_AsEWKB(f.feature) = ST_AsEWKB(place.geom) THEN f.location_id
                  END
FROM place
WHERE f.id = $1;

-- feature_datastreams --
-- The Datastreams whose observed area covers FeatureOfInterest $1: every Datastream with an
-- Observation of it is among them.
SELECT ds.id
FROM datastreams ds JOIN features_of_interest f ON f.id = $1
WHERE ds.observed_area IS NOT NULL AND ST_Intersects(ds.observed_area, f.feature);

-- datastream_spans --
-- What Datastreams $1 cover now, to see whether removed Observations were at an edge.
SELECT id, phenomenon_time_start, phenomenon_time_end, result_time_start, result_time_end
FROM datastreams WHERE id = ANY($1::bigint[]);

-- feature_still_observed --
SELECT EXISTS (SELECT 1 FROM observations WHERE datastream_id = $1 AND feature_id = $2);

-- move_datastreams_to_thing --
UPDATE datastreams ds SET thing_id = t.id, agency_id = t.agency_id
FROM things t
WHERE t.id = $1 AND ds.id = ANY($2::bigint[])
RETURNING ds.id;

-- move_historical_locations_to_thing --
UPDATE historical_locations SET thing_id = $1 WHERE id = ANY($2::bigint[]) RETURNING id;

-- move_datastreams_to_sensor --
UPDATE datastreams SET sensor_id = $1 WHERE id = ANY($2::bigint[]) RETURNING id;

-- move_datastreams_to_observed_property --
UPDATE datastreams SET observed_property_id = $1 WHERE id = ANY($2::bigint[]) RETURNING id;

-- move_observations_to_datastream --
-- Returns each moved Observation with the Datastream it left.
WITH old AS (
    SELECT id, datastream_id FROM observations WHERE id = ANY($2::bigint[])
)
UPDATE observations o SET datastream_id = $1
FROM old
WHERE o.id = old.id
RETURNING o.id, old.datastream_id;

-- move_observations_to_feature --
UPDATE observations SET feature_id = $1 WHERE id = ANY($2::bigint[])
RETURNING id, datastream_id;

-- delete_things --
DELETE FROM things WHERE id = $1 RETURNING id;

-- delete_locations --
DELETE FROM locations WHERE id = $1 RETURNING id;

-- delete_historical_locations --
DELETE FROM historical_locations WHERE id = $1 RETURNING id;

-- delete_sensors --
DELETE FROM sensors WHERE id = $1 RETURNING id;

-- delete_observed_properties --
DELETE FROM observed_properties WHERE id = $1 RETURNING id;

-- delete_datastreams --
DELETE FROM datastreams WHERE id = $1 RETURNING id;

-- delete_features_of_interest --
DELETE FROM features_of_interest WHERE id = $1 RETURNING id;

-- parents_things --
-- For notifications: the entities whose collections hold each of Things $1.
SELECT thing_id AS id, 'Locations' AS entity_set, location_id AS parent
FROM thing_locations WHERE thing_id = ANY($1::bigint[])
ORDER BY 1, 3;

-- parents_locations --
SELECT location_id AS id, 'Things' AS entity_set, thing_id AS parent
FROM thing_locations WHERE location_id = ANY($1::bigint[])
ORDER BY 1, 3;

-- parents_historical_locations --
SELECT id, 'Things' AS entity_set, thing_id AS parent
FROM historical_locations WHERE id = ANY($1::bigint[])
UNION ALL
SELECT historical_location_id, 'Locations', location_id
FROM historical_location_locations WHERE historical_location_id = ANY($1::bigint[])
ORDER BY 1, 2 DESC, 3;

-- parents_datastreams --
SELECT id, unnest(ARRAY['Things', 'Sensors', 'ObservedProperties']) AS entity_set,
       unnest(ARRAY[thing_id, sensor_id, observed_property_id]) AS parent
FROM datastreams WHERE id = ANY($1::bigint[])
ORDER BY 1;

-- parents_observations --
SELECT id, 'Datastreams' AS entity_set, datastream_id AS parent
FROM observations WHERE id = ANY($1::bigint[])
UNION ALL
SELECT id, 'FeaturesOfInterest', feature_id
FROM observations WHERE id = ANY($1::bigint[]) AND feature_id IS NOT NULL
ORDER BY 1, 2;

-- insert_rejected_message --
-- An MQTT message that asked to create an Observation and could not.
INSERT INTO rejected_messages (topic, payload, code, reason) VALUES ($1, $2, $3, $4);

-- entity_exists --
-- Whether entity $2 of the entity set $1 exists, as the request's principal sees it.
SELECT CASE $1::text
    WHEN 'Things' THEN EXISTS (SELECT 1 FROM things WHERE id = $2)
    WHEN 'Locations' THEN EXISTS (SELECT 1 FROM locations WHERE id = $2)
    WHEN 'HistoricalLocations' THEN EXISTS (SELECT 1 FROM historical_locations WHERE id = $2)
    WHEN 'Sensors' THEN EXISTS (SELECT 1 FROM sensors WHERE id = $2)
    WHEN 'ObservedProperties' THEN EXISTS (SELECT 1 FROM observed_properties WHERE id = $2)
    WHEN 'Datastreams' THEN EXISTS (SELECT 1 FROM datastreams WHERE id = $2)
    WHEN 'Observations' THEN EXISTS (SELECT 1 FROM observations WHERE id = $2)
    WHEN 'FeaturesOfInterest' THEN EXISTS (SELECT 1 FROM features_of_interest WHERE id = $2)
END;

-- chunk_interval --
-- The span of time one chunk of observations covers.
SELECT time_interval FROM timescaledb_information.dimensions
WHERE hypertable_schema = 'public' AND hypertable_name = 'observations'
  AND column_name = 'phenomenon_time';

-- times_without_chunk --
-- Of the phenomenon times $1, those no chunk of observations covers yet, earliest first.
SELECT t FROM unnest($1::timestamptz[]) t
WHERE NOT EXISTS (
    SELECT 1 FROM timescaledb_information.chunks c
    WHERE c.hypertable_schema = 'public' AND c.hypertable_name = 'observations'
      AND t >= c.range_start AND t < c.range_end)
ORDER BY t;

-- insert_chunk_probe --
-- A row at $1 in Datastream $2, which makes the chunk $1 falls in; removed by
-- delete_chunk_probe in the same transaction, so no one ever sees it.
INSERT INTO observations (phenomenon_time, datastream_id, result_boolean)
VALUES ($1, $2, true)
ON CONFLICT DO NOTHING
RETURNING id;

-- delete_chunk_probe --
DELETE FROM observations WHERE id = $1 AND phenomenon_time = $2;
