-- Supersede: after a replay from p_after, the current signals confirmed since that do not come
-- out identical again are withdrawn (never deleted).
CREATE OR REPLACE FUNCTION internal.trend_supersede(
    p_contract_id text,
    p_timeframe text,
    p_profile text,
    p_after timestamptz,
    p_raised signals.trend_event[]
) RETURNS bigint[]
LANGUAGE sql
VOLATILE
AS $$
    WITH withdrawn AS (
        UPDATE signals.detected_signals AS s
        SET superseded_at = now()
        WHERE
            s.contract_id = p_contract_id
            AND s.timeframe = p_timeframe
            AND s.profile = p_profile
            AND s.superseded_at IS NULL
            AND s.confirmed_at > p_after
            AND NOT EXISTS (
                SELECT 1
                FROM unnest(p_raised) AS t
                WHERE
                    t.bar_ts = s."timestamp"
                    AND t.event IN ('CUS', 'CUS_FORCED') = (s.signal_type = 'uptrend_start')
                    AND t.price = s.signal_price
                    AND t.at_ts = s.confirmed_at
                    AND t.rule = s.details ->> 'rule'
            )
        RETURNING s.signal_id
    )

    SELECT coalesce(array_agg(withdrawn.signal_id), '{}') FROM withdrawn
$$;

COMMENT ON FUNCTION internal.trend_supersede(
    text, text, text, timestamptz, signals.trend_event[]
) IS
'Marks superseded the current signals of a series confirmed after p_after that are not among '
'the starts p_raised of its replay (same bar, direction, price, confirming bar and rule); '
'returns their signal ids.';
