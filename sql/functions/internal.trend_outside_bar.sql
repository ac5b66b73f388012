-- Spec 2, outside(j): a strictly higher high and a strictly lower low than the previous bar.
CREATE OR REPLACE FUNCTION internal.trend_outside_bar(
    p_high numeric, p_low numeric, p_prev_high numeric, p_prev_low numeric
) RETURNS boolean
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
RETURN p_high > p_prev_high AND p_low < p_prev_low;

COMMENT ON FUNCTION internal.trend_outside_bar(numeric, numeric, numeric, numeric) IS
'outside of docs/trend-starts.md: the bar''s high is above and its low below the previous '
'bar''s (both strictly). Arguments: high, low of the bar, then of the previous bar.';
