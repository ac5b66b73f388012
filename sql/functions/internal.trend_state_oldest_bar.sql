-- The oldest bar a detector state refers to: the smallest bar number among its values (pending
-- starts, last start, ...), NULL when it refers to none.
CREATE OR REPLACE FUNCTION internal.trend_state_oldest_bar(p_state jsonb)
RETURNS bigint
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT min(s.value::text::bigint)
    FROM jsonb_each(p_state) AS s
    WHERE jsonb_typeof(s.value) = 'number'
$$;

COMMENT ON FUNCTION internal.trend_state_oldest_bar(jsonb) IS
'The smallest bar number a detector state (a STATE row of internal.trend_detect) refers to, or '
'NULL when it refers to none.';
