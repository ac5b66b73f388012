-- Make the TimescaleDB jobs match signals.trend_jobs and internal.bar_close_schedule: exactly one
-- trend job per (timeframe, profile) configured, on the bar grid of its timeframe; the refresh
-- policy of each bar level on the same grid, earlier. Idempotent: a second call changes nothing.
CREATE OR REPLACE FUNCTION internal.sync_trend_jobs()
RETURNS integer
LANGUAGE plpgsql
VOLATILE
AS $$
DECLARE
    v_changes integer := 0;
    v_row record;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('internal.sync_trend_jobs', 0));
    -- Jobs of a timeframe and profile no longer configured, and duplicates.
    FOR v_row IN
        SELECT j.job_id
        FROM (
            SELECT
                tj.job_id,
                tj.config,
                row_number() OVER (
                    PARTITION BY tj.config ->> 'timeframe', tj.config ->> 'profile'
                    ORDER BY tj.job_id
                ) AS copy
            FROM timescaledb_information.jobs AS tj
            WHERE tj.proc_schema = 'internal' AND tj.proc_name = 'run_trend_jobs'
        ) AS j
        WHERE
            j.copy > 1
            OR NOT EXISTS (
                SELECT 1
                FROM signals.trend_jobs AS t
                WHERE
                    t.timeframe = j.config ->> 'timeframe'
                    AND t.profile = j.config ->> 'profile'
            )
    LOOP
        PERFORM delete_job(v_row.job_id);
        v_changes := v_changes + 1;
    END LOOP;

    FOR v_row IN
        SELECT
            t.timeframe,
            t.profile,
            t.scheduled,
            s.run_every,
            s.time_zone,
            s.first_close + s.trend_delay AS initial_start,
            j.job_id,
            j.schedule_interval AS job_every,
            j.scheduled AS job_scheduled,
            j.initial_start AS job_initial_start,
            j.fixed_schedule AS job_fixed
        FROM (
            SELECT
                timeframe,
                profile,
                bool_or(scheduled) AS scheduled
            FROM signals.trend_jobs
            GROUP BY timeframe, profile
        ) AS t
        INNER JOIN internal.bar_close_schedule AS s ON t.timeframe = s.timeframe
        LEFT JOIN timescaledb_information.jobs AS j
            ON
                j.proc_schema = 'internal'
                AND j.proc_name = 'run_trend_jobs'
                AND j.config ->> 'timeframe' = t.timeframe
                AND j.config ->> 'profile' = t.profile
    LOOP
        IF v_row.job_id IS NULL THEN
            PERFORM add_job(
                'internal.run_trend_jobs',
                v_row.run_every,
                config => jsonb_build_object(
                    'timeframe', v_row.timeframe, 'profile', v_row.profile
                ),
                initial_start => v_row.initial_start,
                scheduled => v_row.scheduled,
                check_config => 'internal.check_trend_job_config',
                fixed_schedule => TRUE,
                timezone => v_row.time_zone,
                job_name => format('trend starts %s %s', v_row.timeframe, v_row.profile)
            );
            v_changes := v_changes + 1;
        ELSIF v_row.job_every IS DISTINCT FROM v_row.run_every
            OR v_row.job_initial_start IS DISTINCT FROM v_row.initial_start
            OR v_row.job_fixed IS DISTINCT FROM TRUE
            OR v_row.job_scheduled IS DISTINCT FROM v_row.scheduled THEN
            PERFORM alter_job(
                v_row.job_id,
                schedule_interval => v_row.run_every,
                initial_start => v_row.initial_start,
                fixed_schedule => TRUE,
                timezone => v_row.time_zone,
                scheduled => v_row.scheduled
            );
            v_changes := v_changes + 1;
        END IF;
    END LOOP;

    -- Every configured series has its run record from now on (its failures count from here).
    DELETE FROM internal.trend_series_runs AS r
    WHERE NOT EXISTS (
        SELECT 1
        FROM signals.trend_jobs AS t
        WHERE
            t.contract_id = r.contract_id
            AND t.timeframe = r.timeframe
            AND t.profile = r.profile
    );
    INSERT INTO internal.trend_series_runs (contract_id, timeframe, profile)
    SELECT
        contract_id,
        timeframe,
        profile
    FROM signals.trend_jobs
    ON CONFLICT ON CONSTRAINT trend_series_runs_pkey DO NOTHING;

    -- The refresh policy of each level: on the grid of its timeframe, before the trend job.
    FOR v_row IN
        SELECT
            j.job_id,
            s.run_every,
            s.time_zone,
            s.first_close + s.refresh_delay AS initial_start
        FROM timescaledb_information.jobs AS j
        INNER JOIN internal.bar_close_schedule AS s
            ON j.hypertable_name = 'bars_' || s.timeframe
        WHERE
            j.proc_name = 'policy_refresh_continuous_aggregate'
            AND j.hypertable_schema = 'market'
            AND (
                j.schedule_interval IS DISTINCT FROM s.run_every
                OR j.initial_start IS DISTINCT FROM s.first_close + s.refresh_delay
                OR NOT j.fixed_schedule
            )
    LOOP
        PERFORM alter_job(
            v_row.job_id,
            schedule_interval => v_row.run_every,
            initial_start => v_row.initial_start,
            fixed_schedule => TRUE,
            timezone => v_row.time_zone
        );
        v_changes := v_changes + 1;
    END LOOP;
    RETURN v_changes;
END;
$$;

COMMENT ON FUNCTION internal.sync_trend_jobs() IS
'Adds, alters and deletes TimescaleDB jobs (procedure internal.run_trend_jobs) so that each '
'(timeframe, profile) of signals.trend_jobs has exactly one, scheduled when any of its series '
'is, on the grid of internal.bar_close_schedule; aligns the refresh policies of the bar levels '
'to the same grid. Runs after every change to signals.trend_jobs and on every migrate; safe '
'to call any time. Returns the number of jobs added, altered or deleted.';
