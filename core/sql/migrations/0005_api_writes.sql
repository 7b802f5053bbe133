-- Writes through the API: a default owner for Things created over HTTP, the link from a
-- FeatureOfInterest made automatically to the Location it was made from, and a registry
-- trigger that leaves out the Datastream columns the server maintains from Observations.

-- Things created over HTTP belong to the city until API keys name their agency.
INSERT INTO agencies (code, name, description)
VALUES ('city', 'Stockholms stad', 'Owner of Things created through the SensorThings API')
ON CONFLICT (code) DO NOTHING;

-- An Observation created without a FeatureOfInterest gets the one made from its Thing's
-- Location; location_id finds it again, so it is made once per Location.
ALTER TABLE features_of_interest
    ADD COLUMN location_id bigint UNIQUE REFERENCES locations ON DELETE SET NULL;

-- Provisioning made a Location and a FeatureOfInterest per device under the same key.
UPDATE features_of_interest f SET location_id = l.id
FROM locations l
WHERE l.key = f.key AND f.key LIKE 'device:%';

-- Ingest reloads its registry when a Datastream changes; the phenomenon and result times and
-- the observed area change with every Observation and are none of its business.
DROP TRIGGER datastreams_changed ON datastreams;
CREATE TRIGGER datastreams_changed
    AFTER INSERT OR DELETE OR TRUNCATE OR UPDATE OF
        id, agency_id, thing_id, sensor_id, observed_property_id, name, description,
        observation_type, unit_name, unit_symbol, unit_definition, record_name, senml_unit,
        access, properties
    ON datastreams
    FOR EACH STATEMENT EXECUTE FUNCTION notify_registry_changed();
