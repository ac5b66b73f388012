-- How each configured series is doing under its trend job, judged from the job's own records of
-- progress as well as TimescaleDB's statistics.
CREATE OR REPLACE VIEW signals.trend_job_status AS
SELECT -- noqa: ST06
    j.job_id,
    t.contract_id,
    t.timeframe,
    t.profile,
    t.scheduled AND coalesce(j.scheduled, FALSE) AS scheduled,
    nullif(s.last_run_started_at, '-infinity') AS last_run,
    r.last_success,
    coalesce(r.failures, 0) + coalesce(e.failures, 0) AS failures_since_success,
    CASE
        WHEN e.at > r.last_attempt OR r.failures = 0 OR r.failures IS NULL THEN e.last_error
        ELSE r.last_error
    END AS last_error,
    nullif(s.next_start, '-infinity') AS next_start,
    w.bar_ts AS analysed_through,
    greatest(w.bar_ts, b.last_closed) AS last_closed_bar,
    coalesce(b.behind, 0) AS bars_behind
FROM signals.trend_jobs AS t
LEFT JOIN timescaledb_information.jobs AS j
    ON
        j.proc_schema = 'internal'
        AND j.proc_name = 'run_trend_jobs'
        AND j.config ->> 'timeframe' = t.timeframe
        AND j.config ->> 'profile' = t.profile
LEFT JOIN timescaledb_information.job_stats AS s ON j.job_id = s.job_id
LEFT JOIN internal.trend_series_runs AS r
    ON
        t.contract_id = r.contract_id
        AND t.timeframe = r.timeframe
        AND t.profile = r.profile
LEFT JOIN internal.trend_watermarks AS w
    ON
        t.contract_id = w.contract_id
        AND t.timeframe = w.timeframe
        AND t.profile = w.profile
LEFT JOIN LATERAL (
    -- Runs of the job that should have covered the series, started after the series was last
    -- tried (or registered), and ended in an error: the job failed before reaching it.
    SELECT
        count(*)::integer AS failures,
        max(x.start_time) AS at,
        (array_agg(x.err_message ORDER BY x.start_time DESC))[1] AS last_error
    FROM timescaledb_information.job_errors AS x
    WHERE
        x.job_id = j.job_id
        AND (t.scheduled OR NOT j.scheduled)
        AND x.start_time > coalesce(r.last_attempt, r.registered_at, '-infinity')
) AS e ON TRUE
LEFT JOIN LATERAL (
    SELECT
        max(mb.bucket) AS last_closed,
        count(*)::integer AS behind
    FROM market.bars AS mb
    WHERE
        mb.contract_id = t.contract_id
        AND mb.timeframe = t.timeframe
        AND mb.is_closed
        AND mb.bucket > coalesce(w.bar_ts, '-infinity')
) AS b ON TRUE;

COMMENT ON VIEW signals.trend_job_status IS
'One row per series of signals.trend_jobs, with the TimescaleDB job of its timeframe and '
'profile (job_id; one job runs every series of its timeframe and profile): the job''s last run '
'as TimescaleDB saw it, the series'' last committed success as the job recorded it, the failed '
'runs since then with the latest error, the job''s next start, the last bar analysed, the last '
'closed bar of the series and how many closed bars are not analysed yet. TimescaleDB''s own '
'failure counts are not used: some builds record every run as failed after its work committed.';
COMMENT ON COLUMN signals.trend_job_status.scheduled IS
'Whether the job runs this series on its schedule (false: the series or its job is paused).';
COMMENT ON COLUMN signals.trend_job_status.failures_since_success IS
'Consecutive failures of this series: runs in which it raised an error, plus runs of its job '
'that failed (or failed to start for want of a worker slot) before reaching it.';
COMMENT ON COLUMN signals.trend_job_status.bars_behind IS
'Closed bars of the series after analysed_through: 0 or 1 when the job keeps up.';
