-- Row-level security for the API. The API connects as the stack's user and switches to the
-- role stadspuls_api (NOLOGIN), under which these policies hold on every read and write;
-- ingest and the command line run as the owner and are not subject to them.
--
-- The principal of a request reaches PostgreSQL as two settings, set on every acquire of a
-- pooled connection: stadspuls.agency_id (empty for anonymous requests) and stadspuls.role
-- (anonymous, reader, writer or admin).
--
-- Read: Datastreams are visible when open, owned by the principal's agency, or to admins;
-- the Observations of a Datastream that is not visible are not either. Things, Sensors,
-- ObservedProperties, Locations, HistoricalLocations and FeaturesOfInterest are metadata,
-- visible to all.
-- Write: admins everything; writers the Things, Datastreams, Observations and
-- HistoricalLocations of their agency (and which Locations those Things and
-- HistoricalLocations have), and new catalogue entities (Sensors, ObservedProperties,
-- Locations, FeaturesOfInterest), which only admins change or delete.

-- Roles belong to the cluster, not the database: a cloned or second database finds it, and
-- two databases migrated at once may both try to make it (the advisory lock of the
-- migrations is per database), the second then finding it made.
DO $$
BEGIN
    CREATE ROLE stadspuls_api NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

-- Table by table, and only what the API uses: a table added later is not the API's until
-- the migration that adds it grants it. Keys and agencies are made on the command line,
-- the audit log only grows, broker accounts and schema_migrations are none of its business.
-- A grant on the observations hypertable reaches its chunks, present and future.
GRANT USAGE ON SCHEMA public TO stadspuls_api;
GRANT SELECT, INSERT, UPDATE, DELETE
    ON things, locations, thing_locations, historical_locations,
       historical_location_locations, sensors, observed_properties, datastreams,
       features_of_interest, observations
    TO stadspuls_api;
GRANT USAGE ON SEQUENCE observations_id_seq TO stadspuls_api;
GRANT SELECT ON agencies, api_keys TO stadspuls_api;
GRANT INSERT ON audit_log, rejected_messages TO stadspuls_api;
GRANT SELECT, INSERT, UPDATE ON usage_daily TO stadspuls_api;

-- The read side's functions are PARALLEL SAFE: a function left unmarked is parallel unsafe,
-- and one in a policy would keep every scan of the Observations it guards off parallel
-- workers (half the speed of a big count on two cores). Workers get the settings from the
-- leader.
CREATE FUNCTION stadspuls_agency() RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT NULLIF(current_setting('stadspuls.agency_id', true), '')::bigint
$$;

CREATE FUNCTION stadspuls_role() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT COALESCE(NULLIF(current_setting('stadspuls.role', true), ''), 'anonymous')
$$;

-- Whether the principal may change what agency $1 owns.
CREATE FUNCTION stadspuls_may_write(owner bigint) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT stadspuls_role() = 'admin'
        OR (stadspuls_role() = 'writer' AND owner = stadspuls_agency())
$$;

-- The Datastreams the principal may not see. Policies call it inside a scalar subquery,
-- so it runs once per query (an InitPlan), not once per Observation; it reads the
-- Datastreams as their owner, past their own policy.
CREATE FUNCTION stadspuls_hidden_datastreams() RETURNS bigint[]
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT COALESCE(array_agg(id ORDER BY id), '{}') FROM datastreams
    WHERE access <> 'open' AND stadspuls_role() <> 'admin'
      AND agency_id IS DISTINCT FROM stadspuls_agency()
$$;

CREATE FUNCTION stadspuls_may_write_datastream(datastream bigint) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT stadspuls_role() = 'admin' OR (stadspuls_role() = 'writer' AND EXISTS (
        SELECT 1 FROM datastreams WHERE id = datastream AND agency_id = stadspuls_agency()))
$$;

CREATE FUNCTION stadspuls_may_write_thing(thing bigint) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT stadspuls_role() = 'admin' OR (stadspuls_role() = 'writer' AND EXISTS (
        SELECT 1 FROM things WHERE id = thing AND agency_id = stadspuls_agency()))
$$;

ALTER TABLE datastreams ENABLE ROW LEVEL SECURITY;
CREATE POLICY datastreams_read ON datastreams FOR SELECT TO stadspuls_api
    USING (access = 'open' OR agency_id = stadspuls_agency() OR stadspuls_role() = 'admin');
CREATE POLICY datastreams_insert ON datastreams FOR INSERT TO stadspuls_api
    WITH CHECK (stadspuls_may_write(agency_id));
CREATE POLICY datastreams_update ON datastreams FOR UPDATE TO stadspuls_api
    USING (stadspuls_may_write(agency_id)) WITH CHECK (stadspuls_may_write(agency_id));
CREATE POLICY datastreams_delete ON datastreams FOR DELETE TO stadspuls_api
    USING (stadspuls_may_write(agency_id));

ALTER TABLE observations ENABLE ROW LEVEL SECURITY;
CREATE POLICY observations_read ON observations FOR SELECT TO stadspuls_api
    USING (datastream_id <> ALL ((SELECT stadspuls_hidden_datastreams())::bigint[]));
CREATE POLICY observations_insert ON observations FOR INSERT TO stadspuls_api
    WITH CHECK (stadspuls_may_write_datastream(datastream_id));
CREATE POLICY observations_update ON observations FOR UPDATE TO stadspuls_api
    USING (stadspuls_may_write_datastream(datastream_id))
    WITH CHECK (stadspuls_may_write_datastream(datastream_id));
CREATE POLICY observations_delete ON observations FOR DELETE TO stadspuls_api
    USING (stadspuls_may_write_datastream(datastream_id));

ALTER TABLE things ENABLE ROW LEVEL SECURITY;
CREATE POLICY things_read ON things FOR SELECT TO stadspuls_api USING (true);
CREATE POLICY things_insert ON things FOR INSERT TO stadspuls_api
    WITH CHECK (stadspuls_may_write(agency_id));
CREATE POLICY things_update ON things FOR UPDATE TO stadspuls_api
    USING (stadspuls_may_write(agency_id)) WITH CHECK (stadspuls_may_write(agency_id));
CREATE POLICY things_delete ON things FOR DELETE TO stadspuls_api
    USING (stadspuls_may_write(agency_id));

ALTER TABLE historical_locations ENABLE ROW LEVEL SECURITY;
CREATE POLICY historical_locations_read ON historical_locations FOR SELECT TO stadspuls_api
    USING (true);
CREATE POLICY historical_locations_insert ON historical_locations FOR INSERT
    TO stadspuls_api WITH CHECK (stadspuls_may_write_thing(thing_id));
CREATE POLICY historical_locations_update ON historical_locations FOR UPDATE
    TO stadspuls_api USING (stadspuls_may_write_thing(thing_id))
    WITH CHECK (stadspuls_may_write_thing(thing_id));
CREATE POLICY historical_locations_delete ON historical_locations FOR DELETE
    TO stadspuls_api USING (stadspuls_may_write_thing(thing_id));

-- Which Locations a Thing has, and had: changed with the Thing (a HistoricalLocation's
-- Thing), never through a Location of the catalogue.
CREATE FUNCTION stadspuls_may_write_history(history bigint) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT stadspuls_role() = 'admin' OR (stadspuls_role() = 'writer' AND EXISTS (
        SELECT 1 FROM historical_locations h JOIN things t ON t.id = h.thing_id
        WHERE h.id = history AND t.agency_id = stadspuls_agency()))
$$;

ALTER TABLE thing_locations ENABLE ROW LEVEL SECURITY;
CREATE POLICY thing_locations_read ON thing_locations FOR SELECT TO stadspuls_api
    USING (true);
CREATE POLICY thing_locations_insert ON thing_locations FOR INSERT TO stadspuls_api
    WITH CHECK (stadspuls_may_write_thing(thing_id));
CREATE POLICY thing_locations_update ON thing_locations FOR UPDATE TO stadspuls_api
    USING (stadspuls_may_write_thing(thing_id))
    WITH CHECK (stadspuls_may_write_thing(thing_id));
CREATE POLICY thing_locations_delete ON thing_locations FOR DELETE TO stadspuls_api
    USING (stadspuls_may_write_thing(thing_id));

ALTER TABLE historical_location_locations ENABLE ROW LEVEL SECURITY;
CREATE POLICY historical_location_locations_read ON historical_location_locations
    FOR SELECT TO stadspuls_api USING (true);
CREATE POLICY historical_location_locations_insert ON historical_location_locations
    FOR INSERT TO stadspuls_api
    WITH CHECK (stadspuls_may_write_history(historical_location_id));
CREATE POLICY historical_location_locations_update ON historical_location_locations
    FOR UPDATE TO stadspuls_api USING (stadspuls_may_write_history(historical_location_id))
    WITH CHECK (stadspuls_may_write_history(historical_location_id));
CREATE POLICY historical_location_locations_delete ON historical_location_locations
    FOR DELETE TO stadspuls_api USING (stadspuls_may_write_history(historical_location_id));

-- The catalogue: anyone who writes may add to it; only admins change or remove.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['sensors', 'observed_properties', 'locations',
                             'features_of_interest'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I FOR SELECT TO stadspuls_api USING (true)',
                       t || '_read', t);
        EXECUTE format('CREATE POLICY %I ON %I FOR INSERT TO stadspuls_api '
                       'WITH CHECK (stadspuls_role() IN (''writer'', ''admin''))',
                       t || '_insert', t);
        EXECUTE format('CREATE POLICY %I ON %I FOR UPDATE TO stadspuls_api '
                       'USING (stadspuls_role() = ''admin'')', t || '_update', t);
        EXECUTE format('CREATE POLICY %I ON %I FOR DELETE TO stadspuls_api '
                       'USING (stadspuls_role() = ''admin'')', t || '_delete', t);
    END LOOP;
END
$$;
