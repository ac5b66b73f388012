-- The detector over one series of market.series_bars (a contract or a root), as trend_starts,
-- trend_events and trend_states read it.
CREATE OR REPLACE FUNCTION internal.trend_detect_series(
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
    SELECT e.*
    FROM internal.trend_series_bars(p_contract_id, p_timeframe, p_from_ts, p_to_ts) AS w
    CROSS JOIN LATERAL internal.trend_detect(
        p_profile, w.ts, w.open, w.high, w.low, w.close, p_trace => p_trace
    ) AS e
$$;

COMMENT ON FUNCTION internal.trend_detect_series(
    text, text, text, timestamptz, timestamptz, boolean
) IS
'The detector of p_profile over the closed bars of p_contract_id (a contract id, or a root '
'symbol for its continuous series: market.series_bars) and p_timeframe with p_from_ts <= '
'bucket < p_to_ts (NULL: unbounded), bar 1 being the first of them: the events of '
'internal.trend_detect in processing order (with per-bar STATE rows when p_trace).';
