-- Make the TimescaleDB jobs match signals.trend_jobs: exactly one job per row, with its schedule;
-- none for series no longer configured. Idempotent: a second call changes nothing.
CREATE OR REPLACE FUNCTION signals.sync_trend_jobs()
RETURNS integer
LANGUAGE plpgsql
VOLATILE
AS $$
DECLARE
    v_changes integer := 0;
    v_row record;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('signals.sync_trend_jobs', 0));
    FOR v_row IN
        SELECT j.job_id
        FROM (
            SELECT
                tj.job_id,
                tj.config,
                row_number() OVER (
                    PARTITION BY
                        tj.config ->> 'contract_id',
                        tj.config ->> 'timeframe',
                        tj.config ->> 'profile'
                    ORDER BY tj.job_id
                ) AS copy
            FROM timescaledb_information.jobs AS tj
            WHERE tj.proc_schema = 'signals' AND tj.proc_name = 'run_trend_job'
        ) AS j
        LEFT JOIN signals.trend_jobs AS t
            ON
                j.config ->> 'contract_id' = t.contract_id
                AND j.config ->> 'timeframe' = t.timeframe
                AND j.config ->> 'profile' = t.profile
        WHERE t.contract_id IS NULL OR j.copy > 1
    LOOP
        PERFORM delete_job(v_row.job_id);
        v_changes := v_changes + 1;
    END LOOP;

    FOR v_row IN
        SELECT
            t.*,
            j.job_id,
            j.schedule_interval AS job_interval,
            j.scheduled AS job_scheduled
        FROM signals.trend_jobs AS t
        LEFT JOIN timescaledb_information.jobs AS j
            ON
                j.proc_schema = 'signals'
                AND j.proc_name = 'run_trend_job'
                AND j.config ->> 'contract_id' = t.contract_id
                AND j.config ->> 'timeframe' = t.timeframe
                AND j.config ->> 'profile' = t.profile
    LOOP
        IF v_row.job_id IS NULL THEN
            PERFORM add_job(
                'signals.run_trend_job',
                v_row.schedule_interval,
                config => jsonb_build_object(
                    'contract_id', v_row.contract_id,
                    'timeframe', v_row.timeframe,
                    'profile', v_row.profile
                ),
                scheduled => v_row.scheduled,
                check_config => 'signals.check_trend_job_config',
                job_name => format(
                    'trend starts %s %s %s', v_row.contract_id, v_row.timeframe, v_row.profile
                )
            );
            v_changes := v_changes + 1;
        ELSIF v_row.job_interval IS DISTINCT FROM v_row.schedule_interval
            OR v_row.job_scheduled IS DISTINCT FROM v_row.scheduled THEN
            PERFORM alter_job(
                v_row.job_id,
                schedule_interval => v_row.schedule_interval,
                scheduled => v_row.scheduled
            );
            v_changes := v_changes + 1;
        END IF;
    END LOOP;
    RETURN v_changes;
END;
$$;

COMMENT ON FUNCTION signals.sync_trend_jobs() IS
'Adds, alters and deletes TimescaleDB jobs (procedure signals.run_trend_job) so that each row '
'of signals.trend_jobs has exactly one, with its schedule_interval and scheduled flag. Runs '
'automatically after every change to signals.trend_jobs; safe to call any time. Returns the '
'number of jobs added, altered or deleted.';
-- Adds and deletes jobs: for whoever owns the configuration, not for analysts.
REVOKE EXECUTE ON FUNCTION signals.sync_trend_jobs() FROM public;
