-- Rewind: back to the last checkpoint before a changed bar, forgetting the checkpoints and the
-- analysed bars after it.
CREATE OR REPLACE FUNCTION internal.trend_rewind(
    p_contract_id text, p_timeframe text, p_profile text, p_changed timestamptz
) RETURNS internal.trend_checkpoints
LANGUAGE plpgsql
VOLATILE
AS $$
DECLARE
    v_checkpoint internal.trend_checkpoints;
BEGIN
    SELECT * INTO v_checkpoint
    FROM internal.trend_checkpoints AS cp
    WHERE
        cp.contract_id = p_contract_id
        AND cp.timeframe = p_timeframe
        AND cp.profile = p_profile
        AND cp.bar_ts < p_changed
    ORDER BY cp.bar_ts DESC
    LIMIT 1;
    DELETE FROM internal.trend_checkpoints AS cp
    WHERE
        cp.contract_id = p_contract_id
        AND cp.timeframe = p_timeframe
        AND cp.profile = p_profile
        AND cp.bar_ts >= p_changed;
    DELETE FROM internal.trend_inputs AS ti
    WHERE
        ti.contract_id = p_contract_id
        AND ti.timeframe = p_timeframe
        AND ti.profile = p_profile
        AND ti.bucket > coalesce(v_checkpoint.bar_ts, '-infinity');
    RETURN v_checkpoint;
END;
$$;

COMMENT ON FUNCTION internal.trend_rewind(text, text, text, timestamptz) IS
'Rewinds a series'' detector to the newest checkpoint before p_changed and returns it (all '
'fields NULL when there is none: recompute from the first bar); deletes the checkpoints from '
'p_changed on and the analysed bars after the checkpoint returned.';
