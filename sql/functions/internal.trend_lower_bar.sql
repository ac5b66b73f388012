-- Spec 2, lowerBar(j): lower low, lower high and lower close than the previous bar.
CREATE OR REPLACE FUNCTION internal.trend_lower_bar(
    p_high numeric, p_low numeric, p_close numeric,
    p_prev_high numeric, p_prev_low numeric, p_prev_close numeric
) RETURNS boolean
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
RETURN p_low < p_prev_low AND p_high < p_prev_high AND p_close < p_prev_close;

COMMENT ON FUNCTION internal.trend_lower_bar(
    numeric, numeric, numeric, numeric, numeric, numeric
) IS
'lower(j) of docs/trend-starts.md: low, high and close all strictly below the previous bar''s. '
'Arguments: high, low, close of the bar, then high, low, close of the previous bar.';
