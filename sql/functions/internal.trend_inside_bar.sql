-- Spec 2, inside(j, r): bar j within the range of bar r, edges included.
CREATE OR REPLACE FUNCTION internal.trend_inside_bar(
    p_high numeric, p_low numeric, p_ref_high numeric, p_ref_low numeric
) RETURNS boolean
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
RETURN p_high <= p_ref_high AND p_low >= p_ref_low;

COMMENT ON FUNCTION internal.trend_inside_bar(numeric, numeric, numeric, numeric) IS
'inside of docs/trend-starts.md: the bar''s high is at most and its low at least those of the '
'reference bar (edges included). Arguments: high, low of the bar, then of the reference bar.';
