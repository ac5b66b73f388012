-- Group roles (cluster-wide, so created only when missing). Log-in users are granted these.
-- Privileges themselves live in sql/functions/privileges.sql, re-applied by every migrate.

DO $$
BEGIN
    CREATE ROLE mechtrade_ingest NOLOGIN;
EXCEPTION WHEN duplicate_object THEN
    NULL;
END
$$;
COMMENT ON ROLE mechtrade_ingest IS
'The ingester: writes ticks and imported history bars, nothing else.';

DO $$
BEGIN
    CREATE ROLE mechtrade_analyst NOLOGIN;
EXCEPTION WHEN duplicate_object THEN
    NULL;
END
$$;
COMMENT ON ROLE mechtrade_analyst IS
'Analysts: read-only access to market data and signals.';
