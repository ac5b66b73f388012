-- When a bar closes: its open time plus its width in Chicago local time, but no later than the
-- daily halt. CME Globex equity index futures stop trading at 16:00 Chicago and reopen at 17:00,
-- so the last bar of a session (the daily bar, the 4h bar opening at 13:00 Chicago) is complete
-- at 16:00. Daily bars are labelled with their trading date at 00:00 UTC. Holidays and early
-- closes are not in a calendar here: their bars close when the regular halt comes.
CREATE OR REPLACE FUNCTION market.session_bar_end(
    p_timeframe text, p_bucket timestamptz
) RETURNS timestamptz
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
RETURN CASE
    WHEN p_timeframe = '1d'
        THEN
            ((p_bucket AT TIME ZONE 'UTC')::date + time '16:00') AT TIME ZONE 'America/Chicago'
    WHEN p_timeframe IN ('1m', '5m', '15m', '1h', '4h')
        THEN least(
            (p_bucket AT TIME ZONE 'America/Chicago') + CASE p_timeframe
                WHEN '1m' THEN interval '1 minute'
                WHEN '5m' THEN interval '5 minutes'
                WHEN '15m' THEN interval '15 minutes'
                WHEN '1h' THEN interval '1 hour'
                WHEN '4h' THEN interval '4 hours'
            END,
            -- the halt that ends the session this bar opened in (none for bars opened in it)
            CASE
                WHEN (p_bucket AT TIME ZONE 'America/Chicago')::time < time '16:00'
                    THEN (p_bucket AT TIME ZONE 'America/Chicago')::date + time '16:00'
            END
        ) AT TIME ZONE 'America/Chicago'
END;

COMMENT ON FUNCTION market.session_bar_end(text, timestamptz) IS
'Close time of the bar of the given timeframe (1m, 5m, 15m, 1h, 4h, 1d) labelled p_bucket, '
'as labelled in market.bars: open time plus width, or the 16:00 Chicago halt if that comes '
'first (the daily bar and the last 4h bar of a session close at the halt). Holidays and early '
'closes are not known: those bars close at the regular halt. NULL for an unknown timeframe.';
