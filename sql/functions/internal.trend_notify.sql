-- Notify: the summary of a trend job run, sent on channel trend_signals_v1 (delivered when the
-- caller's transaction commits) and returned.
CREATE OR REPLACE FUNCTION internal.trend_notify(
    p_contract_id text,
    p_timeframe text,
    p_profile text,
    p_through timestamptz,
    p_bars integer,
    p_new integer,
    p_superseded integer,
    p_recomputed_from timestamptz
) RETURNS jsonb
LANGUAGE plpgsql
VOLATILE
AS $$
DECLARE
    v_payload jsonb := jsonb_build_object(
        'type', 'trend_signals',
        'contract_id', p_contract_id,
        'timeframe', p_timeframe,
        'profile', p_profile,
        'through', p_through,
        'bars', p_bars,
        'new', p_new,
        'superseded', p_superseded,
        'recomputed_from', p_recomputed_from
    );
BEGIN
    PERFORM pg_notify('trend_signals_v1', v_payload::text);
    RETURN v_payload;
END;
$$;

COMMENT ON FUNCTION internal.trend_notify(
    text, text, text, timestamptz, integer, integer, integer, timestamptz
) IS
'Sends the JSON summary of a trend job run on channel trend_signals_v1 (type trend_signals, '
'contract_id, timeframe, profile, through, bars, new, superseded, recomputed_from) and returns '
'it.';
