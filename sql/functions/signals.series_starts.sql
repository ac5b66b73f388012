-- The current trend starts of a series as a chart shows them: stored if a job covers the
-- series, recomputed otherwise, each with when it became known and whether it was actionable.
CREATE OR REPLACE FUNCTION signals.series_starts(
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
    actionable boolean,
    source text
)
LANGUAGE sql
STABLE
AS $$
    WITH job AS (
        SELECT EXISTS (
            SELECT 1 FROM signals.trend_jobs AS j
            WHERE
                j.contract_id = series_starts.contract_id
                AND j.timeframe = series_starts.timeframe
                AND j.profile = series_starts.profile
        ) AS covered
    ),

    stored AS (
        SELECT
            s.timestamp AS start_ts,
            CASE s.signal_type WHEN 'uptrend_start' THEN 'up' ELSE 'down' END AS direction,
            s.signal_price AS price,
            s.confirmed_at,
            s.details ->> 'rule' AS rule,
            c.closes_at AS known_at,
            (
                SELECT count(*) FROM market.bars AS b
                WHERE
                    b.contract_id = s.contract_id
                    AND b.timeframe = s.timeframe
                    AND b.bucket > s.timestamp
                    AND b.bucket <= s.confirmed_at
            ) AS delay_bars
        FROM signals.detected_signals AS s
        LEFT JOIN market.bars AS c
            ON
                s.contract_id = c.contract_id
                AND s.timeframe = c.timeframe
                AND s.confirmed_at = c.bucket
        WHERE
            s.contract_id = series_starts.contract_id
            AND s.timeframe = series_starts.timeframe
            AND s.profile = series_starts.profile
            AND s.superseded_at IS NULL
            AND (series_starts.from_ts IS NULL OR s.timestamp >= series_starts.from_ts)
            AND (series_starts.to_ts IS NULL OR s.timestamp < series_starts.to_ts)
    )

    SELECT
        stored.start_ts,
        stored.direction,
        stored.price,
        stored.confirmed_at,
        stored.rule,
        r.rule_name,
        stored.known_at,
        stored.delay_bars,
        stored.rule <> 'FORCED' AND (
            series_starts.max_delay_bars IS NULL
            OR stored.delay_bars <= series_starts.max_delay_bars
        ),
        'stored'
    FROM stored
    CROSS JOIN job
    LEFT JOIN signals.trend_rules AS r ON stored.rule = r.rule
    WHERE job.covered
    UNION ALL
    SELECT
        k.*,
        'recomputed'
    FROM signals.trend_starts_known(
        series_starts.contract_id, series_starts.timeframe, series_starts.from_ts,
        series_starts.to_ts, series_starts.profile, series_starts.max_delay_bars
    ) AS k
    CROSS JOIN job
    WHERE NOT job.covered
    ORDER BY 1, 2
$$;

COMMENT ON FUNCTION signals.series_starts(text, text, timestamptz, timestamptz, text, integer) IS
'The current trend starts of one series with from_ts <= start bar < to_ts (NULL: unbounded), '
'as the chart page shows them: when a job of signals.trend_jobs covers the series and profile, '
'its stored signals (source stored); otherwise signals.trend_starts_known() over the bars of '
'that range (source recomputed). Columns as signals.trend_starts_known(): known_at, delay_bars '
'and actionable (rule not FORCED, delay_bars <= max_delay_bars).';
