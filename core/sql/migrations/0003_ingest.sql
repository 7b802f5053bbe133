-- Ingest: tell listeners (its registry view) when devices, gateways or datastreams change;
-- give rejects a stable code.

CREATE FUNCTION notify_registry_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('registry_changed', TG_TABLE_NAME);
    RETURN NULL;
END;
$$;

CREATE TRIGGER things_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON things
    FOR EACH STATEMENT EXECUTE FUNCTION notify_registry_changed();
CREATE TRIGGER gateways_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON gateways
    FOR EACH STATEMENT EXECUTE FUNCTION notify_registry_changed();
CREATE TRIGGER datastreams_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON datastreams
    FOR EACH STATEMENT EXECUTE FUNCTION notify_registry_changed();

-- A stable code for each kind of reject (invalid_json, wrong_unit, …); reason says more.
ALTER TABLE rejected_messages ADD COLUMN code text NOT NULL DEFAULT 'unknown';
