-- Refresh policies materialize one week of buckets per committed batch.
--
-- TimescaleDB 2.28 cuts every refresh into batches of 10 buckets by default, each its own
-- transaction: over a day of 1m bars that is 144 commits, and a backfill of months crawls
-- (measured: the 1m refresh at 11x a plain GROUP BY, 2.2x with one batch). One week of buckets
-- per batch keeps each transaction bounded while paying the per-batch cost rarely.
-- market.refresh_bars reads the same setting, so `alter_job` on a policy tunes both.
SELECT
    alter_job(
        j.job_id,
        config => j.config || jsonb_build_object(
            'buckets_per_batch',
            ceil(
                extract(EPOCH FROM interval '7 days')
                / extract(EPOCH FROM t.bucket_width)
            )::integer
        )
    )
FROM market.timeframes AS t
INNER JOIN timescaledb_information.jobs AS j
    ON
        j.hypertable_schema = 'market'
        AND j.hypertable_name = 'bars_' || t.timeframe
        AND j.proc_name = 'policy_refresh_continuous_aggregate';
