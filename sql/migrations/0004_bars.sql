-- OHLCV bars as a hierarchy of continuous aggregates: 1m from ticks, each coarser level from
-- the one below. Every level buckets in America/Chicago local time from an origin at 17:00
-- (the CME Globex session open), because TimescaleDB requires a child's time zone and origin
-- to equal its parent's. Intraday widths divide the session evenly, so 4h bars start at
-- 17:00, 21:00, 01:00, ... Chicago time (22:00, 02:00, ... UTC in summer, 23:00, 03:00, ...
-- in winter) and 1d bars span 17:00 to 17:00, exactly as ProjectX cuts them.
-- The origin 2000-01-02 23:00 UTC is 17:00 CST on a Sunday.

CREATE TABLE market.timeframes (
    timeframe text PRIMARY KEY,
    bucket_width interval NOT NULL UNIQUE,
    gateway_unit smallint NOT NULL,
    gateway_unit_number integer NOT NULL,
    CONSTRAINT timeframes_gateway_unit_known CHECK (gateway_unit BETWEEN 1 AND 6),
    CONSTRAINT timeframes_gateway_unit_number_positive CHECK (gateway_unit_number > 0)
);
COMMENT ON TABLE market.timeframes IS
'The bar timeframes: code used in market.bars, bucket width, and the ProjectX retrieveBars '
'unit (2 = minute, 3 = hour, 4 = day) and unitNumber that fetch the same bars.';

INSERT INTO market.timeframes (timeframe, bucket_width, gateway_unit, gateway_unit_number)
VALUES
('1m', '1 minute', 2, 1),
('5m', '5 minutes', 2, 5),
('15m', '15 minutes', 2, 15),
('1h', '1 hour', 3, 1),
('4h', '4 hours', 3, 4),
('1d', '1 day', 4, 1);

CREATE MATERIALIZED VIEW market.bars_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = FALSE) AS
SELECT
    contract_id,
    time_bucket(
        '1 minute', ts, 'America/Chicago', '2000-01-02 23:00:00+00'
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
        '5 minutes', bucket, 'America/Chicago', '2000-01-02 23:00:00+00'
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
        '15 minutes', bucket, 'America/Chicago', '2000-01-02 23:00:00+00'
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
        '1 hour', bucket, 'America/Chicago', '2000-01-02 23:00:00+00'
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
'1-minute OHLCV bars built from ticks; bucket = bar open time. '
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
    schedule_interval => interval '1 minute'
);

SELECT add_continuous_aggregate_policy(
    'market.bars_5m',
    start_offset => interval '6 hours',
    end_offset => interval '5 minutes',
    schedule_interval => interval '1 minute'
);

SELECT add_continuous_aggregate_policy(
    'market.bars_15m',
    start_offset => interval '12 hours',
    end_offset => interval '15 minutes',
    schedule_interval => interval '5 minutes'
);

SELECT add_continuous_aggregate_policy(
    'market.bars_1h',
    start_offset => interval '2 days',
    end_offset => interval '1 hour',
    schedule_interval => interval '5 minutes'
);

SELECT add_continuous_aggregate_policy(
    'market.bars_4h',
    start_offset => interval '4 days',
    end_offset => interval '4 hours',
    schedule_interval => interval '15 minutes'
);

SELECT add_continuous_aggregate_policy(
    'market.bars_1d',
    start_offset => interval '10 days',
    end_offset => interval '1 day',
    schedule_interval => interval '1 hour'
);

CREATE TABLE market.history_bars (
    contract_id text NOT NULL,
    timeframe text NOT NULL REFERENCES market.timeframes (timeframe),
    bucket timestamptz NOT NULL,
    open numeric NOT NULL,
    high numeric NOT NULL,
    low numeric NOT NULL,
    close numeric NOT NULL,
    volume bigint NOT NULL,
    fetched_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT history_bars_pkey PRIMARY KEY (contract_id, timeframe, bucket),
    CONSTRAINT history_bars_volume_non_negative CHECK (volume >= 0),
    CONSTRAINT history_bars_ohlc_consistent CHECK (
        low <= least(open, close) AND high >= greatest(open, close)
    )
);
COMMENT ON TABLE market.history_bars IS
'Bars imported from the gateway REST history (retrieveBars), labelled as ProjectX labels them '
'(1d bars at 00:00 UTC of the trading date). market.bars uses them where no tick bar exists.';
COMMENT ON COLUMN market.history_bars.fetched_at IS 'When the bar was last fetched.';
