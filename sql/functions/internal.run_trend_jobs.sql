-- The TimescaleDB job procedure: one incremental detector run for every series of a timeframe and
-- profile, in one session. Each series commits on its own, so its signals (and NOTIFY) are out as
-- soon as it is done; a series that fails is rolled back alone, recorded, and the others go on.
CREATE OR REPLACE PROCEDURE internal.run_trend_jobs(job_id integer, config jsonb)
LANGUAGE plpgsql
AS $$
DECLARE
    v_all boolean;
    v_error text;
    v_failed integer := 0;
    v_new integer := 0;
    v_result jsonb;
    v_series integer := 0;
    v_started timestamptz := clock_timestamp();
    v_timeframe text := config ->> 'timeframe';
    v_profile text := config ->> 'profile';
    v_contract_id text;
BEGIN
    PERFORM internal.check_trend_job_config(config);
    -- A paused job (every series paused) run by hand runs them all.
    v_all := NOT EXISTS (
        SELECT 1
        FROM signals.trend_jobs AS t
        WHERE t.timeframe = v_timeframe AND t.profile = v_profile AND t.scheduled
    );
    FOR v_contract_id IN
        SELECT t.contract_id
        FROM signals.trend_jobs AS t
        WHERE
            t.timeframe = v_timeframe
            AND t.profile = v_profile
            AND (t.scheduled OR v_all)
        ORDER BY t.contract_id
    LOOP
        v_series := v_series + 1;
        BEGIN
            v_result := signals.trend_advance(v_contract_id, v_timeframe, v_profile);
            INSERT INTO internal.trend_series_runs AS r (
                contract_id, timeframe, profile, last_attempt, last_success, successes,
                failures, last_result
            )
            VALUES (
                v_contract_id, v_timeframe, v_profile, clock_timestamp(), clock_timestamp(), 1,
                0, v_result
            )
            ON CONFLICT ON CONSTRAINT trend_series_runs_pkey DO UPDATE SET
                last_attempt = excluded.last_attempt,
                last_success = excluded.last_success,
                successes = r.successes + 1,
                failures = 0,
                last_result = excluded.last_result;
            v_new := v_new + coalesce((v_result ->> 'new')::integer, 0);
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS v_error = MESSAGE_TEXT;
            v_failed := v_failed + 1;
            INSERT INTO internal.trend_series_runs AS r (
                contract_id, timeframe, profile, last_attempt, failures, last_error
            )
            VALUES (v_contract_id, v_timeframe, v_profile, clock_timestamp(), 1, v_error)
            ON CONFLICT ON CONSTRAINT trend_series_runs_pkey DO UPDATE SET
                last_attempt = excluded.last_attempt,
                failures = r.failures + 1,
                last_error = excluded.last_error;
            RAISE WARNING 'trend job %: % % % failed: %',
                job_id, v_contract_id, v_timeframe, v_profile, v_error;
        END;
        COMMIT;
    END LOOP;
    INSERT INTO internal.job_runs AS r (job_id, last_success, last_result)
    VALUES (
        job_id,
        clock_timestamp(),
        jsonb_build_object(
            'series', v_series,
            'failed', v_failed,
            'new', v_new,
            'seconds', round(extract(EPOCH FROM clock_timestamp() - v_started), 3)
        )
    )
    ON CONFLICT ON CONSTRAINT job_runs_pkey DO UPDATE SET
        last_success = excluded.last_success,
        successes = r.successes + 1,
        last_result = excluded.last_result;
    RAISE LOG 'trend job % (% %): % series, % failed, % new signals in %',
        job_id, v_timeframe, v_profile, v_series, v_failed, v_new, clock_timestamp() - v_started;
END;
$$;

COMMENT ON PROCEDURE internal.run_trend_jobs (integer, jsonb) IS
'Job procedure of the trend jobs (one per timeframe and profile of signals.trend_jobs): runs '
'signals.trend_advance for each scheduled series of config {timeframe, profile} (all of them '
'when every one is paused), committing each series on its own; a failing series is recorded in '
'internal.trend_series_runs and skipped. Records the run in internal.job_runs (see '
'signals.trend_job_status). Run one now with CALL run_job(job_id), outside a transaction block.';
