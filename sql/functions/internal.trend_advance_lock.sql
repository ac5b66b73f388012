-- The first stage of signals.trend_advance: the series' configuration, and the lock that makes
-- runs of one series take turns (a second run waits, then sees the first one's result).
CREATE OR REPLACE FUNCTION internal.trend_advance_lock(
    p_contract_id text, p_timeframe text, p_profile text
) RETURNS signals.trend_jobs
LANGUAGE plpgsql
VOLATILE
AS $$
DECLARE
    v_job signals.trend_jobs;
BEGIN
    SELECT * INTO v_job
    FROM signals.trend_jobs AS j
    WHERE
        j.contract_id = p_contract_id
        AND j.timeframe = p_timeframe
        AND j.profile = p_profile;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no trend job is configured for % % %',
            p_contract_id, p_timeframe, p_profile
        USING
            ERRCODE = 'invalid_parameter_value',
            HINT = 'Add a row to signals.trend_jobs (contract_id, timeframe, profile).';
    END IF;
    PERFORM pg_advisory_xact_lock(
        hashtextextended('signals.trend_advance/' || p_contract_id || '/' || p_timeframe
            || '/' || p_profile, 0)
    );
    RETURN v_job;
END;
$$;

COMMENT ON FUNCTION internal.trend_advance_lock(text, text, text) IS
'The signals.trend_jobs row of a series, after taking its transaction-level advisory lock (one '
'detector run per series at a time); raises invalid_parameter_value when no job is configured.';
