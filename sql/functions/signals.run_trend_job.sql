-- The TimescaleDB job procedure: one incremental detector run for the series in its config.
CREATE OR REPLACE PROCEDURE signals.run_trend_job(job_id integer, config jsonb)
LANGUAGE plpgsql
AS $$
DECLARE
    v_result jsonb;
    v_started timestamptz := clock_timestamp();
BEGIN
    PERFORM signals.check_trend_job_config(config);
    v_result := signals.trend_advance(
        config ->> 'contract_id', config ->> 'timeframe', config ->> 'profile'
    );
    INSERT INTO internal.job_runs AS r (job_id, last_success, last_result)
    VALUES (job_id, clock_timestamp(), v_result)
    ON CONFLICT ON CONSTRAINT job_runs_pkey DO UPDATE SET
        last_success = excluded.last_success,
        successes = r.successes + 1,
        last_result = excluded.last_result;
    RAISE LOG 'trend job %: % % %: % in %',
        job_id, config ->> 'contract_id', config ->> 'timeframe', config ->> 'profile',
        v_result, clock_timestamp() - v_started;
END;
$$;

COMMENT ON PROCEDURE signals.run_trend_job (integer, jsonb) IS
'Job procedure of the trend jobs (one per row of signals.trend_jobs): runs '
'signals.trend_advance for config {contract_id, timeframe, profile} in the job''s transaction '
'and records the success in internal.job_runs (see signals.trend_job_status). '
'Run one now with CALL run_job(job_id).';
REVOKE EXECUTE ON PROCEDURE signals.run_trend_job(integer, jsonb) FROM public;
