-- The analysts' entry point: the trend starts of any series, recomputed from market.bars.
CREATE OR REPLACE FUNCTION signals.trend_starts(
    contract_id text,
    timeframe text,
    from_ts timestamptz,
    to_ts timestamptz,
    profile text DEFAULT signals.default_profile()
) RETURNS TABLE (
    start_ts timestamptz,
    direction text,
    price numeric,
    confirmed_at timestamptz,
    rule text,
    rule_name text
)
LANGUAGE sql
STABLE
AS $$
    SELECT
        f.bar_ts,
        CASE WHEN f.event IN ('CUS', 'CUS_FORCED') THEN 'up' ELSE 'down' END,
        f.price,
        f.at_ts,
        f.rule,
        r.rule_name
    FROM unnest(internal.trend_first_starts(ARRAY(
        SELECT (e.at_bar, e.at_ts, e.event, e.bar, e.bar_ts, e.price, e.rule, e.state
        )::signals.trend_event
        FROM internal.trend_detect_series(
            trend_starts.profile, trend_starts.contract_id, trend_starts.timeframe,
            trend_starts.from_ts, trend_starts.to_ts
        ) WITH ORDINALITY AS e (at_bar, at_ts, event, bar, bar_ts, price, rule, state, ord)
        ORDER BY e.ord
    ))) AS f
    LEFT JOIN signals.trend_rules AS r ON f.rule = r.rule
    ORDER BY f.bar, f.event IN ('CUS', 'CUS_FORCED'), f.at_bar
$$;

COMMENT ON FUNCTION signals.trend_starts(text, text, timestamptz, timestamptz, text) IS
'Trend starts (docs/trend-starts.md) of one series: the closed bars of contract_id and timeframe '
'in market.bars with from_ts <= bucket < to_ts (NULL: unbounded), bar 1 being the first of '
'them, analysed by the detector of profile (signals.trend_profiles; default realtime, whose '
'starts are all confirmed by rules, usually one bar later). One row per start: start_ts (open '
'time of the start bar), direction (up/down), price (low for up, high for down), confirmed_at '
'(open time of the confirming bar; known when it closes), rule (U1-U5, D1-D5, ZU, ZD, or '
'FORCED: inserted by alternation, known only with hindsight) and rule_name. Ordered by start '
'bar, down before up.';
