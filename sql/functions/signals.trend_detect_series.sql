-- The detector over one series of market.series_bars (a contract or a root), as trend_starts,
-- trend_events and trend_states read it.
CREATE OR REPLACE FUNCTION signals.trend_detect_series(
    p_profile text,
    p_contract_id text,
    p_timeframe text,
    p_from_ts timestamptz,
    p_to_ts timestamptz,
    p_trace boolean DEFAULT FALSE
) RETURNS SETOF signals.trend_event
LANGUAGE sql
STABLE
AS $$
    WITH series AS (
        SELECT
            array_agg(b.bucket) AS ts,
            array_agg(b.open) AS o,
            array_agg(b.high) AS h,
            array_agg(b.low) AS l,
            array_agg(b.close) AS c
        FROM (
            SELECT mb.bucket, mb.open, mb.high, mb.low, mb.close
            FROM market.series_bars AS mb
            WHERE
                mb.series = p_contract_id
                AND mb.timeframe = p_timeframe
                AND mb.is_closed
                AND mb.bucket >= coalesce(p_from_ts, '-infinity')
                AND mb.bucket < coalesce(p_to_ts, 'infinity')
            ORDER BY mb.bucket
        ) AS b
    )

    SELECT e.*
    FROM series
    CROSS JOIN LATERAL signals.trend_detect(
        p_profile, series.ts, series.o, series.h, series.l, series.c, p_trace => p_trace
    ) AS e
$$;

COMMENT ON FUNCTION signals.trend_detect_series(
    text, text, text, timestamptz, timestamptz, boolean
) IS
'The detector of p_profile over the closed bars of p_contract_id (a contract id, or a root '
'symbol for its continuous series: market.series_bars) and p_timeframe with p_from_ts <= '
'bucket < p_to_ts (NULL: unbounded), bar 1 being the first of them: the events of '
'signals.trend_detect in processing order (with per-bar STATE rows when p_trace).';
