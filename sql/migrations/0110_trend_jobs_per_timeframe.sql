-- One trend job per (timeframe, profile) instead of one per row of signals.trend_jobs, started
-- a few seconds after each bar close, with the job plumbing in schema internal.
--
-- A job per series paid the fixed cost of a fresh session for every contract (~34 ms CPU a run;
-- 100 contracts x 2 timeframes needed 200 background workers at once at a close). Now one job
-- per timeframe and profile runs signals.trend_advance for every series of that timeframe in
-- one session, and one series failing does not stop the others. Its schedule follows the bar
-- grid (internal.bar_close_schedule), and the refresh policy of the same level runs on that grid
-- a few seconds earlier.
--
-- This migration removes the per-series jobs and the old plumbing (signals.run_trend_job,
-- signals.sync_trend_jobs, signals.check_trend_job_config, signals.trend_jobs_changed and its
-- trigger) together (on a new database the repeatable files have not created them yet); the
-- repeatable files then create internal.run_trend_jobs and its helpers and
-- register the new jobs (internal.sync_trend_jobs) in the same `mechtrade migrate`. Detector
-- state, watermarks and signals are kept: the new jobs carry on where the old ones stopped.

DROP TRIGGER IF EXISTS trend_jobs_sync ON signals.trend_jobs;
DROP VIEW IF EXISTS signals.trend_job_status;
SELECT delete_job(job_id)
FROM timescaledb_information.jobs
WHERE proc_schema = 'signals' AND proc_name = 'run_trend_job';
DROP FUNCTION IF EXISTS signals.trend_jobs_changed();
DROP FUNCTION IF EXISTS signals.sync_trend_jobs();
DROP PROCEDURE IF EXISTS signals.run_trend_job(integer, jsonb);
DROP FUNCTION IF EXISTS signals.check_trend_job_config(jsonb);
-- It counts the trend jobs apart now (a new column; the repeatable file re-creates it).
DROP FUNCTION IF EXISTS internal.worker_slots();
-- The deleted jobs' records; the new jobs write their own.
DELETE FROM internal.job_runs;

-- A series' job runs on the bar grid of its timeframe now, not every schedule_interval.
ALTER TABLE signals.trend_jobs DROP COLUMN schedule_interval;

COMMENT ON TABLE signals.trend_jobs IS
'Which series the incremental detector runs on. One TimescaleDB job per (timeframe, profile) '
'analyses every series of that timeframe and profile a few seconds after each bar close '
'(internal.bar_close_schedule); jobs are added, altered and deleted automatically when rows '
'change. Their health per series: signals.trend_job_status.';
COMMENT ON COLUMN signals.trend_jobs.scheduled IS
'false pauses this series: the job of its timeframe and profile skips it. When every series of '
'a timeframe and profile is paused the job is paused, and CALL run_job(job_id) runs them all.';

-- When bars close and when their jobs run. 1m..1h bars sit on the UTC grid; 4h and 1d bars follow
-- the Chicago session (market.session_bar_end): a 4h bar closes on a whole hour (every 4 hours,
-- and at the 16:00 halt), a daily bar at the 16:00 halt.
CREATE TABLE internal.bar_close_schedule (
    timeframe text PRIMARY KEY REFERENCES market.timeframes (timeframe),
    run_every interval NOT NULL,
    time_zone text NOT NULL,
    first_close timestamptz NOT NULL,
    refresh_delay interval NOT NULL,
    trend_delay interval NOT NULL,
    CONSTRAINT bar_close_schedule_run_every_positive CHECK (run_every > interval '0'),
    CONSTRAINT bar_close_schedule_refresh_first CHECK (
        interval '0' <= refresh_delay AND refresh_delay < trend_delay
    )
);

INSERT INTO internal.bar_close_schedule (
    timeframe, run_every, time_zone, first_close, refresh_delay, trend_delay
) VALUES
('1m', '1 minute', 'UTC', '2000-01-03 00:00+00', '1 second', '5 seconds'),
('5m', '5 minutes', 'UTC', '2000-01-03 00:00+00', '2 seconds', '5 seconds'),
('15m', '15 minutes', 'UTC', '2000-01-03 00:00+00', '2 seconds', '5 seconds'),
('1h', '1 hour', 'UTC', '2000-01-03 00:00+00', '3 seconds', '5 seconds'),
('4h', '1 hour', 'America/Chicago', '2000-01-02 23:00+00', '3 seconds', '5 seconds'),
('1d', '1 day', 'America/Chicago', '2000-01-03 22:00+00', '3 seconds', '5 seconds');

COMMENT ON TABLE internal.bar_close_schedule IS
'The bar grid of each timeframe, as TimescaleDB fixed schedules: jobs run every run_every in '
'time_zone from first_close (a bar close). The refresh policy of the level runs refresh_delay '
'after each close, the trend job of the timeframe trend_delay after it; the bar just closed is '
'read through the real-time part of market.bars. 4h runs hourly: a 4h bar also closes at the '
'16:00 Chicago halt. Read by internal.sync_trend_jobs; run it after a change.';

-- Per series: when its last run committed, and its failures since (the job carries on past them).
CREATE TABLE internal.trend_series_runs (
    contract_id text NOT NULL,
    timeframe text NOT NULL,
    profile text NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now(),
    last_attempt timestamptz,
    last_success timestamptz,
    successes bigint NOT NULL DEFAULT 0,
    failures integer NOT NULL DEFAULT 0,
    last_error text,
    last_result jsonb,
    CONSTRAINT trend_series_runs_pkey PRIMARY KEY (contract_id, timeframe, profile)
);

COMMENT ON TABLE internal.trend_series_runs IS
'Per series of signals.trend_jobs: when its job last tried it (last_attempt) and last committed '
'its work, the failed attempts since (failures) with the latest error, and the last run''s '
'summary. internal.sync_trend_jobs adds and deletes rows with signals.trend_jobs. Read through '
'signals.trend_job_status.';

COMMENT ON TABLE internal.job_runs IS
'Per trend job (one per timeframe and profile): when a run last finished its series, how many '
'runs did, and the last run''s summary (series, failed, new signals, seconds).';
