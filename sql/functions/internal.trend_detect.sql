-- Run the detector of a profile (signals.trend_profiles) over bars given as arrays: the one place
-- that turns a profile name into an algorithm and its parameters.
CREATE OR REPLACE FUNCTION internal.trend_detect(
    p_profile text,
    p_ts timestamptz[],
    p_open numeric[],
    p_high numeric[],
    p_low numeric[],
    p_close numeric[],
    p_base bigint DEFAULT 1,
    p_start integer DEFAULT 2,
    p_state jsonb DEFAULT NULL,
    p_trace boolean DEFAULT FALSE
) RETURNS SETOF signals.trend_event
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    v_profile signals.trend_profiles;
BEGIN
    SELECT * INTO v_profile FROM signals.trend_profiles WHERE profile = p_profile;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown trend profile %', coalesce(quote_literal(p_profile), 'NULL')
        USING
            ERRCODE = 'invalid_parameter_value',
            HINT = 'Profiles are the rows of signals.trend_profiles: '
            || (SELECT string_agg(profile, ', ' ORDER BY profile) FROM signals.trend_profiles)
            || '.';
    END IF;
    IF v_profile.algorithm = 'og_fixed' THEN
        RETURN QUERY SELECT * FROM internal.trend_fold_og_fixed(
            p_ts, p_open, p_high, p_low, p_close, p_base, p_start, p_state,
            v_profile.exhaustion_max_age, v_profile.containment_grace, p_trace
        );
    ELSIF v_profile.algorithm = 'zigzag' THEN
        RETURN QUERY SELECT * FROM internal.trend_fold_zigzag(
            p_ts, p_open, p_high, p_low, p_close, p_base, p_start, p_state, p_trace
        );
    ELSE
        RETURN QUERY SELECT * FROM internal.trend_fold_variant_b(
            p_ts, p_open, p_high, p_low, p_close, p_base, p_start, p_state,
            v_profile.down_at_swing_high, v_profile.up_between_adjacent_downs, p_trace
        );
    END IF;
END;
$$;

COMMENT ON FUNCTION internal.trend_detect(
    text, timestamptz[], numeric[], numeric[], numeric[], numeric[], bigint, integer, jsonb,
    boolean
) IS
'Run the trend-start detector of profile p_profile over bars given as arrays (open time, open, '
'high, low, close; ascending, closed bars only). See internal.trend_fold_og_fixed for p_base, '
'p_start, p_state, p_trace and the rows returned. Analysts normally call signals.trend_starts.';
