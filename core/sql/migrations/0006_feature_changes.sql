-- Ingest stores each reading with its device's FeatureOfInterest, from its registry view;
-- deleting or re-keying a feature must reload that view, or readings would point at a
-- feature that is gone.
CREATE TRIGGER features_of_interest_changed
    AFTER DELETE OR TRUNCATE OR UPDATE OF key ON features_of_interest
    FOR EACH STATEMENT EXECUTE FUNCTION notify_registry_changed();
