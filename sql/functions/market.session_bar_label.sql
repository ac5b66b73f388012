-- The label (market.bars.bucket) of the bar opening at p_opens_at: its open time, except daily
-- bars, which open at 17:00 Chicago and are labelled with their trading date (the next calendar
-- day) at 00:00 UTC, as ProjectX labels them. The inverse of market.session_bar_start.
CREATE OR REPLACE FUNCTION market.session_bar_label(
    p_timeframe text, p_opens_at timestamptz
) RETURNS timestamptz
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
RETURN CASE p_timeframe
    WHEN '1d'
        THEN ((p_opens_at AT TIME ZONE 'America/Chicago')::date + 1)::timestamp AT TIME ZONE 'UTC'
    ELSE p_opens_at
END;

COMMENT ON FUNCTION market.session_bar_label(text, timestamptz) IS
'Label in market.bars (bucket) of the bar of the given timeframe that opens at p_opens_at: the '
'open time itself, except 1d: the trading date at 00:00 UTC (a daily bar opens at 17:00 '
'America/Chicago the day before). The inverse of market.session_bar_start().';
