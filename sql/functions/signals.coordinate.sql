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
        ),

        picks AS (
            SELECT
                b.signal_id AS trigger_id,
                r.rule,
                tf.ord,
                p.signal_id,
                p.start_ts
            FROM batch AS b
            INNER JOIN rules AS r
                ON
                    b.profile = r.profile
                    AND b.timeframe = any(r.timeframes)
                    AND (cardinality(r.contracts) = 0 OR b.contract_id = any(r.contracts))
            CROSS JOIN LATERAL unnest(r.timeframes) WITH ORDINALITY AS tf (timeframe, ord)
            CROSS JOIN LATERAL (
                -- The trigger itself on its own timeframe; on each other timeframe the latest
                -- signal of the same direction known within the window and detected before
                -- the trigger, as it stood when the trigger was detected.
                SELECT
                    o.signal_id,
                    o."timestamp" AS start_ts
                FROM signals.detected_signals AS o
                WHERE
                    o.contract_id = b.contract_id
                    AND o.profile = b.profile
                    AND o.timeframe = tf.timeframe
                    AND o.signal_type = b.signal_type
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
                string_agg(
                    to_char(start_ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), ', ' ORDER BY ord
                ) AS start_text
            FROM picks
            GROUP BY trigger_id, rule
        )

        INSERT INTO signals.decisions (
            rule, contract_id, profile, direction, timeframes, starts, inputs,
            trigger_signal_id, price, reason, consumer
        )
        SELECT
            r.rule,
            b.contract_id,
            b.profile,
            CASE b.signal_type WHEN 'uptrend_start' THEN 'long' ELSE 'short' END,
            r.timeframes,
            c.starts,
            c.inputs,
            b.signal_id,
            b.signal_price,
            format(
                '%s: %s starts confirmed on %s within %s (signals %s, starting %s UTC)',
                r.rule,
                CASE b.signal_type WHEN 'uptrend_start' THEN 'up' ELSE 'down' END,
                array_to_string(r.timeframes, ' and '),
                r.max_gap,
                array_to_string(c.inputs, ', '),
                c.start_text
            ),
            p_consumer
        FROM combos AS c
        INNER JOIN batch AS b ON c.trigger_id = b.signal_id
        INNER JOIN rules AS r ON c.rule = r.rule
        WHERE c.found = cardinality(r.timeframes)
        ORDER BY b.signal_id, r.rule
        ON CONFLICT ON CONSTRAINT decisions_key DO NOTHING;
        GET DIAGNOSTICS v_decided = ROW_COUNT;

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
'transaction. Withdrawn (superseded) signals read past the watermark trigger nothing. Sends '
'NOTIFY trading_decisions_v1 when it decided something. Returns {from, through, signals, '
'decisions}.';
REVOKE EXECUTE ON FUNCTION signals.coordinate(text, jsonb, integer) FROM public;
