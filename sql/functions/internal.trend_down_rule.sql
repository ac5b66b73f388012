-- Spec 5, rules D1-D5: which one confirms the pending down start D at bar i (NULL: none), given
-- that no bar since D made a higher high (noHigherHigh; callers test it) and whether one pulled
-- back.
CREATE OR REPLACE FUNCTION internal.trend_down_rule(
    p_open numeric, p_high numeric, p_low numeric, p_close numeric,
    p_prev_high numeric, p_prev_low numeric, p_prev_close numeric,
    p_d_open numeric, p_d_high numeric, p_d_low numeric,
    p_pullback boolean
) RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
RETURN CASE
    WHEN
        p_low < p_prev_low AND p_high > p_prev_high AND p_close > p_prev_close
        AND p_low < p_d_open
        THEN 'D1'
    WHEN
        p_pullback AND p_high > p_prev_high AND p_close > p_prev_close AND p_low < p_d_low
        THEN 'D2'
    WHEN
        p_pullback AND p_close > p_prev_close AND p_low >= p_prev_low AND p_high > p_d_high
        THEN 'D3'
    WHEN
        p_prev_low < p_d_low AND p_high > p_prev_high AND p_close < p_prev_close
        AND p_close < p_open
        THEN 'D4'
    WHEN
        p_prev_low < p_d_low
        AND internal.trend_higher_bar(p_high, p_low, p_close, p_prev_high, p_prev_low, p_prev_close)
        THEN 'D5'
END;

COMMENT ON FUNCTION internal.trend_down_rule(
    numeric, numeric, numeric, numeric, numeric, numeric, numeric,
    numeric, numeric, numeric, boolean
) IS
'Rules D1-D5 of docs/trend-starts.md (section 5), the first that holds: bar i (open, high, '
'low, close), the '
'bar before it (high, low, close), the pending down-start bar D (open, high, low) and whether a '
'bar since D pulled back to D''s low. The caller has checked noHigherHigh since D.';
