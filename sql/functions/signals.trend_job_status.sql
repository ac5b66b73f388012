-- How each trend job is doing, judged from its own progress as well as TimescaleDB's statistics.
CREATE OR REPLACE VIEW signals.trend_job_status AS
SELECT -- noqa: ST06
    j.job_id,
    j.config ->> 'contract_id' AS contract_id,
    j.config ->> 'timeframe' AS timeframe,
    j.config ->> 'profile' AS profile,
    j.scheduled,
    nullif(s.last_run_started_at, '-infinity') AS last_run,
    r.last_success,
    coalesce(e.failures, 0) AS failures_since_success,
    e.last_error,
    nullif(s.next_start, '-infinity') AS next_start,
    w.bar_ts AS analysed_through,
    greatest(w.bar_ts, b.last_closed) AS last_closed_bar,
    coalesce(b.behind, 0) AS bars_behind
FROM timescaledb_information.jobs AS j
LEFT JOIN timescaledb_information.job_stats AS s ON j.job_id = s.job_id
LEFT JOIN internal.job_runs AS r ON j.job_id = r.job_id
LEFT JOIN internal.trend_watermarks AS w
    ON
        w.contract_id = j.config ->> 'contract_id'
        AND w.timeframe = j.config ->> 'timeframe'
        AND w.profile = j.config ->> 'profile'
LEFT JOIN LATERAL (
    -- Runs that started after the last committed success and ended in an error.
    SELECT
        count(*)::integer AS failures,
        (array_agg(x.err_message ORDER BY x.start_time DESC))[1] AS last_error
    FROM timescaledb_information.job_errors AS x
    WHERE
        x.job_id = j.job_id
        AND x.start_time > coalesce(r.last_success, '-infinity')
) AS e ON TRUE
LEFT JOIN LATERAL (
    SELECT
        max(mb.bucket) AS last_closed,
        count(*)::integer AS behind
    FROM market.bars AS mb
    WHERE
        mb.contract_id = j.config ->> 'contract_id'
        AND mb.timeframe = j.config ->> 'timeframe'
        AND mb.is_closed
        AND mb.bucket > coalesce(w.bar_ts, '-infinity')
) AS b ON TRUE
WHERE j.proc_schema = 'signals' AND j.proc_name = 'run_trend_job';

COMMENT ON VIEW signals.trend_job_status IS
'One row per trend job (signals.trend_jobs): its last run as TimescaleDB saw it, its last '
'committed success as the job itself recorded it (internal.job_runs), the failed runs since '
'then with the latest error, the next start, the last bar it analysed, the last closed bar of '
'its series and how many closed bars it has not analysed yet. TimescaleDB''s own failure '
'counts are not used: some builds record every run as failed after its work committed.';
COMMENT ON COLUMN signals.trend_job_status.failures_since_success IS
'Runs that started after last_success and failed (failed to start for want of a worker slot, '
'or raised an error): consecutive failures.';
COMMENT ON COLUMN signals.trend_job_status.bars_behind IS
'Closed bars of the series after analysed_through: 0 or 1 when the job keeps up.';
