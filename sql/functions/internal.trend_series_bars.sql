-- The one query that reads a series' closed bars for the detector (internal.trend_detect_series,
-- and the replays of the trend jobs). One row; SETOF so that the planner inlines it into its
-- caller's query (with the caller's constants, as if written there).
CREATE OR REPLACE FUNCTION internal.trend_series_bars(
    p_contract_id text,
    p_timeframe text,
    p_from_ts timestamptz,
    p_to_ts timestamptz
) RETURNS SETOF internal.trend_window
LANGUAGE sql
STABLE
AS $$
    SELECT
        1::bigint,
        1,
        NULL::jsonb,
        array_agg(b.bucket),
        array_agg(b.open),
        array_agg(b.high),
        array_agg(b.low),
        array_agg(b.close)
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
$$;

COMMENT ON FUNCTION internal.trend_series_bars(text, text, timestamptz, timestamptz) IS
'The closed bars of series p_contract_id (a contract id or a root: market.series_bars) and '
'p_timeframe with p_from_ts <= bucket < p_to_ts (NULL: unbounded), ascending, as one '
'internal.trend_window row starting afresh (first_bar_no 1, new_from 1, no state).';
