-- Pause the bar refresh policies before 0091 rebuilds the bar hierarchy.
--
-- TimescaleDB cannot drop a continuous aggregate safely while its refresh policy runs (the
-- drop deletes the policy's job and statistics rows under the running job: "deadlock
-- detected" or "tuple concurrently updated"). Paused here and committed, no new run starts;
-- 0091 waits for any run still in progress, then drops the policies with their aggregates.
SELECT alter_job(job_id, scheduled => FALSE)
FROM timescaledb_information.jobs
WHERE
    proc_name = 'policy_refresh_continuous_aggregate'
    AND hypertable_schema = 'market';
