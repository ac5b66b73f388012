-- One incremental detector step for a configured series (signals.trend_jobs): analyse the bars
-- closed since the watermark, continuing from the persisted detector state, and record the new
-- starts. In the caller's transaction, all or nothing: signals, watermark, checkpoint, the bars
-- seen, and one NOTIFY. Each stage is a function of its own in schema internal (trend_advance_lock,
-- trend_recheck, trend_rewind, trend_replay_window, trend_replay, trend_first_starts,
-- trend_supersede, trend_record_starts, trend_checkpoint, trend_retain, trend_record_inputs,
-- trend_set_watermark, trend_notify).
--
-- A bar that changed after it was analysed (compared over the last recheck_bars bars and over
-- every bar the state still refers to), or p_changed_from, rewinds the detector to the last
-- checkpoint before that bar and replays from there. Signals confirmed during the replayed span
-- that no longer come out identical are superseded, never deleted.
--
-- The state kept for that is bounded: each run deletes the checkpoints and analysed bars (inputs)
-- that its next recheck cannot reach, keeping the newest checkpoint before the oldest bar compared
-- and the inputs every kept checkpoint replays from. A bar older than that is never rechecked.
CREATE OR REPLACE FUNCTION signals.trend_advance(
    p_contract_id text,
    p_timeframe text,
    p_profile text,
    p_changed_from timestamptz DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql
VOLATILE
AS $$
DECLARE
    v_changed timestamptz;
    v_events signals.trend_event[];
    v_final signals.trend_event;
    v_from internal.trend_watermarks;
    v_job signals.trend_jobs;
    v_new integer;
    v_raised signals.trend_event[];
    v_replay_after timestamptz;
    v_superseded bigint[] := '{}';
    v_window internal.trend_window;
    v_n integer;
BEGIN
    v_job := internal.trend_advance_lock(p_contract_id, p_timeframe, p_profile);

    SELECT * INTO v_from
    FROM internal.trend_watermarks AS w
    WHERE
        w.contract_id = p_contract_id
        AND w.timeframe = p_timeframe
        AND w.profile = p_profile;
    IF FOUND THEN
        v_changed := internal.trend_recheck(v_from, v_job.recheck_bars, p_changed_from);
        IF v_changed IS NOT NULL THEN
            SELECT cp.bar_no, cp.bar_ts, cp.state INTO v_from.bar_no, v_from.bar_ts, v_from.state
            FROM internal.trend_rewind(p_contract_id, p_timeframe, p_profile, v_changed) AS cp;
            v_replay_after := coalesce(v_from.bar_ts, '-infinity');
        END IF;
    END IF;

    v_window := internal.trend_replay_window(
        p_contract_id, p_timeframe, p_profile, v_from.bar_no, v_from.bar_ts, v_from.state
    );
    IF v_window.first_bar_no IS NULL THEN
        RETURN signals.trend_advance(p_contract_id, p_timeframe, p_profile, '-infinity');
    END IF;
    v_n := coalesce(array_length(v_window.ts, 1), 0);
    IF v_window.new_from > v_n AND v_replay_after IS NULL THEN
        RETURN jsonb_build_object('bars', 0, 'new', 0, 'superseded', 0);
    END IF;

    v_events := internal.trend_replay(p_profile, v_window);
    v_final := v_events[array_length(v_events, 1)];
    v_raised := internal.trend_first_starts(v_events);
    IF v_replay_after IS NOT NULL THEN
        v_superseded := internal.trend_supersede(
            p_contract_id, p_timeframe, p_profile, v_replay_after, v_raised
        );
    END IF;
    v_new := internal.trend_record_starts(
        p_contract_id, p_timeframe, p_profile, v_raised, v_superseded
    );

    IF v_final.at_ts IS NOT NULL THEN
        PERFORM internal.trend_checkpoint(p_contract_id, p_timeframe, p_profile, v_final);
        PERFORM internal.trend_record_inputs(
            p_contract_id, p_timeframe, p_profile, v_window,
            internal.trend_retain(
                p_contract_id, p_timeframe, p_profile, v_final, v_job.recheck_bars
            )
        );
    END IF;
    PERFORM internal.trend_set_watermark(p_contract_id, p_timeframe, p_profile, v_final);

    RETURN internal.trend_notify(
        p_contract_id, p_timeframe, p_profile, v_final.at_ts,
        greatest(v_n - v_window.new_from + 1, 0), v_new, cardinality(v_superseded), v_changed
    );
END;
$$;

COMMENT ON FUNCTION signals.trend_advance(text, text, text, timestamptz) IS
'One incremental detector run for a series configured in signals.trend_jobs (what its '
'TimescaleDB job calls): analyses the closed bars since the watermark from the persisted '
'state, inserts the new starts into signals.detected_signals, advances the watermark and '
'sends one NOTIFY on channel trend_signals_v1 with a JSON summary (type, contract_id, '
'timeframe, profile, through, bars, new, superseded, recomputed_from), all in the caller''s '
'transaction. Bars that changed after analysis (or p_changed_from) make it recompute from '
'there, superseding signals that no longer hold; a change to a bar older than the recheck '
'window (recheck_bars and the bars the state refers to) is not noticed, and the detector state '
'older than what the next recheck can reach is deleted in the same run. Returns the summary; '
'does nothing and sends nothing when no bar closed since the last run.';
-- Writes signals and detector state: for the job owner, not for analysts.
REVOKE EXECUTE ON FUNCTION signals.trend_advance(text, text, text, timestamptz) FROM public;
