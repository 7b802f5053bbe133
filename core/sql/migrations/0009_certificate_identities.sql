-- Client certificates and gateways at the broker.
--
-- Every client certificate issued to a device or gateway has a common name of its own,
-- "<id>.<suffix>"; the mutual-TLS listener takes it as the username. Only the current
-- certificate's name is kept here, and only it gets ACL lines: a rotation or revocation
-- leaves every earlier certificate of the account with no grants at all.
ALTER TABLE mqtt_accounts
    ADD COLUMN cert_identity text UNIQUE
        CHECK (cert_identity ~ '^[a-z0-9][a-z0-9-]{0,62}\.[a-z0-9]{10}$'
               AND length(cert_identity) <= 64);

-- A gateway's account exists only while the gateway does: its deletion (or a new id)
-- changes what the broker's files hold.
CREATE TRIGGER gateways_access AFTER INSERT OR DELETE OR TRUNCATE OR UPDATE OF gateway_id
    ON gateways FOR EACH STATEMENT EXECUTE FUNCTION notify_broker_access_changed();

-- Deleting a device or gateway revokes its account, so that one made later under the same
-- id does not inherit the old secret or certificate. It runs as its owner: the API, which
-- may delete a Thing, has no access to the accounts.
CREATE FUNCTION revoke_deleted_publisher() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    publisher text := to_jsonb(OLD) ->> TG_ARGV[0];
BEGIN
    UPDATE mqtt_accounts SET revoked_at = now(), cert_identity = NULL
    WHERE username = publisher AND revoked_at IS NULL;
    RETURN NULL;
END;
$$;

CREATE TRIGGER things_revoke_account AFTER DELETE ON things
    FOR EACH ROW WHEN (OLD.device_id IS NOT NULL)
    EXECUTE FUNCTION revoke_deleted_publisher('device_id');
CREATE TRIGGER gateways_revoke_account AFTER DELETE ON gateways
    FOR EACH ROW EXECUTE FUNCTION revoke_deleted_publisher('gateway_id');
