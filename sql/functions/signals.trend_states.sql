-- The detector state at the end of every bar (docs/trend-starts.md section 3), for tracing a
-- series bar by bar.
CREATE OR REPLACE FUNCTION signals.trend_states(
    contract_id text,
    timeframe text,
    from_ts timestamptz,
    to_ts timestamptz,
    profile text DEFAULT signals.default_profile()
) RETURNS TABLE (
    bar bigint,
    bar_ts timestamptz,
    pus_bar bigint,
    pds_bar bigint,
    containment_ref_bar bigint,
    last_direction text,
    last_start_bar bigint
)
LANGUAGE sql
STABLE
AS $$
    SELECT
        e.at_bar,
        e.at_ts,
        (e.state ->> 'pus')::bigint,
        (e.state ->> 'pds')::bigint,
        (e.state ->> 'cont_ref')::bigint,
        coalesce(e.state ->> 'last_dir', CASE WHEN e.state ->> 'last_down' IS NOT NULL THEN 'down' END),
        coalesce((e.state ->> 'last_bar')::bigint, (e.state ->> 'last_down')::bigint)
    FROM internal.trend_detect_series(
        trend_states.profile, trend_states.contract_id, trend_states.timeframe,
        trend_states.from_ts, trend_states.to_ts, p_trace => true
    ) AS e
    WHERE e.event = 'STATE'
    ORDER BY e.at_bar
$$;

COMMENT ON FUNCTION signals.trend_states(text, text, timestamptz, timestamptz, text) IS
'Detector state after every bar of the series signals.trend_starts analyses '
'(docs/trend-starts.md section 3): '
'bar number and open time, the PUS and PDS bars, the containment reference bar, and the '
'direction and bar of the last confirmed start (all bar numbers count from 1 = first bar).';
