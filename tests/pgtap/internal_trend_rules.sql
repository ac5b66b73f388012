-- Each trend-start rule on a tiny hand-checked series (bars as [open, high, low, close], bar 1
-- first), run through internal.trend_detect with the event trace. Expected rows: (confirming or
-- current bar, event, bar concerned, rule or detail code).
BEGIN;
SELECT plan(22);

CREATE FUNCTION pg_temp.trace(p_profile text, p_bars numeric[])
RETURNS TABLE (at_bar integer, event text, bar integer, rule text)
LANGUAGE sql
AS $$
    SELECT e.at_bar::integer, e.event, e.bar::integer, e.rule
    FROM internal.trend_detect(
        p_profile,
        (SELECT array_agg(timestamptz '2025-01-06' + (k - 1) * interval '1 day' ORDER BY k)
         FROM generate_subscripts(p_bars, 1) AS k),
        (SELECT array_agg(p_bars[k][1] ORDER BY k) FROM generate_subscripts(p_bars, 1) AS k),
        (SELECT array_agg(p_bars[k][2] ORDER BY k) FROM generate_subscripts(p_bars, 1) AS k),
        (SELECT array_agg(p_bars[k][3] ORDER BY k) FROM generate_subscripts(p_bars, 1) AS k),
        (SELECT array_agg(p_bars[k][4] ORDER BY k) FROM generate_subscripts(p_bars, 1) AS k),
        p_trace => true
    ) AS e
    WHERE e.event <> 'STATE'
$$;

-- U1: a lower bar within 6 bars of the PUS confirms it (EXHAUSTION_REVERSAL).
SELECT results_eq(
    $$SELECT at_bar, event, bar, rule FROM pg_temp.trace('baseline', ARRAY[[2, 5, 2, 2], [8, 9, 7, 9], [7, 8, 3, 4]]) WHERE event IN ('CUS', 'CDS', 'CUS_FORCED', 'CDS_FORCED')$$,
    $$VALUES (3, 'CUS', 1, 'U1')$$,
    'U1: a lower bar within 6 bars of the PUS confirms it (EXHAUSTION_REVERSAL)'
);

-- U2: undercutting the newer PDS low under its high, closing higher (LowUndercutHighRespect).
SELECT results_eq(
    $$SELECT at_bar, event, bar, rule FROM pg_temp.trace('baseline', ARRAY[[7, 7, 3, 7], [4, 9, 3, 6], [8, 10, 7, 7], [4, 8, 3, 8]]) WHERE event IN ('CUS', 'CDS', 'CUS_FORCED', 'CDS_FORCED')$$,
    $$VALUES (4, 'CUS', 1, 'U2')$$,
    'U2: undercutting the newer PDS low under its high, closing higher (LowUndercutHighRespect)'
);

-- U3: an outside bar closing down confirms the PUS (HigherHighLowerLowDownClose).
SELECT results_eq(
    $$SELECT at_bar, event, bar, rule FROM pg_temp.trace('baseline', ARRAY[[8, 10, 7, 8], [7, 8, 7, 8], [7, 10, 3, 3]]) WHERE event IN ('CUS', 'CDS', 'CUS_FORCED', 'CDS_FORCED')$$,
    $$VALUES (3, 'CUS', 1, 'U3')$$,
    'U3: an outside bar closing down confirms the PUS (HigherHighLowerLowDownClose)'
);

-- U4: an up-closing outside bar breaking the PDS low (EngulfingUpPDSLowBreak).
SELECT results_eq(
    $$SELECT at_bar, event, bar, rule FROM pg_temp.trace('baseline', ARRAY[[10, 10, 2, 7], [2, 8, 2, 3], [3, 9, 1, 7]]) WHERE event IN ('CUS', 'CDS', 'CUS_FORCED', 'CDS_FORCED')$$,
    $$VALUES (3, 'CUS', 1, 'U4'), (3, 'CDS', 1, 'D1')$$,
    'U4: an up-closing outside bar breaking the PDS low (EngulfingUpPDSLowBreak)'
);

-- U5: breaking the newer PDS high with the PUS low intact (BreakoutAfterFailedLowV2).
SELECT results_eq(
    $$SELECT at_bar, event, bar, rule FROM pg_temp.trace('baseline', ARRAY[[4, 7, 4, 5], [5, 9, 5, 8], [8, 8, 7, 7], [8, 10, 7, 9]]) WHERE event IN ('CUS', 'CDS', 'CUS_FORCED', 'CDS_FORCED')$$,
    $$VALUES (4, 'CUS', 1, 'U5')$$,
    'U5: breaking the newer PDS high with the PUS low intact (BreakoutAfterFailedLowV2)'
);

-- D1: an outside bar closing higher with its low under the PDS open (LowThenHigherClose_vs_PDSOpen).
SELECT results_eq(
    $$SELECT at_bar, event, bar, rule FROM pg_temp.trace('baseline', ARRAY[[7, 8, 7, 8], [7, 7, 6, 7], [6, 10, 5, 9]]) WHERE event IN ('CUS', 'CDS', 'CUS_FORCED', 'CDS_FORCED')$$,
    $$VALUES (3, 'CDS', 1, 'D1')$$,
    'D1: an outside bar closing higher with its low under the PDS open (LowThenHigherClose_vs_PDSOpen)'
);

-- D2: after a pullback, a higher high and close with the low under the PDS low (RallyLowBreaksPeakLow_A).
SELECT results_eq(
    $$SELECT at_bar, event, bar, rule FROM pg_temp.trace('baseline', ARRAY[[8, 10, 6, 10], [2, 2, 1, 1], [9, 9, 3, 3]]) WHERE event IN ('CUS', 'CDS', 'CUS_FORCED', 'CDS_FORCED')$$,
    $$VALUES (3, 'CDS', 1, 'D2')$$,
    'D2: after a pullback, a higher high and close with the low under the PDS low (RallyLowBreaksPeakLow_A)'
);

-- D3: after a pullback, a higher close taking out the PDS high (NewHighWeakAdvance_B).
SELECT results_eq(
    $$SELECT at_bar, event, bar, rule FROM pg_temp.trace('baseline', ARRAY[[5, 6, 3, 3], [4, 5, 3, 5], [5, 9, 3, 8]]) WHERE event IN ('CUS', 'CDS', 'CUS_FORCED', 'CDS_FORCED')$$,
    $$VALUES (3, 'CDS', 1, 'D3')$$,
    'D3: after a pullback, a higher close taking out the PDS high (NewHighWeakAdvance_B)'
);

-- D4: after the PDS low broke, a higher high closing down (FailedRallyAfterLowBreak_F).
SELECT results_eq(
    $$SELECT at_bar, event, bar, rule FROM pg_temp.trace('baseline', ARRAY[[7, 9, 6, 8], [7, 8, 5, 8], [8, 10, 5, 5]]) WHERE event IN ('CUS', 'CDS', 'CUS_FORCED', 'CDS_FORCED')$$,
    $$VALUES (3, 'CDS', 1, 'D4')$$,
    'D4: after the PDS low broke, a higher high closing down (FailedRallyAfterLowBreak_F)'
);

-- D5: after the PDS low broke, a higher bar (HigherOHLCAfterLowBreak_G).
SELECT results_eq(
    $$SELECT at_bar, event, bar, rule FROM pg_temp.trace('baseline', ARRAY[[5, 10, 5, 10], [2, 3, 2, 3], [9, 10, 6, 7]]) WHERE event IN ('CUS', 'CDS', 'CUS_FORCED', 'CDS_FORCED')$$,
    $$VALUES (3, 'CDS', 1, 'D5')$$,
    'D5: after the PDS low broke, a higher bar (HigherOHLCAfterLowBreak_G)'
);

-- X1: a bar between the PUS and the previous bar undercuts it: PUS dropped.
SELECT results_eq(
    $$SELECT at_bar, event, bar, rule FROM pg_temp.trace('baseline', ARRAY[[8, 10, 8, 8], [9, 9, 8, 9], [7, 10, 7, 9], [3, 6, 3, 4], [2, 3, 2, 3]]) WHERE event = 'PUS_DROPPED'$$,
    $$VALUES (5, 'PUS_DROPPED', 1, 'X1')$$,
    'X1: a bar between the PUS and the previous bar undercuts it: PUS dropped'
);

-- X2: a CDS drops a PUS older than the confirmed down start.
SELECT results_eq(
    $$SELECT at_bar, event, bar, rule FROM pg_temp.trace('baseline', ARRAY[[3, 3, 1, 2], [5, 7, 3, 5], [6, 9, 4, 5], [6, 10, 1, 6]]) WHERE event = 'PUS_DROPPED'$$,
    $$VALUES (4, 'PUS_DROPPED', 1, 'X2')$$,
    'X2: a CDS drops a PUS older than the confirmed down start'
);

-- CONTAINMENT_START: a bar inside the PDS range starts a containment.
SELECT results_eq(
    $$SELECT at_bar, event, bar, rule FROM pg_temp.trace('baseline', ARRAY[[10, 10, 8, 10], [8, 10, 8, 10], [8, 9, 8, 9]]) WHERE event = 'CONTAINMENT_START'$$,
    $$VALUES (3, 'CONTAINMENT_START', 1, NULL)$$,
    'CONTAINMENT_START: a bar inside the PDS range starts a containment'
);

-- CONTAINMENT_END: a bar leaving the reference range ends it.
SELECT results_eq(
    $$SELECT at_bar, event, bar, rule FROM pg_temp.trace('baseline', ARRAY[[7, 10, 4, 8], [8, 9, 8, 9], [8, 9, 8, 9], [5, 6, 3, 3]]) WHERE event = 'CONTAINMENT_END'$$,
    $$VALUES (4, 'CONTAINMENT_END', 1, NULL)$$,
    'CONTAINMENT_END: a bar leaving the reference range ends it'
);

-- CDS_FORCED: two up starts in a row: forced down start at the highest high between.
SELECT results_eq(
    $$SELECT at_bar, event, bar, rule FROM pg_temp.trace('baseline', ARRAY[[2, 6, 1, 5], [9, 10, 8, 9], [6, 8, 1, 8], [4, 8, 3, 5], [9, 10, 1, 3]]) WHERE event = 'CDS_FORCED'$$,
    $$VALUES (5, 'CDS_FORCED', 2, 'FORCED')$$,
    'CDS_FORCED: two up starts in a row: forced down start at the highest high between'
);

-- CUS_FORCED: two down starts in a row: forced up start at the lowest low between.
SELECT results_eq(
    $$SELECT at_bar, event, bar, rule FROM pg_temp.trace('baseline', ARRAY[[7, 7, 6, 7], [1, 2, 1, 2], [8, 9, 3, 4], [6, 7, 1, 5], [9, 10, 7, 8]]) WHERE event = 'CUS_FORCED'$$,
    $$VALUES (5, 'CUS_FORCED', 2, 'FORCED')$$,
    'CUS_FORCED: two down starts in a row: forced up start at the lowest low between'
);

-- variant B: the up start is the lowest low between two down starts, raised with the second.
SELECT results_eq(
    $$SELECT at_bar, event, bar, rule FROM pg_temp.trace('variant_b', ARRAY[[8, 8, 4, 5], [4, 5, 2, 4], [8, 9, 6, 7], [8, 10, 4, 9]]) WHERE event IN ('CDS', 'CUS_FORCED')$$,
    $$VALUES (3, 'CDS', 1, 'D3'), (4, 'CUS_FORCED', 2, 'FORCED'), (4, 'CDS', 3, 'D1')$$,
    'variant B: forced up start at the lowest low between two down starts'
);

-- swing, down_at_swing_high: bar 5 (high 9) is the PDS when bar 6 confirms it, but since the
-- up start at bar 2 the highest high is bar 3 (10); variant B says bar 5, swing says bar 3.
SELECT results_eq(
    $$SELECT at_bar, event, bar, rule FROM pg_temp.trace('swing', ARRAY[[10, 10, 8, 10], [5, 6, 4, 5], [6, 10, 4, 8], [7, 8, 4, 7], [9, 9, 6, 6], [4, 10, 1, 9]]) WHERE event IN ('CDS', 'CUS_FORCED')$$,
    $$VALUES (3, 'CDS', 1, 'D2'), (6, 'CUS_FORCED', 2, 'FORCED'), (6, 'CDS', 3, 'D1')$$,
    'swing: the down start moves to the swing high since the preceding up start'
);

-- swing, up_between_adjacent_downs: down starts on bars 2 and 3 (adjacent); bar 3 is the up
-- start between them, so the starts alternate.
SELECT results_eq(
    $$SELECT at_bar, event, bar, rule FROM pg_temp.trace('swing', ARRAY[[2, 5, 1, 2], [7, 7, 6, 6], [5, 9, 5, 9], [5, 6, 3, 3], [8, 9, 8, 8]]) WHERE event IN ('CDS', 'CUS_FORCED')$$,
    $$VALUES (3, 'CDS', 2, 'D1'), (5, 'CUS_FORCED', 3, 'FORCED'), (5, 'CDS', 3, 'D5')$$,
    'swing: an up start between two down starts on consecutive bars'
);

-- Ties: an equal high does not replace the PDS (offerPDS needs a strictly higher high).
SELECT results_eq(
    $$SELECT at_bar, event, bar, rule FROM pg_temp.trace('baseline', ARRAY[[8, 10, 7, 8], [8, 9, 7, 8], [9, 10, 8, 9], [9, 9, 8, 8]]) WHERE event = 'PDS_SET'$$,
    $$VALUES (2, 'PDS_SET', 1, 'N2')$$,
    'an equal high does not replace the PDS'
);

-- Containment: bar 3 lies inside bar 1 (PDS and PUS), so containment starts there; bar 4, a
-- lower bar, confirms bar 1 by U1 while within the grace. With containment_grace = 0 the
-- confirmations are frozen from cont_start + 1 = bar 4 on, and nothing is confirmed.
SELECT results_eq(
    $$SELECT at_bar, event, bar, rule FROM pg_temp.trace('baseline', ARRAY[[7, 10, 2, 4], [7, 7, 6, 7], [9, 10, 7, 9], [6, 7, 5, 6]]) WHERE event IN ('CONTAINMENT_START', 'CUS', 'CDS')$$,
    $$VALUES (3, 'CONTAINMENT_START', 1, NULL), (4, 'CUS', 1, 'U1')$$,
    'a containment within its grace still confirms'
);
UPDATE signals.trend_profiles SET containment_grace = 0
WHERE profile = 'baseline';
SELECT is_empty(
    $$SELECT * FROM pg_temp.trace('baseline', ARRAY[[7, 10, 2, 4], [7, 7, 6, 7], [9, 10, 7, 9], [6, 7, 5, 6]]) WHERE event IN ('CUS', 'CDS')$$,
    'past containment_grace (a profile parameter) a containment freezes confirmations'
);

SELECT * FROM finish();
ROLLBACK;
