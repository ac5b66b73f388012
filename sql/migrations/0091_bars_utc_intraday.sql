-- Rebuild the bar hierarchy with UTC buckets below 4h, and refresh policies in large batches.
--
-- 1m, 5m, 15m and 1h bars start on whole UTC minutes and hours, which are also whole Chicago
-- minutes and hours, so they need no time zone: plain UTC buckets group ~75% faster, and a
-- refresh can restrict its scan by time. Only 4h and 1d bars follow the Chicago session
-- (17:00 local, 22:00 or 23:00 UTC). TimescaleDB requires every level of a hierarchy to share
-- the bucket origin, not the time zone: all levels keep the origin 2000-01-02 23:00 UTC
-- (17:00 CST on a Sunday), and 4h and 1d buckets are cut in America/Chicago from it.
--
-- Refresh batches: TimescaleDB 2.28 commits every 10 buckets by default (144 commits per day
-- of 1m bars), which made the 1m refresh 11x a plain GROUP BY. Here a batch is a week of 1m or
-- 5m buckets (the ticks of a week) and 1000 buckets of the coarser levels, which read a few
-- rows per bucket and would otherwise pay the fixed cost of a batch every few hundred rows.
-- market.refresh_bars reads the same setting, so `alter_job` on a policy tunes both.
--
-- The bars are re-derived from market.ticks by the next migration (0092); market.history_bars
-- is a table and is kept. market.bars and the views over it (repeatable files) are dropped here
-- and re-created after the migrations. Nothing else may depend on the bar views: a dependent
-- object makes this migration fail rather than vanish.

-- Wait for a refresh that was already running when 0090 paused the policies (at most a minute).
DO $$
DECLARE
    v_deadline timestamptz := clock_timestamp() + INTERVAL '60 seconds';
BEGIN
    LOOP
        PERFORM pg_stat_clear_snapshot();
        EXIT WHEN NOT EXISTS (
            SELECT 1
            FROM pg_stat_activity
            WHERE
                datname = current_database()
                AND application_name LIKE 'Refresh Continuous Aggregate Policy%'
        );
        IF clock_timestamp() > v_deadline THEN
            RAISE EXCEPTION 'a bar refresh policy is still running after 60 s'
            USING HINT = 'Run mechtrade migrate again once it has finished.';
        END IF;
        PERFORM pg_sleep(0.1);
    END LOOP;
END;
$$;

DROP VIEW IF EXISTS signals.signal_bars;
DROP VIEW IF EXISTS signals.trend_job_status;
DROP VIEW IF EXISTS market.series_bars;
DROP VIEW IF EXISTS market.continuous_bars_adjusted;
DROP VIEW IF EXISTS market.continuous_bars;
DROP VIEW IF EXISTS market.bars;
DROP MATERIALIZED VIEW market.bars_1d;
DROP MATERIALIZED VIEW market.bars_4h;
DROP MATERIALIZED VIEW market.bars_1h;
DROP MATERIALIZED VIEW market.bars_15m;
DROP MATERIALIZED VIEW market.bars_5m;
DROP MATERIALIZED VIEW market.bars_1m;

CREATE MATERIALIZED VIEW market.bars_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = FALSE) AS
SELECT
    contract_id,
    time_bucket(
        '1 minute', ts, origin => '2000-01-02 23:00:00+00'::timestamptz
    ) AS bucket,
    first(price, ts) AS open,
    max(price) AS high,
    min(price) AS low,
    last(price, ts) AS close,
    sum(size)::bigint AS volume,
    count(*) AS trade_count,
    coalesce(sum(size) FILTER (WHERE side = 0), 0)::bigint AS buy_volume,
    coalesce(sum(size) FILTER (WHERE side = 1), 0)::bigint AS sell_volume
FROM market.ticks
GROUP BY 1, 2
WITH NO DATA;

CREATE MATERIALIZED VIEW market.bars_5m
WITH (timescaledb.continuous, timescaledb.materialized_only = FALSE) AS
SELECT
    contract_id,
    time_bucket(
        '5 minutes', bucket, origin => '2000-01-02 23:00:00+00'::timestamptz
    ) AS bucket,
    first(open, bucket) AS open,
    max(high) AS high,
    min(low) AS low,
    last(close, bucket) AS close,
    sum(volume)::bigint AS volume,
    sum(trade_count)::bigint AS trade_count,
    sum(buy_volume)::bigint AS buy_volume,
    sum(sell_volume)::bigint AS sell_volume
FROM market.bars_1m
GROUP BY 1, 2
WITH NO DATA;

CREATE MATERIALIZED VIEW market.bars_15m
WITH (timescaledb.continuous, timescaledb.materialized_only = FALSE) AS
SELECT
    contract_id,
    time_bucket(
        '15 minutes', bucket, origin => '2000-01-02 23:00:00+00'::timestamptz
    ) AS bucket,
    first(open, bucket) AS open,
    max(high) AS high,
    min(low) AS low,
    last(close, bucket) AS close,
    sum(volume)::bigint AS volume,
    sum(trade_count)::bigint AS trade_count,
    sum(buy_volume)::bigint AS buy_volume,
    sum(sell_volume)::bigint AS sell_volume
FROM market.bars_5m
GROUP BY 1, 2
WITH NO DATA;

CREATE MATERIALIZED VIEW market.bars_1h
WITH (timescaledb.continuous, timescaledb.materialized_only = FALSE) AS
SELECT
    contract_id,
    time_bucket(
        '1 hour', bucket, origin => '2000-01-02 23:00:00+00'::timestamptz
    ) AS bucket,
    first(open, bucket) AS open,
    max(high) AS high,
    min(low) AS low,
    last(close, bucket) AS close,
    sum(volume)::bigint AS volume,
    sum(trade_count)::bigint AS trade_count,
    sum(buy_volume)::bigint AS buy_volume,
    sum(sell_volume)::bigint AS sell_volume
FROM market.bars_15m
GROUP BY 1, 2
WITH NO DATA;

CREATE MATERIALIZED VIEW market.bars_4h
WITH (timescaledb.continuous, timescaledb.materialized_only = FALSE) AS
SELECT
    contract_id,
    time_bucket(
        '4 hours', bucket, 'America/Chicago', '2000-01-02 23:00:00+00'
    ) AS bucket,
    first(open, bucket) AS open,
    max(high) AS high,
    min(low) AS low,
    last(close, bucket) AS close,
    sum(volume)::bigint AS volume,
    sum(trade_count)::bigint AS trade_count,
    sum(buy_volume)::bigint AS buy_volume,
    sum(sell_volume)::bigint AS sell_volume
FROM market.bars_1h
GROUP BY 1, 2
WITH NO DATA;

CREATE MATERIALIZED VIEW market.bars_1d
WITH (timescaledb.continuous, timescaledb.materialized_only = FALSE) AS
SELECT
    contract_id,
    time_bucket(
        '1 day', bucket, 'America/Chicago', '2000-01-02 23:00:00+00'
    ) AS bucket,
    first(open, bucket) AS open,
    max(high) AS high,
    min(low) AS low,
    last(close, bucket) AS close,
    sum(volume)::bigint AS volume,
    sum(trade_count)::bigint AS trade_count,
    sum(buy_volume)::bigint AS buy_volume,
    sum(sell_volume)::bigint AS sell_volume
FROM market.bars_4h
GROUP BY 1, 2
WITH NO DATA;

COMMENT ON VIEW market.bars_1m IS
'1-minute OHLCV bars built from ticks; bucket = bar open time (whole UTC minutes). '
'Real-time: the forming bar is included. Prefer market.bars.';

COMMENT ON VIEW market.bars_5m IS
'5-minute OHLCV bars built from market.bars_1m; bucket = bar open time. '
'Real-time: the forming bar is included. Prefer market.bars.';

COMMENT ON VIEW market.bars_15m IS
'15-minute OHLCV bars built from market.bars_5m; bucket = bar open time. '
'Real-time: the forming bar is included. Prefer market.bars.';

COMMENT ON VIEW market.bars_1h IS
'1-hour OHLCV bars built from market.bars_15m; bucket = bar open time. '
'Real-time: the forming bar is included. Prefer market.bars.';

COMMENT ON VIEW market.bars_4h IS
'4-hour OHLCV bars built from market.bars_1h; bucket = bar open time. '
'Real-time: the forming bar is included. Prefer market.bars.';

COMMENT ON VIEW market.bars_1d IS
'Daily OHLCV bars built from market.bars_4h; bucket = bar open time '
'(17:00 America/Chicago, the session open; market.bars labels it with the trading date). '
'Real-time: the forming bar is included. Prefer market.bars.';

SELECT add_continuous_aggregate_policy(
    'market.bars_1m',
    start_offset => interval '3 hours',
    end_offset => interval '1 minute',
    schedule_interval => interval '1 minute',
    buckets_per_batch => 10080
);

SELECT add_continuous_aggregate_policy(
    'market.bars_5m',
    start_offset => interval '6 hours',
    end_offset => interval '5 minutes',
    schedule_interval => interval '1 minute',
    buckets_per_batch => 2016
);

SELECT add_continuous_aggregate_policy(
    'market.bars_15m',
    start_offset => interval '12 hours',
    end_offset => interval '15 minutes',
    schedule_interval => interval '5 minutes',
    buckets_per_batch => 1000
);

SELECT add_continuous_aggregate_policy(
    'market.bars_1h',
    start_offset => interval '2 days',
    end_offset => interval '1 hour',
    schedule_interval => interval '5 minutes',
    buckets_per_batch => 1000
);

SELECT add_continuous_aggregate_policy(
    'market.bars_4h',
    start_offset => interval '4 days',
    end_offset => interval '4 hours',
    schedule_interval => interval '15 minutes',
    buckets_per_batch => 1000
);

SELECT add_continuous_aggregate_policy(
    'market.bars_1d',
    start_offset => interval '10 days',
    end_offset => interval '1 day',
    schedule_interval => interval '1 hour',
    buckets_per_batch => 1000
);
