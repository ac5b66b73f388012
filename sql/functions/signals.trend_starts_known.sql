-- Trend starts with when a trader could have acted on them: the basis of actionable scores.
CREATE OR REPLACE FUNCTION signals.trend_starts_known(
    contract_id text,
    timeframe text,
    from_ts timestamptz,
    to_ts timestamptz,
    profile text DEFAULT signals.default_profile(),
    max_delay_bars integer DEFAULT 3
) RETURNS TABLE (
    start_ts timestamptz,
    direction text,
    price numeric,
    confirmed_at timestamptz,
    rule text,
    rule_name text,
    known_at timestamptz,
    delay_bars bigint,
    actionable boolean
)
LANGUAGE sql
STABLE
AS $$
    WITH series AS (
        SELECT
            b.bucket,
            b.closes_at,
            row_number() OVER (ORDER BY b.bucket) AS n
        FROM market.bars AS b
        WHERE
            b.contract_id = trend_starts_known.contract_id
            AND b.timeframe = trend_starts_known.timeframe
            AND b.is_closed
            AND (trend_starts_known.from_ts IS NULL OR b.bucket >= trend_starts_known.from_ts)
            AND (trend_starts_known.to_ts IS NULL OR b.bucket < trend_starts_known.to_ts)
    )

    SELECT
        s.start_ts,
        s.direction,
        s.price,
        s.confirmed_at,
        s.rule,
        s.rule_name,
        c.closes_at,
        c.n - b.n,
        s.rule <> 'FORCED' AND (
            trend_starts_known.max_delay_bars IS NULL
            OR c.n - b.n <= trend_starts_known.max_delay_bars
        )
    FROM signals.trend_starts(
        trend_starts_known.contract_id, trend_starts_known.timeframe,
        trend_starts_known.from_ts, trend_starts_known.to_ts, trend_starts_known.profile
    ) AS s
    INNER JOIN series AS b ON s.start_ts = b.bucket
    INNER JOIN series AS c ON s.confirmed_at = c.bucket
    ORDER BY s.start_ts, s.direction
$$;

COMMENT ON FUNCTION signals.trend_starts_known(
    text, text, timestamptz, timestamptz, text, integer
) IS
'signals.trend_starts() of one series with when each start became known: known_at (close time '
'of the confirming bar), delay_bars (confirming bar minus start bar, counted in closed bars of '
'the series) and actionable: a trader could act on it in time, i.e. its rule is not FORCED (a '
'forced start is only known in hindsight, from the next opposite start) and delay_bars <= '
'max_delay_bars (default 3, the baseline detector''s median; NULL: no limit, only not FORCED).';
