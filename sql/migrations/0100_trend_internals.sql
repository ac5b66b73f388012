-- The detector's private routines leave the analysts' schema: the bar predicates, the rule
-- D1-D5, the folds and trend_detect / trend_detect_series now live in internal (re-created there
-- from sql/functions after the migrations), with the stages of signals.trend_advance. The old
-- copies in signals are dropped here, callers first, so that none stays behind. What analysts
-- call (trend_starts, trend_events, trend_states, trend_advance, ...) keeps its name.

-- A stretch of closed bars of one series as the detector reads it (arrays, ascending), with
-- where it sits in the series and the detector state it continues from.
CREATE TYPE internal.trend_window AS (
    first_bar_no bigint,
    new_from integer,
    state jsonb,
    ts timestamptz [],
    open numeric [],
    high numeric [],
    low numeric [],
    close numeric []
);
COMMENT ON TYPE internal.trend_window IS
'Closed bars of one series for the detector: ts[1] is bar number first_bar_no of the series; '
'state is the detector state after bar new_from - 1 (NULL: start afresh), so the bars from '
'index new_from on are the ones not analysed before.';

DROP FUNCTION IF EXISTS signals.trend_detect_series(
    text, text, text, timestamptz, timestamptz, boolean
);
DROP FUNCTION IF EXISTS signals.trend_detect(
    text, timestamptz[], numeric[], numeric[], numeric[], numeric[], bigint, integer, jsonb,
    boolean
);
DROP FUNCTION IF EXISTS signals.trend_fold_og_fixed(
    timestamptz[], numeric[], numeric[], numeric[], numeric[], bigint, integer, jsonb,
    integer, integer, boolean
);
DROP FUNCTION IF EXISTS signals.trend_fold_variant_b(
    timestamptz[], numeric[], numeric[], numeric[], numeric[], bigint, integer, jsonb,
    boolean, boolean, boolean
);
DROP FUNCTION IF EXISTS signals.trend_down_rule(
    numeric, numeric, numeric, numeric, numeric, numeric, numeric, numeric, numeric, numeric,
    boolean
);
DROP FUNCTION IF EXISTS signals.trend_higher_bar(
    numeric, numeric, numeric, numeric, numeric, numeric
);
DROP FUNCTION IF EXISTS signals.trend_lower_bar(
    numeric, numeric, numeric, numeric, numeric, numeric
);
DROP FUNCTION IF EXISTS signals.trend_outside_bar(numeric, numeric, numeric, numeric);
DROP FUNCTION IF EXISTS signals.trend_inside_bar(numeric, numeric, numeric, numeric);
