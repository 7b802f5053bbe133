-- Access and metering: MQTT accounts of devices and gateways, API keys of agencies, the
-- audit log of writes, and usage per agency by day.

-- Anonymous readers of open data are metered under this agency.
INSERT INTO agencies (code, name, description)
VALUES ('public', 'Open-data users', 'Requests made without an API key')
ON CONFLICT (code) DO NOTHING;

-- A device or gateway's broker account; username is its device_id or gateway_id. Only the
-- hash of the secret is kept (Mosquitto's $7$ format, core/secrets.py).
CREATE TABLE mqtt_accounts (
    username    text PRIMARY KEY CHECK (username ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    kind        text NOT NULL CHECK (kind IN ('device', 'gateway')),
    secret_hash text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    rotated_at  timestamptz,
    revoked_at  timestamptz
);

-- key_id is public (it is the MQTT username of the key too); the secret part is not kept.
CREATE TABLE api_keys (
    key_id      text PRIMARY KEY CHECK (key_id ~ '^k[a-z0-9]{11}$'),
    agency_id   bigint NOT NULL REFERENCES agencies,
    role        text NOT NULL CHECK (role IN ('reader', 'writer', 'admin')),
    label       text NOT NULL,
    secret_hash text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX api_keys_agency_idx ON api_keys (agency_id);

-- One row per write: who (key and agency), what (request and the entities it touched), when.
CREATE TABLE audit_log (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    key_id    text,
    agency_id bigint REFERENCES agencies,
    channel   text NOT NULL CHECK (channel IN ('http', 'mqtt')),
    action    text NOT NULL,
    target    text NOT NULL,
    entities  jsonb NOT NULL DEFAULT '{}',
    status    integer NOT NULL
);
CREATE INDEX audit_log_at_idx ON audit_log (at);

-- Usage per agency and day; amounts are added up by ingest, the API and the notifiers.
CREATE TABLE usage_daily (
    day       date NOT NULL,
    agency_id bigint NOT NULL REFERENCES agencies,
    metric    text NOT NULL,
    amount    bigint NOT NULL,
    PRIMARY KEY (day, agency_id, metric)
);

-- Whoever keeps the broker's password and ACL files listens here: accounts, keys and
-- restricted Datastreams decide what they hold.
CREATE FUNCTION notify_broker_access_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('broker_access_changed', TG_TABLE_NAME);
    RETURN NULL;
END;
$$;

CREATE TRIGGER mqtt_accounts_access AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON mqtt_accounts FOR EACH STATEMENT EXECUTE FUNCTION notify_broker_access_changed();
CREATE TRIGGER api_keys_access AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON api_keys FOR EACH STATEMENT EXECUTE FUNCTION notify_broker_access_changed();
CREATE TRIGGER datastreams_access AFTER INSERT OR DELETE OR TRUNCATE OR UPDATE OF access, agency_id
    ON datastreams FOR EACH STATEMENT EXECUTE FUNCTION notify_broker_access_changed();
CREATE TRIGGER things_access AFTER INSERT OR DELETE OR TRUNCATE OR UPDATE OF device_id
    ON things FOR EACH STATEMENT EXECUTE FUNCTION notify_broker_access_changed();
