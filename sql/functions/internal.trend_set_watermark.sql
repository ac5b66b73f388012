-- Watermark: the last bar a series' detector analysed and its state after it.
CREATE OR REPLACE FUNCTION internal.trend_set_watermark(
    p_contract_id text, p_timeframe text, p_profile text, p_final signals.trend_event
) RETURNS void
LANGUAGE plpgsql
VOLATILE
AS $$
BEGIN
    IF p_final.at_ts IS NULL THEN
        -- Every bar disappeared: forget the watermark (signals stay, superseded by the run).
        DELETE FROM internal.trend_watermarks AS w
        WHERE
            w.contract_id = p_contract_id
            AND w.timeframe = p_timeframe
            AND w.profile = p_profile;
        RETURN;
    END IF;
    INSERT INTO internal.trend_watermarks AS w (
        contract_id, timeframe, profile, bar_no, bar_ts, state
    )
    VALUES (
        p_contract_id, p_timeframe, p_profile, p_final.at_bar, p_final.at_ts, p_final.state
    )
    ON CONFLICT (contract_id, timeframe, profile) DO UPDATE SET
        bar_no = excluded.bar_no,
        bar_ts = excluded.bar_ts,
        state = excluded.state,
        runs = w.runs + 1,
        updated_at = now();
END;
$$;

COMMENT ON FUNCTION internal.trend_set_watermark(text, text, text, signals.trend_event) IS
'Moves a series'' watermark (internal.trend_watermarks) to the STATE row p_final of its run, '
'counting the run; deletes it when p_final has no bar (the series has no closed bars).';
