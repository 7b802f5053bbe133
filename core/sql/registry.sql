-- upsert_agencies --
-- Agencies by code; a second run updates names and descriptions.
INSERT INTO agencies (code, name, description)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, description = EXCLUDED.description
RETURNING (xmax = 0) AS inserted;

-- upsert_gateways --
INSERT INTO gateways (gateway_id, agency_id, name, model)
SELECT g.gateway_id, a.id, g.name, g.model
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS g(gateway_id, agency, name, model)
JOIN agencies a ON a.code = g.agency
ON CONFLICT (gateway_id) DO UPDATE
SET agency_id = EXCLUDED.agency_id, name = EXCLUDED.name, model = EXCLUDED.model
RETURNING (xmax = 0) AS inserted;

-- upsert_observed_properties --
-- With each its plausible range (devices/catalogue.py), which ingest holds readings to.
INSERT INTO observed_properties (key, name, definition, description, plausible_min,
                                 plausible_max, plausible_unit)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[],
                     $6::float8[], $7::text[])
ON CONFLICT (key) DO UPDATE
SET name = EXCLUDED.name, definition = EXCLUDED.definition, description = EXCLUDED.description,
    plausible_min = EXCLUDED.plausible_min, plausible_max = EXCLUDED.plausible_max,
    plausible_unit = EXCLUDED.plausible_unit
RETURNING (xmax = 0) AS inserted;

-- upsert_sensors --
INSERT INTO sensors (key, name, description, metadata)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
ON CONFLICT (key) DO UPDATE
SET name = EXCLUDED.name, description = EXCLUDED.description, metadata = EXCLUDED.metadata
RETURNING (xmax = 0) AS inserted;

-- upsert_things --
-- Field devices by device id, with their owner and the gateway they sit behind.
INSERT INTO things (device_id, agency_id, name, description, properties, model, gateway_id)
SELECT d.device_id, a.id, d.name, d.description, d.properties, d.model, g.id
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::text[], $7::text[])
     AS d(device_id, agency, name, description, properties, model, gateway)
JOIN agencies a ON a.code = d.agency
LEFT JOIN gateways g ON g.gateway_id = d.gateway
ON CONFLICT (device_id) DO UPDATE
SET agency_id = EXCLUDED.agency_id, name = EXCLUDED.name, description = EXCLUDED.description,
    properties = EXCLUDED.properties, model = EXCLUDED.model, gateway_id = EXCLUDED.gateway_id
RETURNING (xmax = 0) AS inserted;

-- upsert_device_places --
-- One Location and one FeatureOfInterest per device, both keyed 'device:{device_id}'. The
-- feature remembers the Location it stands for (Observations created without a feature
-- get it), unless another feature already does.
WITH places AS (
    SELECT 'device:' || p.device_id AS key, p.name,
           ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326) AS geom
    FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[])
         AS p(device_id, name, lon, lat)
), located AS (
    INSERT INTO locations (key, name, description, location)
    SELECT key, name, 'Where the device is mounted', geom FROM places
    ON CONFLICT (key) DO UPDATE SET name = EXCLUDED.name, location = EXCLUDED.location
    RETURNING id, key
)
INSERT INTO features_of_interest (key, name, description, feature, location_id)
SELECT p.key, p.name, 'The air or road at the device', p.geom,
       CASE WHEN NOT EXISTS (SELECT 1 FROM features_of_interest o
                             WHERE o.location_id = l.id AND o.key IS DISTINCT FROM p.key)
            THEN l.id END
FROM places p JOIN located l USING (key)
ON CONFLICT (key) DO UPDATE
SET name = EXCLUDED.name, feature = EXCLUDED.feature,
    location_id = COALESCE(EXCLUDED.location_id, features_of_interest.location_id);

-- link_device_locations --
-- Link each device to its Location; a new link is also recorded as a HistoricalLocation.
WITH linked AS (
    INSERT INTO thing_locations (thing_id, location_id)
    SELECT t.id, l.id
    FROM unnest($1::text[]) AS d(device_id)
    JOIN things t ON t.device_id = d.device_id
    JOIN locations l ON l.key = 'device:' || d.device_id
    ON CONFLICT DO NOTHING
    RETURNING thing_id, location_id
), history AS (
    INSERT INTO historical_locations (thing_id, time)
    SELECT thing_id, now() FROM linked
    RETURNING id, thing_id
)
INSERT INTO historical_location_locations (historical_location_id, location_id)
SELECT history.id, linked.location_id FROM history JOIN linked USING (thing_id);

-- upsert_datastreams --
-- Datastreams by (device, SenML record name), owned by the device's agency. Access is the
-- model's when a Datastream is made; a later change by an operator is kept.
INSERT INTO datastreams (
    agency_id, thing_id, sensor_id, observed_property_id, name, description, observation_type,
    unit_name, unit_symbol, unit_definition, record_name, senml_unit, access
)
SELECT t.agency_id, t.id, s.id, op.id, d.name, d.description, d.observation_type,
       d.unit_name, d.unit_symbol, d.unit_definition, d.record, d.senml_unit, d.access
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])
     AS d(device_id, record, name, description, observation_type, unit_name, unit_symbol,
          unit_definition, senml_unit, property_key, sensor_key, access)
JOIN things t ON t.device_id = d.device_id
JOIN observed_properties op ON op.key = d.property_key
JOIN sensors s ON s.key = d.sensor_key
ON CONFLICT (thing_id, record_name) DO UPDATE
SET agency_id = EXCLUDED.agency_id, sensor_id = EXCLUDED.sensor_id,
    observed_property_id = EXCLUDED.observed_property_id, name = EXCLUDED.name,
    description = EXCLUDED.description, observation_type = EXCLUDED.observation_type,
    unit_name = EXCLUDED.unit_name, unit_symbol = EXCLUDED.unit_symbol,
    unit_definition = EXCLUDED.unit_definition, senml_unit = EXCLUDED.senml_unit
RETURNING (xmax = 0) AS inserted;

-- counts --
-- Sizes of the registry and of the observations, for status reports. Observations are
-- estimated from the planner's statistics: an exact count of a year is seconds.
SELECT (SELECT count(*) FROM agencies) AS agencies,
       (SELECT count(*) FROM gateways) AS gateways,
       (SELECT count(*) FROM things) AS things,
       (SELECT count(*) FROM datastreams) AS datastreams,
       approximate_row_count('observations') AS observations;

-- list_devices --
-- Every field device with its owner, gateway, place and number of datastreams.
SELECT t.device_id, t.name, t.model, a.code AS agency, g.gateway_id,
       ST_Y(l.location) AS latitude, ST_X(l.location) AS longitude,
       (SELECT count(*) FROM datastreams ds WHERE ds.thing_id = t.id) AS datastreams
FROM things t
JOIN agencies a ON a.id = t.agency_id
LEFT JOIN gateways g ON g.id = t.gateway_id
LEFT JOIN locations l ON l.key = 'device:' || t.device_id
WHERE t.device_id IS NOT NULL
ORDER BY t.device_id;
