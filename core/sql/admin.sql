-- database_exists --
-- Whether a database of this name exists in the cluster.
SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1);

-- extension_versions --
-- Versions of the extensions the platform depends on, as installed in this database.
SELECT extname, extversion FROM pg_extension WHERE extname IN ('timescaledb', 'postgis')
ORDER BY extname;

-- disconnect_database --
-- End every other session on a database (background workers included).
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = $1 AND pid <> pg_backend_pid();
