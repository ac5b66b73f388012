-- Re-materialize every bar level, finest first, over a window widened to whole sessions.
-- Policies keep recent bars fresh on their own; call this after loading or repairing older
-- ticks (late data beyond a policy's start_offset is otherwise only seen by real-time queries).
CREATE OR REPLACE PROCEDURE market.refresh_bars(
    p_from timestamptz, p_to timestamptz
)
LANGUAGE plpgsql
AS $$
DECLARE
    v_from timestamptz := time_bucket(
        '1 day', p_from, 'America/Chicago', '2000-01-02 23:00:00+00'
    );
    -- Never past now: a watermark in the future would hide later ticks from real-time reads.
    v_to timestamptz := least(
        time_bucket('1 day', p_to, 'America/Chicago', '2000-01-02 23:00:00+00')
        + INTERVAL '1 day',
        now()
    );
    v_level regclass;
    v_options jsonb;
    v_width interval;
    -- Under a retention policy, where the oldest stored ticks begin: a refresh reaching further
    -- back would find the dropped ticks missing and delete their bars. Only bars whose whole
    -- bucket lies in the window are refreshed, so a bar straddling this point keeps what it has.
    -- Without retention nothing is clamped (a clamp would leave the first session's 4h and 1d
    -- bars of newly loaded ticks unmaterialized, hence invisible below the watermark).
    v_kept_from timestamptz := (
        SELECT min(c.range_start)
        FROM timescaledb_information.chunks AS c
        WHERE
            c.hypertable_schema = 'market' AND c.hypertable_name = 'ticks'
            AND EXISTS (
                SELECT 1
                FROM timescaledb_information.jobs AS j
                WHERE
                    j.proc_name = 'policy_retention'
                    AND j.hypertable_schema = 'market'
                    AND j.hypertable_name = 'ticks'
            )
    );
BEGIN
    v_from := greatest(v_from, v_kept_from);
    -- Finest first; each level in the batches of its refresh policy (migration 0091: a week
    -- of 1m or 5m bars, 1000 coarser bars per transaction), or in one pass without a policy.
    FOR v_level, v_width, v_options IN
        SELECT
            format('market.%I', 'bars_' || t.timeframe)::regclass,
            t.bucket_width,
            jsonb_build_object(
                'buckets_per_batch',
                coalesce((j.config ->> 'buckets_per_batch')::integer, 0)
            )
        FROM market.timeframes AS t
        LEFT JOIN timescaledb_information.jobs AS j
            ON
                j.hypertable_schema = 'market'
                AND j.hypertable_name = 'bars_' || t.timeframe
                AND j.proc_name = 'policy_refresh_continuous_aggregate'
        ORDER BY t.bucket_width
    LOOP
        -- TimescaleDB refuses a window narrower than one bucket (here only after clamping).
        IF v_to - v_from >= v_width THEN
            CALL refresh_continuous_aggregate(
                v_level, v_from, v_to, options => v_options
            );
            COMMIT;
        END IF;
    END LOOP;
END;
$$;

COMMENT ON PROCEDURE market.refresh_bars (timestamptz, timestamptz) IS
'Refresh all bar levels (1m up to 1d, in order) for the sessions overlapping [p_from, p_to]. '
'Run it with CALL outside a transaction block. Fails with lock_not_available (55P03) while '
'a refresh policy is refreshing an overlapping window: retry (ingest.bars.refresh_bars does). '
'Starts no earlier than the oldest chunk of market.ticks, so bars whose ticks were dropped by '
'retention (market.set_tick_storage) are kept as they are.';
