-- When a bar closes: its open time plus its width in Chicago local time. Daily bars are
-- labelled with their trading date at 00:00 UTC and close at 17:00 Chicago on that date.
CREATE OR REPLACE FUNCTION market.session_bar_end(
    p_timeframe text, p_bucket timestamptz
) RETURNS timestamptz
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
RETURN CASE p_timeframe
    WHEN '1d'
        THEN
            ((p_bucket AT TIME ZONE 'UTC')::date + time '17:00') AT TIME ZONE 'America/Chicago'
    ELSE (
        (p_bucket AT TIME ZONE 'America/Chicago') + CASE p_timeframe
            WHEN '1m' THEN interval '1 minute'
            WHEN '5m' THEN interval '5 minutes'
            WHEN '15m' THEN interval '15 minutes'
            WHEN '1h' THEN interval '1 hour'
            WHEN '4h' THEN interval '4 hours'
        END
    ) AT TIME ZONE 'America/Chicago'
END;

COMMENT ON FUNCTION market.session_bar_end(text, timestamptz) IS
'Close time of the bar of the given timeframe (1m, 5m, 15m, 1h, 4h, 1d) labelled p_bucket, '
'as labelled in market.bars. NULL for an unknown timeframe.';
