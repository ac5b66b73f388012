-- Checkpoint: the detector state after a run's last bar, where a later rewind can restart.
CREATE OR REPLACE FUNCTION internal.trend_checkpoint(
    p_contract_id text, p_timeframe text, p_profile text, p_final signals.trend_event
) RETURNS void
LANGUAGE plpgsql
VOLATILE
AS $$
BEGIN
    INSERT INTO internal.trend_checkpoints (
        contract_id, timeframe, profile, bar_ts, bar_no, state, replay_from
    )
    VALUES (
        p_contract_id, p_timeframe, p_profile, p_final.at_ts, p_final.at_bar, p_final.state,
        internal.trend_replay_from(p_final.at_bar, p_final.state)
    )
    ON CONFLICT (contract_id, timeframe, profile, bar_ts)
    DO UPDATE SET
        bar_no = excluded.bar_no,
        state = excluded.state,
        replay_from = excluded.replay_from,
        created_at = now();
END;
$$;

COMMENT ON FUNCTION internal.trend_checkpoint(text, text, text, signals.trend_event) IS
'Stores the STATE row p_final (the detector state after a run''s last bar) as a checkpoint of '
'the series in internal.trend_checkpoints, with the bar a replay from it reads from.';
