-- One incremental detector step for a configured series (signals.trend_jobs): analyse the bars
-- closed since the watermark, continuing from the persisted detector state, and record the new
-- starts. In the caller's transaction, all or nothing: signals, watermark, checkpoint, the bars
-- seen, and one NOTIFY.
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
    v_bar_no bigint;
    v_bar_ts timestamptz;
    v_c numeric[];
    v_changed timestamptz;
    v_check_from timestamptz;
    v_check_no bigint;
    v_events signals.trend_event[];
    v_final signals.trend_event;
    v_from_no bigint := 1;
    v_from_ts timestamptz := '-infinity';
    v_h numeric[];
    v_head internal.trend_watermarks;
    v_job signals.trend_jobs;
    v_keep_no bigint;
    v_keep_ts timestamptz;
    v_l numeric[];
    v_n integer;
    v_new integer := 0;
    v_new_from integer;
    v_o numeric[];
    v_payload jsonb;
    v_raised signals.trend_event[];
    v_ref_min bigint;
    v_replay_after timestamptz;
    v_start integer := 2;
    v_state jsonb;
    v_superseded bigint[] := '{}';
    v_ts timestamptz[];
BEGIN
    SELECT * INTO v_job
    FROM signals.trend_jobs AS j
    WHERE
        j.contract_id = p_contract_id
        AND j.timeframe = p_timeframe
        AND j.profile = p_profile;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no trend job is configured for % % %', p_contract_id, p_timeframe, p_profile
        USING
            ERRCODE = 'invalid_parameter_value',
            HINT = 'Add a row to signals.trend_jobs (contract_id, timeframe, profile).';
    END IF;
    -- One run per series at a time; a second waits, then sees the first one's result.
    PERFORM pg_advisory_xact_lock(
        hashtextextended('signals.trend_advance/' || p_contract_id || '/' || p_timeframe
            || '/' || p_profile, 0)
    );

    SELECT * INTO v_head
    FROM internal.trend_watermarks AS w
    WHERE
        w.contract_id = p_contract_id
        AND w.timeframe = p_timeframe
        AND w.profile = p_profile;
    IF FOUND THEN
        v_state := v_head.state;
        v_bar_no := v_head.bar_no;
        v_bar_ts := v_head.bar_ts;
        -- Compare the analysed bars with market.bars over the recheck window and every bar the
        -- state refers to (the earliest, less one for the neighbour test of offerPDS).
        v_check_no := greatest(
            1,
            least(
                v_bar_no - v_job.recheck_bars + 1,
                (
                    SELECT min(s.value::text::bigint)
                    FROM jsonb_each(v_state) AS s
                    WHERE jsonb_typeof(s.value) = 'number'
                ) - 1
            )
        );
        -- From the first bar still kept there (retention below keeps the whole window, but a
        -- recheck_bars raised since the last run reaches bars already pruned).
        SELECT ti.bar_no, ti.bucket INTO v_check_no, v_check_from
        FROM internal.trend_inputs AS ti
        WHERE
            ti.contract_id = p_contract_id
            AND ti.timeframe = p_timeframe
            AND ti.profile = p_profile
            AND ti.bar_no >= v_check_no
        ORDER BY ti.bar_no
        LIMIT 1;
        SELECT min(coalesce(now_bars.bucket, seen.bucket)) INTO v_changed
        FROM (
            SELECT mb.bucket, mb.open, mb.high, mb.low, mb.close
            FROM market.series_bars AS mb
            WHERE
                mb.series = p_contract_id
                AND mb.timeframe = p_timeframe
                AND mb.is_closed
                AND mb.bucket >= v_check_from
                AND mb.bucket <= v_bar_ts
        ) AS now_bars
        FULL JOIN (
            SELECT ti.bucket, ti.open, ti.high, ti.low, ti.close
            FROM internal.trend_inputs AS ti
            WHERE
                ti.contract_id = p_contract_id
                AND ti.timeframe = p_timeframe
                AND ti.profile = p_profile
                AND ti.bar_no >= v_check_no
        ) AS seen ON now_bars.bucket = seen.bucket
        WHERE
            (now_bars.open, now_bars.high, now_bars.low, now_bars.close)
            IS DISTINCT FROM (seen.open, seen.high, seen.low, seen.close);
        v_changed := least(v_changed, p_changed_from);

        IF v_changed <= v_bar_ts THEN
            -- Rewind to the state after the last checkpoint before the changed bar.
            SELECT cp.bar_ts, cp.bar_no, cp.state INTO v_bar_ts, v_bar_no, v_state
            FROM internal.trend_checkpoints AS cp
            WHERE
                cp.contract_id = p_contract_id
                AND cp.timeframe = p_timeframe
                AND cp.profile = p_profile
                AND cp.bar_ts < v_changed
            ORDER BY cp.bar_ts DESC
            LIMIT 1;
            IF NOT FOUND THEN
                v_bar_ts := NULL;
                v_bar_no := NULL;
                v_state := NULL;
            END IF;
            DELETE FROM internal.trend_checkpoints AS cp
            WHERE
                cp.contract_id = p_contract_id
                AND cp.timeframe = p_timeframe
                AND cp.profile = p_profile
                AND cp.bar_ts >= v_changed;
            DELETE FROM internal.trend_inputs AS ti
            WHERE
                ti.contract_id = p_contract_id
                AND ti.timeframe = p_timeframe
                AND ti.profile = p_profile
                AND ti.bucket > coalesce(v_bar_ts, '-infinity');
            v_replay_after := coalesce(v_bar_ts, '-infinity');
        ELSE
            v_changed := NULL;
        END IF;
    END IF;

    IF v_state IS NOT NULL THEN
        v_from_no := greatest(
            1,
            least(
                v_bar_no,
                (
                    SELECT min(s.value::text::bigint)
                    FROM jsonb_each(v_state) AS s
                    WHERE jsonb_typeof(s.value) = 'number'
                )
            ) - 1
        );
        SELECT ti.bucket INTO v_from_ts
        FROM internal.trend_inputs AS ti
        WHERE
            ti.contract_id = p_contract_id
            AND ti.timeframe = p_timeframe
            AND ti.profile = p_profile
            AND ti.bar_no = v_from_no;
        v_start := (v_bar_no - v_from_no + 2)::integer;
    END IF;

    SELECT
        array_agg(b.bucket),
        array_agg(b.open),
        array_agg(b.high),
        array_agg(b.low),
        array_agg(b.close)
    INTO v_ts, v_o, v_h, v_l, v_c
    FROM (
        SELECT mb.bucket, mb.open, mb.high, mb.low, mb.close
        FROM market.series_bars AS mb
        WHERE
            mb.series = p_contract_id
            AND mb.timeframe = p_timeframe
            AND mb.is_closed
            AND mb.bucket >= v_from_ts
        ORDER BY mb.bucket
    ) AS b;
    v_n := coalesce(array_length(v_ts, 1), 0);

    IF v_state IS NOT NULL AND v_ts[v_start - 1] IS DISTINCT FROM v_bar_ts THEN
        -- A bar the state refers to, older than anything compared, was inserted or removed:
        -- recompute the whole series.
        RETURN signals.trend_advance(p_contract_id, p_timeframe, p_profile, '-infinity');
    END IF;
    v_new_from := CASE WHEN v_state IS NULL THEN 1 ELSE v_start END;
    IF v_new_from > v_n AND v_replay_after IS NULL THEN
        RETURN jsonb_build_object('bars', 0, 'new', 0, 'superseded', 0);
    END IF;

    SELECT array_agg(x.e ORDER BY x.ord) INTO v_events
    FROM (
        SELECT
            d.ord,
            (d.at_bar, d.at_ts, d.event, d.bar, d.bar_ts, d.price, d.rule, d.state
            )::signals.trend_event AS e
        FROM signals.trend_detect(
            p_profile, v_ts, v_o, v_h, v_l, v_c, v_from_no, v_start, v_state, false
        ) WITH ORDINALITY AS d (at_bar, at_ts, event, bar, bar_ts, price, rule, state, ord)
    ) AS x (ord, e);
    v_final := v_events[array_length(v_events, 1)];

    -- The starts raised, first per bar and direction (docs/trend-starts.md section 7), in the order raised.
    SELECT coalesce(array_agg(f.e ORDER BY f.ord), '{}') INTO v_raised
    FROM (
        SELECT DISTINCT ON (u.bar_ts, u.event IN ('CUS', 'CUS_FORCED'))
            u.ord,
            (u.at_bar, u.at_ts, u.event, u.bar, u.bar_ts, u.price, u.rule, NULL
            )::signals.trend_event AS e
        FROM unnest(v_events) WITH ORDINALITY AS u (
            at_bar, at_ts, event, bar, bar_ts, price, rule, state, ord
        )
        WHERE u.event <> 'STATE'
        ORDER BY u.bar_ts, u.event IN ('CUS', 'CUS_FORCED'), u.ord
    ) AS f (ord, e);

    IF v_replay_after IS NOT NULL THEN
        WITH withdrawn AS (
            UPDATE signals.detected_signals AS s
            SET superseded_at = now()
            WHERE
                s.contract_id = p_contract_id
                AND s.timeframe = p_timeframe
                AND s.profile = p_profile
                AND s.superseded_at IS NULL
                AND s.confirmed_at > v_replay_after
                AND NOT EXISTS (
                    SELECT 1
                    FROM unnest(v_raised) AS t
                    WHERE
                        t.bar_ts = s."timestamp"
                        AND t.event IN ('CUS', 'CUS_FORCED') = (s.signal_type = 'uptrend_start')
                        AND t.price = s.signal_price
                        AND t.at_ts = s.confirmed_at
                        AND t.rule = s.details ->> 'rule'
                )
            RETURNING s.signal_id
        )

        SELECT coalesce(array_agg(withdrawn.signal_id), '{}') INTO v_superseded FROM withdrawn;
    END IF;

    INSERT INTO signals.detected_signals (
        contract_id, timeframe, profile, signal_type, "timestamp", signal_price, confirmed_at,
        details
    )
    SELECT
        p_contract_id,
        p_timeframe,
        p_profile,
        CASE WHEN t.up THEN 'uptrend_start' ELSE 'downtrend_start' END,
        t.bar_ts,
        t.price,
        t.at_ts,
        jsonb_build_object(
            'rule', t.rule,
            'rule_name', r.rule_name,
            'direction', CASE WHEN t.up THEN 'up' ELSE 'down' END,
            'bar', t.bar,
            'confirmed_bar', t.at_bar
        )
    FROM (
        SELECT
            u.*,
            u.event IN ('CUS', 'CUS_FORCED') AS up
        FROM unnest(v_raised) WITH ORDINALITY AS u (
            at_bar, at_ts, event, bar, bar_ts, price, rule, state, ord
        )
    ) AS t
    LEFT JOIN signals.trend_rules AS r ON t.rule = r.rule
    ORDER BY t.ord
    ON CONFLICT (contract_id, timeframe, profile, "timestamp", signal_type)
    WHERE superseded_at IS NULL
    DO NOTHING;
    GET DIAGNOSTICS v_new = ROW_COUNT;

    IF cardinality(v_superseded) > 0 THEN
        UPDATE signals.detected_signals AS s
        SET superseded_by = c.signal_id
        FROM signals.detected_signals AS c
        WHERE
            s.signal_id = any(v_superseded)
            AND c.contract_id = s.contract_id
            AND c.timeframe = s.timeframe
            AND c.profile = s.profile
            AND c."timestamp" = s."timestamp"
            AND c.signal_type = s.signal_type
            AND c.superseded_at IS NULL;
    END IF;

    IF v_final.at_ts IS NOT NULL THEN
        -- The oldest bar the final state refers to: a later run compares from the bar before it
        -- (or recheck_bars back, if that is earlier) and replays from the bar before it.
        v_ref_min := (
            SELECT min(s.value::text::bigint)
            FROM jsonb_each(v_final.state) AS s
            WHERE jsonb_typeof(s.value) = 'number'
        );
        INSERT INTO internal.trend_checkpoints (
            contract_id, timeframe, profile, bar_ts, bar_no, state, replay_from
        )
        VALUES (
            p_contract_id, p_timeframe, p_profile, v_final.at_ts, v_final.at_bar, v_final.state,
            greatest(1, least(v_final.at_bar, v_ref_min) - 1)
        )
        ON CONFLICT (contract_id, timeframe, profile, bar_ts)
        DO UPDATE SET
            bar_no = excluded.bar_no,
            state = excluded.state,
            replay_from = excluded.replay_from,
            created_at = now();

        -- Retention: keep only what a later run can reach. Its recheck compares the bars from
        -- v_check_no on (as at the top of this function); a change there rewinds to the newest
        -- checkpoint before the changed bar, so the newest checkpoint before v_check_no and all
        -- later ones stay, and the inputs from the earliest bar any of them replays from.
        -- Older changes are not noticed; p_changed_from older than every checkpoint kept
        -- recomputes the whole series.
        v_check_no := greatest(
            1, least(v_final.at_bar - v_job.recheck_bars + 1, v_ref_min - 1)
        );
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

        INSERT INTO internal.trend_inputs (
            contract_id, timeframe, profile, bucket, bar_no, open, high, low, close
        )
        SELECT
            p_contract_id,
            p_timeframe,
            p_profile,
            t.bucket,
            v_from_no + v_new_from - 2 + t.ord,
            t.open,
            t.high,
            t.low,
            t.close
        FROM unnest(
            v_ts[v_new_from:], v_o[v_new_from:], v_h[v_new_from:], v_l[v_new_from:],
            v_c[v_new_from:]
        ) WITH ORDINALITY AS t (bucket, open, high, low, close, ord)
        WHERE v_from_no + v_new_from - 2 + t.ord >= v_keep_no;
        INSERT INTO internal.trend_watermarks AS w (
            contract_id, timeframe, profile, bar_no, bar_ts, state
        )
        VALUES (
            p_contract_id, p_timeframe, p_profile, v_final.at_bar, v_final.at_ts, v_final.state
        )
        ON CONFLICT (contract_id, timeframe, profile) DO UPDATE SET
            bar_no = excluded.bar_no,
            bar_ts = excluded.bar_ts,
            state = excluded.state,
            runs = w.runs + 1,
            updated_at = now();
    ELSE
        -- Every bar disappeared: forget the watermark (signals stay, superseded above).
        DELETE FROM internal.trend_watermarks AS w
        WHERE
            w.contract_id = p_contract_id
            AND w.timeframe = p_timeframe
            AND w.profile = p_profile;
    END IF;

    v_payload := jsonb_build_object(
        'type', 'trend_signals',
        'contract_id', p_contract_id,
        'timeframe', p_timeframe,
        'profile', p_profile,
        'through', v_final.at_ts,
        'bars', greatest(v_n - v_new_from + 1, 0),
        'new', v_new,
        'superseded', cardinality(v_superseded),
        'recomputed_from', v_changed
    );
    PERFORM pg_notify('trend_signals_v1', v_payload::text);
    RETURN v_payload;
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
