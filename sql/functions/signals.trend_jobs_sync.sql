-- Every change to the job configuration (re)registers the TimescaleDB jobs.
CREATE OR REPLACE TRIGGER trend_jobs_sync
AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON signals.trend_jobs
FOR EACH STATEMENT
EXECUTE FUNCTION signals.trend_jobs_changed();

COMMENT ON TRIGGER trend_jobs_sync ON signals.trend_jobs IS
'Registers, alters or deletes the trend jobs after every change (signals.sync_trend_jobs).';
