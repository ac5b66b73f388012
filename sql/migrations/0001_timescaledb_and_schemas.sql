-- TimescaleDB with its Community (TSL) features, the three schemas, and migration bookkeeping.

CREATE EXTENSION IF NOT EXISTS timescaledb;

DO $$
BEGIN
    IF current_setting('timescaledb.license', true) IS DISTINCT FROM 'timescale' THEN
        RAISE EXCEPTION 'TimescaleDB here is the Apache-2 edition (timescaledb.license = %)',
            coalesce(current_setting('timescaledb.license', true), 'unset')
        USING HINT = 'mechtrade needs continuous aggregates and jobs: install the Community '
            'build of TimescaleDB and set timescaledb.license = ''timescale''.';
    END IF;
END
$$;

CREATE SCHEMA IF NOT EXISTS market;
COMMENT ON SCHEMA market IS
'Market data: raw trade ticks, OHLCV bars built from them, bars imported from the gateway.';

CREATE SCHEMA IF NOT EXISTS signals;
COMMENT ON SCHEMA signals IS
'Trend-start detection: configuration, detected signals and trading decisions.';

CREATE SCHEMA IF NOT EXISTS internal;
COMMENT ON SCHEMA internal IS
'mechtrade internals (migration bookkeeping, detector state, watermarks); not for analysts.';

CREATE TABLE IF NOT EXISTS internal.schema_migrations (
    filename text PRIMARY KEY,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    applied_by text NOT NULL DEFAULT current_user
);
COMMENT ON TABLE internal.schema_migrations IS
'One row per applied file of sql/migrations, with the SHA-256 of its text when applied.';
