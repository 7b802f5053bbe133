-- publisher_kind --
-- Whether a name is a field device ('device') or a gateway ('gateway'); no row: neither.
SELECT 'device' AS kind FROM things WHERE device_id = $1
UNION ALL
SELECT 'gateway' FROM gateways WHERE gateway_id = $1;

-- account --
-- A device's or gateway's broker account, revoked or not.
SELECT username, kind, created_at, rotated_at, revoked_at
FROM mqtt_accounts WHERE username = $1;

-- store_account --
-- Give a publisher a new secret: a new account, or a new secret for an old one (rotated,
-- or revoked before and active again).
INSERT INTO mqtt_accounts AS a (username, kind, secret_hash)
VALUES ($1, $2, $3)
ON CONFLICT (username) DO UPDATE
SET kind = EXCLUDED.kind, secret_hash = EXCLUDED.secret_hash, rotated_at = now(),
    revoked_at = NULL
RETURNING username, kind, created_at, rotated_at, revoked_at;

-- revoke_account --
-- Revoke an active account; no row if there was none.
UPDATE mqtt_accounts SET revoked_at = now()
WHERE username = $1 AND revoked_at IS NULL
RETURNING username, kind, created_at, rotated_at, revoked_at;

-- active_accounts --
-- Accounts the broker accepts: not revoked, of a device or gateway that still exists.
SELECT a.username, a.kind, a.secret_hash
FROM mqtt_accounts a
WHERE a.revoked_at IS NULL
  AND (EXISTS (SELECT 1 FROM things t WHERE t.device_id = a.username AND a.kind = 'device')
       OR EXISTS (SELECT 1 FROM gateways g WHERE g.gateway_id = a.username
                  AND a.kind = 'gateway'))
ORDER BY a.username;

-- active_keys --
-- API keys the broker accepts: neither revoked nor expired.
SELECT key_id, agency_id, role, secret_hash
FROM api_keys
WHERE revoked_at IS NULL AND expires_at > now()
ORDER BY key_id;

-- restricted_datastreams --
-- Datastreams only their own agency may read, with that agency.
SELECT id, agency_id FROM datastreams WHERE access = 'restricted' ORDER BY id;

-- agency_datastreams --
-- The Datastreams of some agencies (writers may create their Observations over MQTT).
SELECT id, agency_id FROM datastreams WHERE agency_id = ANY($1::bigint[]) ORDER BY id;

-- active_secret_hashes --
-- The stored hashes of the active accounts among some usernames.
SELECT username, secret_hash FROM mqtt_accounts
WHERE username = ANY($1::text[]) AND revoked_at IS NULL;
