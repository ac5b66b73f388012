-- The detector profile used wherever none is named: the default of every profile argument of
-- the signals functions (and, in Python, ingest.config.DEFAULT_PROFILE; a test keeps them equal).
CREATE OR REPLACE FUNCTION signals.default_profile() RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
RETURN 'realtime';

COMMENT ON FUNCTION signals.default_profile() IS
'The detector profile (signals.trend_profiles) that signals functions such as trend_starts, '
'trend_starts_known, series_starts, actionable_starts and backtest use when no profile is given: '
'realtime, whose starts a trader can act on when they become known.';
