-- Each observed property may carry the range of values it can take at all, in one SenML
-- unit (devices/catalogue.py; provisioning writes it). Ingest refuses a reading outside it
-- with code `implausible` when the Datastream's unit is the range's (docs/ingest.md#rejects).
-- Changing a range reloads ingest's registry view.
ALTER TABLE observed_properties
    ADD COLUMN plausible_min float8,
    ADD COLUMN plausible_max float8,
    ADD COLUMN plausible_unit text,
    ADD CONSTRAINT observed_properties_plausible_range
        CHECK (plausible_min IS NULL OR plausible_max IS NULL OR plausible_min <= plausible_max);

CREATE TRIGGER observed_properties_changed
    AFTER DELETE OR TRUNCATE OR UPDATE OF plausible_min, plausible_max, plausible_unit
    ON observed_properties
    FOR EACH STATEMENT EXECUTE FUNCTION notify_registry_changed();
