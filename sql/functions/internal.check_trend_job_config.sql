-- check_config of the trend jobs: TimescaleDB calls it when a job is added or its config altered,
-- so a bad config fails then rather than at run time.
CREATE OR REPLACE FUNCTION internal.check_trend_job_config(config jsonb)
RETURNS void
LANGUAGE plpgsql
STABLE
AS $$
BEGIN
    IF jsonb_typeof(config) IS DISTINCT FROM 'object'
        OR jsonb_typeof(config -> 'timeframe') IS DISTINCT FROM 'string'
        OR jsonb_typeof(config -> 'profile') IS DISTINCT FROM 'string' THEN
        RAISE EXCEPTION 'trend job config must be {"timeframe": ..., "profile": ...}, got %',
        coalesce(config::text, 'NULL')
        USING
            ERRCODE = 'invalid_parameter_value',
            HINT = 'Do not add trend jobs by hand: insert a row into signals.trend_jobs.';
    END IF;
    IF NOT EXISTS (
        SELECT 1
        FROM signals.trend_jobs AS j
        WHERE
            j.timeframe = config ->> 'timeframe'
            AND j.profile = config ->> 'profile'
    ) THEN
        RAISE EXCEPTION 'trend job config % matches no row of signals.trend_jobs', config
        USING
            ERRCODE = 'invalid_parameter_value',
            HINT = 'Insert a (contract_id, timeframe, profile) row into signals.trend_jobs; '
            'the job of its timeframe and profile is then added automatically.';
    END IF;
END;
$$;

COMMENT ON FUNCTION internal.check_trend_job_config(jsonb) IS
'Validates a trend job''s config: an object with string timeframe and profile that at least '
'one row of signals.trend_jobs has. Registered as the jobs'' check_config.';
