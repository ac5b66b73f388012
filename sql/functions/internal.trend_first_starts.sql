-- docs/trend-starts.md section 7: of the starts raised, the first per bar and direction. Shared by
-- signals.trend_starts (a whole series) and signals.trend_advance (one run).
CREATE OR REPLACE FUNCTION internal.trend_first_starts(p_events signals.trend_event[])
RETURNS signals.trend_event[]
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT coalesce(array_agg(f.e ORDER BY f.ord), '{}')
    FROM (
        SELECT DISTINCT ON (u.bar_ts, u.event IN ('CUS', 'CUS_FORCED'))
            u.ord,
            (u.at_bar, u.at_ts, u.event, u.bar, u.bar_ts, u.price, u.rule, NULL
            )::signals.trend_event AS e
        FROM unnest(p_events) WITH ORDINALITY AS u (
            at_bar, at_ts, event, bar, bar_ts, price, rule, state, ord
        )
        WHERE u.event IN ('CUS', 'CDS', 'CUS_FORCED', 'CDS_FORCED')
        ORDER BY u.bar_ts, u.event IN ('CUS', 'CUS_FORCED'), u.ord
    ) AS f (ord, e)
$$;

COMMENT ON FUNCTION internal.trend_first_starts(signals.trend_event[]) IS
'The starts (CUS, CDS and forced) among detector events p_events (in processing order), only '
'the first per start bar and direction, in the order raised, without state.';
