-- The jobs' own record of success. TimescaleDB's job statistics are not enough to judge a job:
-- on some builds every run is recorded as failed (error 24000, cannot drop portal "" while it is
-- being set up) after its work has committed. A job writes this row in the transaction of its
-- work, so the row exists exactly when the work does.
CREATE TABLE internal.job_runs (
    job_id integer PRIMARY KEY,
    last_success timestamptz NOT NULL,
    successes bigint NOT NULL DEFAULT 1,
    last_result jsonb
);

COMMENT ON TABLE internal.job_runs IS
'Per TimescaleDB job (trend jobs): when a run last committed its work, how many runs did, and '
'the last run''s summary. Read through signals.trend_job_status.';
