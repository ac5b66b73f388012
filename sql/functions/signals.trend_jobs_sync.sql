-- Every change to the job configuration (re)registers the TimescaleDB jobs; so does every migrate
-- (the jobs of a new database, or of one whose jobs were moved or deleted by hand).
CREATE OR REPLACE TRIGGER trend_jobs_sync
AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON signals.trend_jobs
FOR EACH STATEMENT
EXECUTE FUNCTION internal.trend_jobs_changed();

COMMENT ON TRIGGER trend_jobs_sync ON signals.trend_jobs IS
'Registers, alters or deletes the trend jobs after every change (internal.sync_trend_jobs).';

SELECT internal.sync_trend_jobs();
