-- Every detector event bar by bar (pending starts set and dropped, containment, confirmations):
-- a per-bar event log, for explaining why a start was or was not found.
CREATE OR REPLACE FUNCTION signals.trend_events(
    contract_id text,
    timeframe text,
    from_ts timestamptz,
    to_ts timestamptz,
    profile text DEFAULT signals.default_profile()
) RETURNS TABLE (
    at_bar bigint,
    at_ts timestamptz,
    event text,
    bar bigint,
    bar_ts timestamptz,
    detail text
)
LANGUAGE sql
STABLE
AS $$
    SELECT
        e.at_bar,
        e.at_ts,
        e.event,
        e.bar,
        e.bar_ts,
        CASE
            WHEN e.rule = 'X1' THEN 'X1 undercut'
            WHEN e.rule = 'X2' THEN 'X2 older than CDS'
            WHEN e.rule = 'FORCED' THEN 'FORCED'
            WHEN r.rule IS NOT NULL THEN r.rule || ' ' || r.rule_name
            ELSE coalesce(e.rule, '')
        END
    FROM internal.trend_detect_series(
        trend_events.profile, trend_events.contract_id, trend_events.timeframe,
        trend_events.from_ts, trend_events.to_ts, p_trace => true
    ) WITH ORDINALITY AS e (at_bar, at_ts, event, bar, bar_ts, price, rule, state, ord)
    LEFT JOIN signals.trend_rules AS r ON e.rule = r.rule
    WHERE e.event <> 'STATE'
    ORDER BY e.ord
$$;

COMMENT ON FUNCTION signals.trend_events(text, text, timestamptz, timestamptz, text) IS
'The detector''s event log for the series signals.trend_starts analyses: at bar at_bar '
'(number, open time at_ts) event happened to bar bar (PUS_SET/PDS_SET with detail N1, N2, N3, '
'A1, A2; PUS_DROPPED with X1/X2; CUS/CDS with the rule; CUS_FORCED/CDS_FORCED; '
'CONTAINMENT_START/CONTAINMENT_END for the reference bar), in processing order. Starts here '
'are not deduplicated; offers that change nothing are not events.';
