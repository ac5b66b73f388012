-- The starts a trader could have acted on when they became known: confirmed by a rule (not
-- FORCED) and at most p_max_delay bars after the start bar.
CREATE OR REPLACE FUNCTION signals.actionable_starts(
    contract_id text,
    timeframe text,
    from_ts timestamptz,
    to_ts timestamptz,
    profile text DEFAULT signals.default_profile(),
    max_delay integer DEFAULT 3
) RETURNS TABLE (
    start_ts timestamptz,
    direction text,
    price numeric,
    confirmed_at timestamptz,
    known_at timestamptz,
    delay_bars bigint,
    rule text,
    rule_name text
)
LANGUAGE sql
STABLE
AS $$
    WITH numbered AS (
        SELECT
            b.bucket,
            row_number() OVER (ORDER BY b.bucket) AS bar_no
        FROM market.bars AS b
        WHERE
            b.contract_id = actionable_starts.contract_id
            AND b.timeframe = actionable_starts.timeframe
            AND b.is_closed
            AND b.bucket >= coalesce(actionable_starts.from_ts, '-infinity')
            AND b.bucket < coalesce(actionable_starts.to_ts, 'infinity')
    )

    SELECT
        s.start_ts,
        s.direction,
        s.price,
        s.confirmed_at,
        market.session_bar_end(actionable_starts.timeframe, s.confirmed_at),
        c.bar_no - b.bar_no,
        s.rule,
        s.rule_name
    FROM signals.trend_starts(
        actionable_starts.contract_id, actionable_starts.timeframe,
        actionable_starts.from_ts, actionable_starts.to_ts, actionable_starts.profile
    ) AS s
    INNER JOIN numbered AS b ON s.start_ts = b.bucket
    INNER JOIN numbered AS c ON s.confirmed_at = c.bucket
    WHERE
        s.rule <> 'FORCED'
        AND c.bar_no - b.bar_no <= actionable_starts.max_delay
    ORDER BY s.confirmed_at, s.start_ts, s.direction
$$;

COMMENT ON FUNCTION signals.actionable_starts(
    text, text, timestamptz, timestamptz, text, integer
) IS
'The actionable subset of signals.trend_starts (same arguments, plus max_delay): starts confirmed '
'by a rule (never FORCED) whose confirming bar is at most max_delay bars (default 3) after the '
'start bar, with known_at (close of the confirming bar) and delay_bars. This is the set that '
'"actionable F1" scores against the hand labels and that signals.backtest trades for a profile. '
'Ordered by confirmation.';
