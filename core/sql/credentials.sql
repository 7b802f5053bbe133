-- publisher_kind --
-- Whether a name is a field device ('device') or a gateway ('gateway'); no row: neither.
SELECT 'device' AS kind FROM things WHERE device_id = $1
UNION ALL
SELECT 'gateway' FROM gateways WHERE gateway_id = $1;

-- account --
-- A device's or gateway's broker account, revoked or not.
SELECT username, kind, created_at, rotated_at, revoked_at, cert_identity
FROM mqtt_accounts WHERE username = $1;

-- create_account --
-- Give a publisher without active credentials a secret (and a certificate identity, or
-- none): a new account, or a revoked one active again. No row: its account is active.
INSERT INTO mqtt_accounts AS a (username, kind, secret_hash, cert_identity)
VALUES ($1, $2, $3, $4)
ON CONFLICT (username) DO UPDATE
SET kind = EXCLUDED.kind, secret_hash = EXCLUDED.secret_hash,
    cert_identity = EXCLUDED.cert_identity, rotated_at = now(), revoked_at = NULL
WHERE a.revoked_at IS NOT NULL
RETURNING username, kind, created_at, rotated_at, revoked_at, cert_identity;

-- rotate_account --
-- A new secret and certificate identity (or none) for an active account, in one statement
-- so that a revocation committed meanwhile stands. No row: no active account.
UPDATE mqtt_accounts SET secret_hash = $2, cert_identity = $3, rotated_at = now()
WHERE username = $1 AND revoked_at IS NULL
RETURNING username, kind, created_at, rotated_at, revoked_at, cert_identity;

-- revoke_account --
-- Revoke an active account and forget its certificate identity; no row if there was none.
UPDATE mqtt_accounts SET revoked_at = now(), cert_identity = NULL
WHERE username = $1 AND revoked_at IS NULL
RETURNING username, kind, created_at, rotated_at, revoked_at, cert_identity;

-- active_accounts --
-- Accounts the broker accepts: not revoked, of a device or gateway that still exists.
SELECT a.username, a.kind, a.secret_hash, a.cert_identity
FROM mqtt_accounts a
WHERE a.revoked_at IS NULL
  AND (EXISTS (SELECT 1 FROM things t WHERE t.device_id = a.username AND a.kind = 'device')
       OR EXISTS (SELECT 1 FROM gateways g WHERE g.gateway_id = a.username
                  AND a.kind = 'gateway'))
ORDER BY a.username;

-- active_keys --
-- API keys the broker accepts: neither revoked nor expired.
SELECT key_id, agency_id, role, secret_hash, expires_at
FROM api_keys
WHERE revoked_at IS NULL AND expires_at > now()
ORDER BY key_id;

-- restricted_datastreams --
-- Datastreams only their own agency may read, with that agency.
SELECT id, agency_id FROM datastreams WHERE access = 'restricted' ORDER BY id;

-- agency_datastreams --
-- The Datastreams of some agencies (writers may create their Observations over MQTT).
SELECT id, agency_id FROM datastreams WHERE agency_id = ANY($1::bigint[]) ORDER BY id;

-- secret_hashes --
-- The accounts among some usernames: stored hash, and whether revoked.
SELECT username, secret_hash, revoked_at IS NOT NULL AS revoked FROM mqtt_accounts
WHERE username = ANY($1::text[]);
