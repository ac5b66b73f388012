-- When a bar opens: its bucket, except daily bars, labelled with their trading date at 00:00 UTC,
-- which open at 17:00 Chicago the day before.
CREATE OR REPLACE FUNCTION market.session_bar_start(
    p_timeframe text, p_bucket timestamptz
) RETURNS timestamptz
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
RETURN CASE p_timeframe
    WHEN '1d'
        THEN
            ((p_bucket AT TIME ZONE 'UTC')::date - 1 + time '17:00') AT TIME ZONE 'America/Chicago'
    ELSE p_bucket
END;

COMMENT ON FUNCTION market.session_bar_start(text, timestamptz) IS
'Open time of the bar of the given timeframe labelled p_bucket in market.bars (the bucket '
'itself, except 1d: 17:00 America/Chicago on the day before the trading date).';
