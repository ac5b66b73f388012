-- The one relation analysts and the signal functions read: bars of every timeframe, tick-derived
-- where ticks exist, imported history elsewhere.
CREATE OR REPLACE VIEW market.bars AS
SELECT DISTINCT ON (candidates.contract_id, candidates.timeframe, candidates.bucket)
    candidates.contract_id,
    candidates.timeframe,
    candidates.bucket,
    candidates.open,
    candidates.high,
    candidates.low,
    candidates.close,
    candidates.volume,
    candidates.trade_count,
    candidates.buy_volume,
    candidates.sell_volume,
    candidates.source,
    market.session_bar_end(candidates.timeframe, candidates.bucket) AS closes_at,
    market.session_bar_end(candidates.timeframe, candidates.bucket) <= now() AS is_closed
FROM (
    SELECT
        contract_id,
        '1m' AS timeframe,
        bucket,
        open,
        high,
        low,
        close,
        volume,
        trade_count,
        buy_volume,
        sell_volume,
        'ticks' AS source,
        1 AS preference
    FROM market.bars_1m
    UNION ALL
    SELECT
        contract_id,
        '5m' AS timeframe,
        bucket,
        open,
        high,
        low,
        close,
        volume,
        trade_count,
        buy_volume,
        sell_volume,
        'ticks' AS source,
        1 AS preference
    FROM market.bars_5m
    UNION ALL
    SELECT
        contract_id,
        '15m' AS timeframe,
        bucket,
        open,
        high,
        low,
        close,
        volume,
        trade_count,
        buy_volume,
        sell_volume,
        'ticks' AS source,
        1 AS preference
    FROM market.bars_15m
    UNION ALL
    SELECT
        contract_id,
        '1h' AS timeframe,
        bucket,
        open,
        high,
        low,
        close,
        volume,
        trade_count,
        buy_volume,
        sell_volume,
        'ticks' AS source,
        1 AS preference
    FROM market.bars_1h
    UNION ALL
    SELECT
        contract_id,
        '4h' AS timeframe,
        bucket,
        open,
        high,
        low,
        close,
        volume,
        trade_count,
        buy_volume,
        sell_volume,
        'ticks' AS source,
        1 AS preference
    FROM market.bars_4h
    UNION ALL
    -- The daily bucket opens at 17:00 Chicago; ProjectX labels the bar with the trading date.
    SELECT
        contract_id,
        '1d' AS timeframe,
        market.session_bar_label('1d', bucket) AS bucket,
        open,
        high,
        low,
        close,
        volume,
        trade_count,
        buy_volume,
        sell_volume,
        'ticks' AS source,
        1 AS preference
    FROM market.bars_1d
    UNION ALL
    SELECT
        h.contract_id,
        h.timeframe,
        h.bucket,
        h.open,
        h.high,
        h.low,
        h.close,
        h.volume,
        NULL AS trade_count,
        NULL AS buy_volume,
        NULL AS sell_volume,
        'history' AS source,
        -- A feed gap touched this bar, so its tick-built twin is incomplete: a history bar
        -- fetched after the bar closed is the complete one and wins.
        CASE
            WHEN
                h.fetched_at >= market.session_bar_end(h.timeframe, h.bucket)
                AND EXISTS (
                    SELECT 1
                    FROM market.feed_gaps AS g
                    WHERE
                        g.contract_id = h.contract_id
                        AND g.gap_start < market.session_bar_end(h.timeframe, h.bucket)
                        AND g.gap_end > market.session_bar_start(h.timeframe, h.bucket)
                )
                THEN 0
            ELSE 2
        END AS preference
    FROM market.history_bars AS h
) AS candidates
ORDER BY
    candidates.contract_id,
    candidates.timeframe,
    candidates.bucket,
    candidates.preference;

COMMENT ON VIEW market.bars IS
'OHLCV bars, one row per (contract_id, timeframe, bucket); timeframe is 1m, 5m, 15m, 1h, 4h '
'or 1d. Built from ticks where there are ticks (source = ticks), else imported gateway history '
'(source = history); where a feed gap (market.feed_gaps) touched a bar, the complete history '
'bar fetched after it closed wins over the incomplete tick-built one. bucket is the bar '
'open time, except 1d: 00:00 UTC of the trading date, '
'as ProjectX labels it. Sessions follow CME Globex (17:00 America/Chicago). '
'The forming bar is included with is_closed = false.';
COMMENT ON COLUMN market.bars.trade_count IS 'Number of trades; NULL for imported history.';
COMMENT ON COLUMN market.bars.buy_volume IS 'Volume of buyer-initiated trades; NULL for history.';
COMMENT ON COLUMN market.bars.sell_volume IS 'Volume of seller-initiated trades; NULL for history.';
COMMENT ON COLUMN market.bars.source IS 'ticks (built from market.ticks) or history (imported).';
COMMENT ON COLUMN market.bars.closes_at IS 'When the bar closes (end of its bucket).';
COMMENT ON COLUMN market.bars.is_closed IS 'True once closes_at has passed.';
