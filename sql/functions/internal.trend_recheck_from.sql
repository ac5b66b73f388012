-- The first bar a run after bar p_bar_no compares with market.bars: p_recheck_bars back, or the
-- bar before the oldest one the state refers to, whichever is earlier.
CREATE OR REPLACE FUNCTION internal.trend_recheck_from(
    p_bar_no bigint, p_state jsonb, p_recheck_bars integer
) RETURNS bigint
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
RETURN greatest(
    1, least(p_bar_no - p_recheck_bars + 1, internal.trend_state_oldest_bar(p_state) - 1)
);

COMMENT ON FUNCTION internal.trend_recheck_from(bigint, jsonb, integer) IS
'Bar number from which a trend job run whose state p_state is after bar p_bar_no compares the '
'analysed bars with market.bars: the last p_recheck_bars bars and every bar the state refers '
'to (less one, for the neighbour test); at least 1. Retention keeps what this reaches.';
