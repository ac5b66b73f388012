-- Where a replay from the state after bar p_bar_no must start reading: the bar before the oldest
-- bar the state refers to (the neighbour test of offerPDS reads it), or before p_bar_no itself.
CREATE OR REPLACE FUNCTION internal.trend_replay_from(p_bar_no bigint, p_state jsonb)
RETURNS bigint
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
RETURN greatest(1, least(p_bar_no, internal.trend_state_oldest_bar(p_state)) - 1);

COMMENT ON FUNCTION internal.trend_replay_from(bigint, jsonb) IS
'Bar number a replay from the detector state p_state (after bar p_bar_no) reads from: the bar '
'before the oldest bar the state refers to, or before p_bar_no; at least 1.';
