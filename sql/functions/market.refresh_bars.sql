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
BEGIN
    -- Finest first; each level in the batches of its refresh policy (migration 0091: a week
    -- of 1m or 5m bars, 1000 coarser bars per transaction), or in one pass without a policy.
    FOR v_level, v_options IN
        SELECT
            format('market.%I', 'bars_' || t.timeframe)::regclass,
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
        CALL refresh_continuous_aggregate(
            v_level, v_from, v_to, options => v_options
        );
        COMMIT;
    END LOOP;
END;
$$;

COMMENT ON PROCEDURE market.refresh_bars (timestamptz, timestamptz) IS
'Refresh all bar levels (1m up to 1d, in order) for the sessions overlapping [p_from, p_to]. '
'Run it with CALL outside a transaction block. Fails with lock_not_available (55P03) while '
'a refresh policy is refreshing an overlapping window: retry (ingest.bars.refresh_bars does).';
