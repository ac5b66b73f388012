-- The starts of a run into signals.detected_signals (a start already current is left alone), and
-- each signal p_superseded withdrew linked to its replacement.
CREATE OR REPLACE FUNCTION internal.trend_record_starts(
    p_contract_id text,
    p_timeframe text,
    p_profile text,
    p_raised signals.trend_event[],
    p_superseded bigint[]
) RETURNS integer
LANGUAGE plpgsql
VOLATILE
AS $$
DECLARE
    v_new integer;
BEGIN
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
        FROM unnest(p_raised) WITH ORDINALITY AS u (
            at_bar, at_ts, event, bar, bar_ts, price, rule, state, ord
        )
    ) AS t
    LEFT JOIN signals.trend_rules AS r ON t.rule = r.rule
    ORDER BY t.ord
    ON CONFLICT (contract_id, timeframe, profile, "timestamp", signal_type)
    WHERE superseded_at IS NULL
    DO NOTHING;
    GET DIAGNOSTICS v_new = ROW_COUNT;

    IF cardinality(p_superseded) > 0 THEN
        UPDATE signals.detected_signals AS s
        SET superseded_by = c.signal_id
        FROM signals.detected_signals AS c
        WHERE
            s.signal_id = any(p_superseded)
            AND c.contract_id = s.contract_id
            AND c.timeframe = s.timeframe
            AND c.profile = s.profile
            AND c."timestamp" = s."timestamp"
            AND c.signal_type = s.signal_type
            AND c.superseded_at IS NULL;
    END IF;
    RETURN v_new;
END;
$$;

COMMENT ON FUNCTION internal.trend_record_starts(
    text, text, text, signals.trend_event[], bigint[]
) IS
'Inserts the starts p_raised (internal.trend_first_starts) of a series into '
'signals.detected_signals, skipping any already current for its bar and direction, and sets '
'superseded_by of the signals p_superseded to their current replacements; returns how many '
'rows it inserted.';
