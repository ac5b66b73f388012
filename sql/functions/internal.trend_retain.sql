-- Retention: keep only what a later run can reach. Its recheck compares the bars from
-- internal.trend_recheck_from on; a change there rewinds to the newest checkpoint before the
-- changed bar, so the newest checkpoint before that bar and all later ones stay, and the inputs
-- from the earliest bar any of them replays from. Older changes are not noticed; p_changed_from
-- older than every checkpoint kept recomputes the whole series.
CREATE OR REPLACE FUNCTION internal.trend_retain(
    p_contract_id text,
    p_timeframe text,
    p_profile text,
    p_final signals.trend_event,
    p_recheck_bars integer
) RETURNS bigint
LANGUAGE plpgsql
VOLATILE
AS $$
DECLARE
    v_check_no bigint := internal.trend_recheck_from(
        p_final.at_bar, p_final.state, p_recheck_bars
    );
    v_keep_no bigint;
    v_keep_ts timestamptz;
BEGIN
    SELECT cp.bar_ts INTO v_keep_ts
    FROM internal.trend_checkpoints AS cp
    WHERE
        cp.contract_id = p_contract_id
        AND cp.timeframe = p_timeframe
        AND cp.profile = p_profile
        AND cp.bar_no < v_check_no
    ORDER BY cp.bar_ts DESC
    LIMIT 1;
    SELECT least(v_check_no, min(cp.replay_from)) INTO v_keep_no
    FROM internal.trend_checkpoints AS cp
    WHERE
        cp.contract_id = p_contract_id
        AND cp.timeframe = p_timeframe
        AND cp.profile = p_profile
        AND cp.bar_ts >= coalesce(v_keep_ts, '-infinity');
    DELETE FROM internal.trend_checkpoints AS cp
    WHERE
        cp.contract_id = p_contract_id
        AND cp.timeframe = p_timeframe
        AND cp.profile = p_profile
        AND cp.bar_ts < v_keep_ts;
    DELETE FROM internal.trend_inputs AS ti
    WHERE
        ti.contract_id = p_contract_id
        AND ti.timeframe = p_timeframe
        AND ti.profile = p_profile
        AND ti.bar_no < v_keep_no;
    RETURN v_keep_no;
END;
$$;

COMMENT ON FUNCTION internal.trend_retain(
    text, text, text, signals.trend_event, integer
) IS
'Prunes a series'' detector state after a run ending in STATE row p_final: deletes the '
'checkpoints older than the newest one before the first bar the next recheck compares '
'(internal.trend_recheck_from) and the analysed bars before the earliest bar a kept '
'checkpoint replays from (or the recheck reaches); returns that bar number.';
