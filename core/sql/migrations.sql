-- create_migrations_table --
-- The record of applied migrations; created before anything else.
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- lock --
-- One migrator at a time per database.
SELECT pg_advisory_lock(57412024);

-- unlock --
SELECT pg_advisory_unlock(57412024);

-- applied --
-- Versions already applied, oldest first.
SELECT version, name FROM schema_migrations ORDER BY version;

-- record --
INSERT INTO schema_migrations (version, name) VALUES ($1, $2);
