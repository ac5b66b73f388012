-- One coordinator batch: the signals past the consumer's watermark, combined into decisions by
-- the rules, the decisions written and the watermark advanced, all in the caller's transaction.
--
-- Exactly once: the watermark row is locked FOR UPDATE, so two coordinators of one name take
-- turns; LOCK ... IN SHARE MODE waits for every transaction still writing detected_signals
-- (identities are drawn before commit, so a lower id can become visible after a higher one) and
-- holds new writers back until this transaction ends, so no signal appears behind the watermark.
CREATE OR REPLACE FUNCTION signals.coordinate(
    p_consumer text,
    p_rules jsonb,
    p_limit integer DEFAULT 500
) RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_from bigint;
    v_through bigint;
    v_read integer;
    v_decided integer := 0;
    v_result jsonb;
    v_unknown text;
    v_c record;
    v_last record;
    v_upgrade boolean;
    v_position text;
    v_starts timestamptz[];
    v_inputs bigint[];
    v_reason text;
    v_target text;
    v_action text;
    v_inserted integer;
BEGIN
    IF p_limit IS NULL OR p_limit < 1 THEN
        RAISE EXCEPTION 'p_limit must be a positive number of signals, not %', p_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- Rules are checked on every call, so a misconfigured coordinator fails at its first batch.
    SELECT string_agg(DISTINCT problem, '; ') INTO v_unknown
    FROM (
        SELECT format('rule %s: kind %s is not confluence', r.value ->> 'name', r.value ->> 'kind') AS problem
        FROM jsonb_array_elements(p_rules) AS r (value)
        WHERE r.value ->> 'kind' IS DISTINCT FROM 'confluence'
        UNION ALL
        SELECT format('rule %s: unknown profile %s', r.value ->> 'name', r.value ->> 'profile')
        FROM jsonb_array_elements(p_rules) AS r (value)
        WHERE NOT EXISTS (
            SELECT 1 FROM signals.trend_profiles AS tp WHERE tp.profile = r.value ->> 'profile'
        )
        UNION ALL
        SELECT format('rule %s: unknown timeframe %s', r.value ->> 'name', t.timeframe)
        FROM jsonb_array_elements(p_rules) AS r (value)
        CROSS JOIN LATERAL jsonb_array_elements_text(r.value -> 'timeframes') AS t (timeframe)
        WHERE NOT EXISTS (
            SELECT 1 FROM market.timeframes AS mt WHERE mt.timeframe = t.timeframe
        )
        UNION ALL
        SELECT format('rule %s: window %s is not a positive interval', r.value ->> 'name', r.value ->> 'window')
        FROM jsonb_array_elements(p_rules) AS r (value)
        WHERE coalesce((r.value ->> 'window')::interval <= INTERVAL '0', TRUE)
    ) AS problems;
    IF v_unknown IS NOT NULL THEN
        RAISE EXCEPTION 'invalid coordinator rules: %', v_unknown
        USING ERRCODE = 'invalid_parameter_value';
    END IF;

    INSERT INTO internal.coordinator_watermarks (consumer) VALUES (p_consumer)
    ON CONFLICT (consumer) DO NOTHING;
    SELECT w.last_signal_id INTO v_from
    FROM internal.coordinator_watermarks AS w
    WHERE w.consumer = p_consumer
    FOR UPDATE;

    LOCK TABLE signals.detected_signals IN SHARE MODE;

    SELECT count(*), max(b.signal_id) INTO v_read, v_through
    FROM (
        SELECT s.signal_id
        FROM signals.detected_signals AS s
        WHERE s.signal_id > v_from
        ORDER BY s.signal_id
        LIMIT p_limit
    ) AS b;

    IF v_read > 0 THEN
        -- Each (trigger signal, rule) in detection order, so how batches are cut changes nothing:
        -- whether the rule's timeframes agree (confluence), then one position transition at most.
        FOR v_c IN
            WITH rules AS (
                SELECT
                    r.value ->> 'name' AS rule,
                    r.value ->> 'profile' AS profile,
                    (r.value ->> 'window')::interval AS max_gap,
                    array(SELECT jsonb_array_elements_text(r.value -> 'timeframes')) AS timeframes,
                    array(
                        SELECT jsonb_array_elements_text(coalesce(r.value -> 'contracts', '[]'))
                    ) AS contracts
                FROM jsonb_array_elements(p_rules) AS r (value)
                WHERE r.value ->> 'kind' = 'confluence'
            ),

            batch AS (
                SELECT
                    s.*,
                    market.session_bar_end(s.timeframe, s.confirmed_at) AS known_at
                FROM signals.detected_signals AS s
                WHERE
                    s.signal_id > v_from
                    AND s.signal_id <= v_through
                    AND s.superseded_at IS NULL
                    AND s.details ->> 'rule' IS DISTINCT FROM 'FORCED'
            ),

            picks AS (
                SELECT
                    b.signal_id AS trigger_id,
                    r.rule,
                    tf.ord,
                    p.*
                FROM batch AS b
                INNER JOIN rules AS r
                    ON
                        b.profile = r.profile
                        AND b.timeframe = any(r.timeframes)
                        AND (cardinality(r.contracts) = 0 OR b.contract_id = any(r.contracts))
                CROSS JOIN LATERAL unnest(r.timeframes) WITH ORDINALITY AS tf (timeframe, ord)
                CROSS JOIN LATERAL (
                    -- The trigger itself on its own timeframe; on each other timeframe the
                    -- latest unforced signal of the same direction known within the window and
                    -- detected before the trigger, as it stood when the trigger was detected.
                    SELECT
                        o.signal_id,
                        o."timestamp" AS start_ts,
                        o.timeframe,
                        o.confirmed_at,
                        o.signal_price,
                        market.session_bar_end(o.timeframe, o.confirmed_at) AS known_at
                    FROM signals.detected_signals AS o
                    WHERE
                        o.contract_id = b.contract_id
                        AND o.profile = b.profile
                        AND o.timeframe = tf.timeframe
                        AND o.signal_type = b.signal_type
                        AND o.details ->> 'rule' IS DISTINCT FROM 'FORCED'
                        AND (
                            (tf.timeframe = b.timeframe AND o.signal_id = b.signal_id)
                            OR (
                                tf.timeframe <> b.timeframe
                                AND o.signal_id < b.signal_id
                                AND (o.superseded_at IS NULL OR o.superseded_at > b.detected_at)
                                AND market.session_bar_end(o.timeframe, o.confirmed_at)
                                BETWEEN b.known_at - r.max_gap AND b.known_at + r.max_gap
                            )
                        )
                    ORDER BY o.confirmed_at DESC, o.signal_id DESC
                    LIMIT 1
                ) AS p
            ),

            combos AS (
                SELECT
                    trigger_id,
                    rule,
                    count(*) AS found,
                    array_agg(signal_id ORDER BY ord) AS inputs,
                    array_agg(start_ts ORDER BY ord) AS starts,
                    -- the agreement exists once its last input is known
                    max(known_at) AS known_at,
                    (array_agg(timeframe ORDER BY known_at DESC, signal_id DESC))[1] AS last_timeframe,
                    (array_agg(confirmed_at ORDER BY known_at DESC, signal_id DESC))[1] AS last_confirmed_at,
                    (array_agg(signal_price ORDER BY known_at DESC, signal_id DESC))[1] AS last_price,
                    string_agg(
                        to_char(start_ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), ', '
                        ORDER BY ord
                    ) AS start_text
                FROM picks
                GROUP BY trigger_id, rule
            )

            SELECT
                r.rule,
                r.timeframes,
                r.max_gap,
                b.contract_id,
                b.profile,
                b.signal_id,
                b.timeframe,
                b."timestamp" AS start_ts,
                CASE b.signal_type WHEN 'uptrend_start' THEN 'long' ELSE 'short' END AS side,
                a.confluent,
                c.inputs,
                c.starts,
                c.start_text,
                CASE WHEN a.confluent THEN c.known_at ELSE b.known_at END AS known_at,
                -- the close of the confirming bar of the input known last: as its job analysed
                -- it (a key lookup), else from market.bars, else the start's own price
                coalesce(
                    (
                        SELECT ti.close
                        FROM internal.trend_inputs AS ti
                        WHERE
                            ti.contract_id = b.contract_id
                            AND ti.profile = b.profile
                            AND ti.timeframe
                            = CASE WHEN a.confluent THEN c.last_timeframe ELSE b.timeframe END
                            AND ti.bucket
                            = CASE WHEN a.confluent THEN c.last_confirmed_at ELSE b.confirmed_at END
                    ),
                    (
                        SELECT mb.close
                        FROM market.bars AS mb
                        WHERE
                            mb.contract_id = b.contract_id
                            AND mb.timeframe
                            = CASE WHEN a.confluent THEN c.last_timeframe ELSE b.timeframe END
                            AND mb.bucket
                            = CASE WHEN a.confluent THEN c.last_confirmed_at ELSE b.confirmed_at END
                    ),
                    CASE WHEN a.confluent THEN c.last_price ELSE b.signal_price END
                ) AS price
            FROM combos AS c
            INNER JOIN batch AS b ON c.trigger_id = b.signal_id
            INNER JOIN rules AS r ON c.rule = r.rule
            CROSS JOIN LATERAL (SELECT c.found = cardinality(r.timeframes) AS confluent) AS a
            ORDER BY b.signal_id, r.rule
        LOOP
            SELECT d.decision_id, d.direction, d.known_at, d.action INTO v_last
            FROM signals.decisions AS d
            WHERE
                d.consumer = p_consumer
                AND d.rule = v_c.rule
                AND d.contract_id = v_c.contract_id
                AND d.action IS NOT NULL
            ORDER BY d.known_at DESC, d.decision_id DESC
            LIMIT 1;
            v_position := coalesce(v_last.direction, 'flat');
            v_upgrade := FALSE;
            IF v_last.action = 'exit' AND v_c.known_at = v_last.known_at AND v_c.confluent THEN
                -- The jobs of a rule's timeframes report one bar close one after the other: an
                -- exit by the first becomes the reverse that the agreement of all makes at that
                -- instant (still one decision per instant).
                SELECT d.direction INTO v_position
                FROM signals.decisions AS d
                WHERE
                    d.consumer = p_consumer
                    AND d.rule = v_c.rule
                    AND d.contract_id = v_c.contract_id
                    AND d.action IS NOT NULL
                    AND d.known_at < v_last.known_at
                ORDER BY d.known_at DESC, d.decision_id DESC
                LIMIT 1;
                v_upgrade := v_position <> v_c.side;
                CONTINUE WHEN NOT v_upgrade;
            END IF;
            -- Agreement takes the side of the trigger; a start against the position without
            -- agreement closes it; a position is never changed twice at one instant, nor by a
            -- signal known before its last change.
            v_target := CASE
                WHEN v_c.confluent THEN v_c.side
                WHEN v_position NOT IN ('flat', v_c.side) THEN 'flat'
            END;
            CONTINUE WHEN
                v_target IS NULL
                OR v_target = v_position
                OR (v_c.known_at <= v_last.known_at AND NOT v_upgrade);
            v_action := CASE
                WHEN v_target = 'flat' THEN 'exit'
                WHEN v_position = 'flat' THEN 'enter'
                ELSE 'reverse'
            END;
            IF v_c.confluent THEN
                v_starts := v_c.starts;
                v_inputs := v_c.inputs;
                v_reason := format(
                    '%s: %s starts confirmed on %s within %s (signals %s, starting %s UTC): %s %s',
                    v_c.rule,
                    CASE v_c.side WHEN 'long' THEN 'up' ELSE 'down' END,
                    array_to_string(v_c.timeframes, ' and '),
                    v_c.max_gap,
                    array_to_string(v_c.inputs, ', '),
                    v_c.start_text,
                    CASE v_action WHEN 'enter' THEN 'enter' ELSE 'reverse to' END,
                    v_target
                );
            ELSE
                -- an exit names only its trigger, on its own timeframe
                SELECT
                    array_agg(
                        CASE WHEN t.timeframe = v_c.timeframe THEN v_c.start_ts END
                        ORDER BY t.ord
                    ),
                    array_agg(
                        CASE WHEN t.timeframe = v_c.timeframe THEN v_c.signal_id END
                        ORDER BY t.ord
                    )
                INTO v_starts, v_inputs
                FROM unnest(v_c.timeframes) WITH ORDINALITY AS t (timeframe, ord);
                v_reason := format(
                    '%s: %s start confirmed on %s (signal %s, starting %s UTC) while %s: exit to flat',
                    v_c.rule,
                    CASE v_c.side WHEN 'long' THEN 'up' ELSE 'down' END,
                    v_c.timeframe,
                    v_c.signal_id,
                    to_char(v_c.start_ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'),
                    v_position
                );
            END IF;
            IF v_upgrade THEN
                UPDATE signals.decisions AS d
                SET
                    direction = v_target,
                    action = v_action,
                    starts = v_starts,
                    inputs = v_inputs,
                    trigger_signal_id = v_c.signal_id,
                    price = v_c.price,
                    reason = v_reason || ' (replaces the exit decided at that instant)',
                    decided_at = clock_timestamp()
                WHERE d.decision_id = v_last.decision_id;
            ELSE
                INSERT INTO signals.decisions (
                    rule, contract_id, profile, direction, action, timeframes, starts, inputs,
                    trigger_signal_id, price, known_at, reason, consumer
                ) VALUES (
                    v_c.rule, v_c.contract_id, v_c.profile, v_target, v_action, v_c.timeframes,
                    v_starts, v_inputs, v_c.signal_id, v_c.price, v_c.known_at, v_reason,
                    p_consumer
                )
                ON CONFLICT DO NOTHING;
            END IF;
            GET DIAGNOSTICS v_inserted = ROW_COUNT;
            v_decided := v_decided + v_inserted;
        END LOOP;

        UPDATE internal.coordinator_watermarks AS w
        SET
            last_signal_id = v_through,
            batches = w.batches + 1,
            signals_read = w.signals_read + v_read,
            decisions_made = w.decisions_made + v_decided,
            updated_at = now()
        WHERE w.consumer = p_consumer;
    END IF;

    v_result := jsonb_build_object(
        'type', 'decisions',
        'consumer', p_consumer,
        'from', v_from,
        'through', coalesce(v_through, v_from),
        'signals', v_read,
        'decisions', v_decided
    );
    IF v_decided > 0 THEN
        PERFORM pg_notify('trading_decisions_v1', v_result::text);
    END IF;
    RETURN v_result;
END;
$$;

COMMENT ON FUNCTION signals.coordinate(text, jsonb, integer) IS
'One coordinator batch: reads up to p_limit signals of signals.detected_signals past the '
'watermark of coordinator p_consumer, applies p_rules (a JSON array of {"name", "kind": '
'"confluence", "profile", "timeframes": [...], "window": interval, "contracts": [...] '
'optional}), writes signals.decisions and advances the watermark, in the caller''s '
'transaction. Per rule and contract it holds a position (flat, long, short): when all the '
'rule''s timeframes have a start of one direction within the window it enters or reverses '
'that way; a start against the position without that agreement exits to flat. Signals are '
'taken in detection order (signal_id), and one known before the position''s last change is '
'stale; forced starts and withdrawn (superseded) signals '
'decide nothing, and a position changes at most once per instant (an exit made by one '
'timeframe is turned into the reverse that all timeframes agree on at that same instant). Sends '
'NOTIFY trading_decisions_v1 when it decided something. Returns {from, through, signals, '
'decisions}.';
REVOKE EXECUTE ON FUNCTION signals.coordinate(text, jsonb, integer) FROM public;
