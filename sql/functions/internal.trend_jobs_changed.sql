-- Trigger function: keep the TimescaleDB jobs in step with signals.trend_jobs.
CREATE OR REPLACE FUNCTION internal.trend_jobs_changed()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM internal.sync_trend_jobs();
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION internal.trend_jobs_changed() IS
'Statement trigger function on signals.trend_jobs: calls internal.sync_trend_jobs().';
