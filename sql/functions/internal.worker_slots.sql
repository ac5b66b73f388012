-- Whether the server has background workers enough for this database's TimescaleDB jobs.
CREATE OR REPLACE FUNCTION internal.worker_slots()
RETURNS TABLE (
    max_background_workers integer,
    other_schedulers integer,
    jobs integer,
    needed integer,
    available integer,
    max_worker_processes integer,
    max_parallel_workers integer,
    processes_needed integer,
    trend_jobs integer
)
LANGUAGE sql
STABLE
AS $$
    SELECT
        g.bgw,
        o.n,
        jb.n,
        1 + jb.n,
        g.bgw - o.n,
        g.mwp,
        g.mpw,
        g.bgw + g.mpw + 1,
        jb.trend
    FROM (
        SELECT
            current_setting('timescaledb.max_background_workers')::integer AS bgw,
            current_setting('max_worker_processes')::integer AS mwp,
            current_setting('max_parallel_workers')::integer AS mpw
    ) AS g
    CROSS JOIN (
        SELECT count(*)::integer AS n
        FROM pg_stat_activity AS a
        WHERE
            a.backend_type = 'TimescaleDB Background Worker Scheduler'
            AND a.datname IS DISTINCT FROM current_database()
    ) AS o
    CROSS JOIN (
        SELECT
            count(*)::integer AS n,
            (count(*) FILTER (
                WHERE j.proc_schema = 'internal' AND j.proc_name = 'run_trend_jobs'
            ))::integer AS trend
        FROM timescaledb_information.jobs AS j
        WHERE j.scheduled
    ) AS jb;
$$;

COMMENT ON FUNCTION internal.worker_slots() IS
'TimescaleDB''s worker pool (timescaledb.max_background_workers) holds one scheduler per '
'database with the extension plus one worker per running job. needed: this database''s '
'scheduler and every scheduled job due at once (the worst case: trend jobs fall due together '
'at bar closes); available: the pool less the other databases'' schedulers. A job due when no '
'slot is free fails to start. max_worker_processes must cover the pool, the parallel query '
'workers and the launcher (processes_needed). trend_jobs: the scheduled trend jobs among jobs '
'(one per timeframe and profile of signals.trend_jobs, whatever the number of contracts).';
