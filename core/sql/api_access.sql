-- key_for_check --
-- What the API needs to check key $1: its hash, role, agency, expiry and revocation.
SELECT k.key_id, k.secret_hash, k.role, k.expires_at, k.revoked_at,
       k.agency_id, a.code AS agency_code
FROM api_keys k JOIN agencies a ON a.id = k.agency_id
WHERE k.key_id = $1;

-- insert_key --
-- A new key of the agency with code $2; nothing is inserted when there is no such agency.
INSERT INTO api_keys (key_id, agency_id, role, label, secret_hash, expires_at)
SELECT $1, a.id, $3, $4, $5, $6 FROM agencies a WHERE a.code = $2
RETURNING key_id, created_at, expires_at;

-- list_keys --
-- Every key (of the agency with code $1, when it is not null), newest first; never a hash.
SELECT k.key_id, a.code AS agency, k.role, k.label, k.created_at, k.expires_at,
       k.revoked_at, k.expires_at <= now() AS expired
FROM api_keys k JOIN agencies a ON a.id = k.agency_id
WHERE $1::text IS NULL OR a.code = $1
ORDER BY k.created_at DESC, k.key_id;

-- revoke_key --
-- Revoke key $1 (once: the first revocation's time stays); its row, or none when unknown.
UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now())
WHERE key_id = $1
RETURNING key_id, revoked_at;

-- agencies_overview --
-- Each agency with its devices, open and restricted Datastreams and usable keys.
SELECT a.code, a.name,
       (SELECT count(*) FROM things t WHERE t.agency_id = a.id AND t.device_id IS NOT NULL)
           AS devices,
       (SELECT count(*) FROM datastreams d WHERE d.agency_id = a.id AND d.access = 'open')
           AS open_datastreams,
       (SELECT count(*) FROM datastreams d WHERE d.agency_id = a.id AND d.access = 'restricted')
           AS restricted_datastreams,
       (SELECT count(*) FROM api_keys k WHERE k.agency_id = a.id AND k.revoked_at IS NULL
           AND k.expires_at > now()) AS active_keys
FROM agencies a
ORDER BY a.code;

-- set_datastream_access --
-- Make Datastreams $1 open or restricted ($2); the ids that exist.
UPDATE datastreams SET access = $2 WHERE id = ANY($1::bigint[]) RETURNING id;

-- insert_audit --
-- One write request: who (key, agency), over which channel, what and with what outcome.
INSERT INTO audit_log (key_id, agency_id, channel, action, target, entities, status)
VALUES ($1, $2, $3, $4, $5, $6, $7);

-- owner_things --
SELECT agency_id FROM things WHERE id = $1;

-- owner_datastreams --
SELECT agency_id FROM datastreams WHERE id = $1;

-- owner_observations --
SELECT d.agency_id FROM observations o JOIN datastreams d ON d.id = o.datastream_id
WHERE o.id = $1;

-- owner_historical_locations --
SELECT t.agency_id FROM historical_locations h JOIN things t ON t.id = h.thing_id
WHERE h.id = $1;

-- hidden_datastreams --
-- The Datastreams the request's principal may not see.
SELECT stadspuls_hidden_datastreams();
