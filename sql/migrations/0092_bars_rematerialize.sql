-- migrate: no-transaction
-- Re-derive every bar level from the stored ticks after the rebuild in 0091, finest first, in
-- the policies' weekly batches. On a new database there are no ticks and this does nothing; on
-- a large one it takes a while, once (about a second per million ticks and level).
DO $$
DECLARE
    v_from timestamptz;
    v_to timestamptz;
    v_level record;
BEGIN
    -- Whole sessions, as market.refresh_bars widens them: a refresh materializes only buckets
    -- inside its window, and real-time reads start at the watermark.
    SELECT
        time_bucket('1 day', min(ts), 'America/Chicago', '2000-01-02 23:00:00+00'),
        least(
            time_bucket(
                '1 day', max(ts), 'America/Chicago', '2000-01-02 23:00:00+00'
            ) + INTERVAL '1 day',
            now()
        )
    INTO v_from, v_to
    FROM market.ticks;
    IF v_from IS NULL THEN
        RETURN;
    END IF;
    FOR v_level IN
        SELECT
            format('market.%I', 'bars_' || t.timeframe)::regclass AS cagg,
            jsonb_build_object(
                'buckets_per_batch', (j.config ->> 'buckets_per_batch')::integer
            ) AS options
        FROM market.timeframes AS t
        INNER JOIN timescaledb_information.jobs AS j
            ON
                j.hypertable_schema = 'market'
                AND j.hypertable_name = 'bars_' || t.timeframe
                AND j.proc_name = 'policy_refresh_continuous_aggregate'
        ORDER BY t.bucket_width
    LOOP
        CALL refresh_continuous_aggregate(
            v_level.cagg, v_from, v_to, options => v_level.options
        );
        COMMIT;
    END LOOP;
END;
$$;
