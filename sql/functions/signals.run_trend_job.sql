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
    RAISE LOG 'trend job %: % % %: % in %',
        job_id, config ->> 'contract_id', config ->> 'timeframe', config ->> 'profile',
        v_result, clock_timestamp() - v_started;
END;
$$;

COMMENT ON PROCEDURE signals.run_trend_job (integer, jsonb) IS
'Job procedure of the trend jobs (one per row of signals.trend_jobs): runs '
'signals.trend_advance for config {contract_id, timeframe, profile} in the job''s transaction. '
'Run one now with CALL run_job(job_id).';
REVOKE EXECUTE ON PROCEDURE signals.run_trend_job(integer, jsonb) FROM public;
