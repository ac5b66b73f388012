-- Bounded detector state: each trend job run now prunes the checkpoints and analysed bars that no
-- later run can reach (signals.trend_advance), so internal.trend_checkpoints and
-- internal.trend_inputs stay at about recheck_bars rows per series instead of growing forever.
-- The retention follows from signals.trend_jobs.recheck_bars; there is no separate setting. The
-- first run of each job after this migration deletes the backlog its series accumulated so far.

-- Where a replay from a checkpoint starts, stored so retention need not unpack every state.
ALTER TABLE internal.trend_checkpoints ADD COLUMN replay_from bigint;
UPDATE internal.trend_checkpoints AS cp
SET replay_from = greatest(
    1,
    least(
        cp.bar_no,
        (
            SELECT min(s.value::text::bigint)
            FROM jsonb_each(cp.state) AS s
            WHERE jsonb_typeof(s.value) = 'number'
        )
    ) - 1
);
ALTER TABLE internal.trend_checkpoints
ALTER COLUMN replay_from SET NOT NULL,
ADD CONSTRAINT trend_checkpoints_replay_from_range CHECK (replay_from BETWEEN 1 AND bar_no);

COMMENT ON TABLE internal.trend_checkpoints IS
'Detector state after the last bar of a job run: where a recomputation restarts from when an '
'analysed bar changes. Bounded: each run deletes every checkpoint older than the newest one '
'before the oldest bar its next recheck compares (see signals.trend_jobs.recheck_bars).';
COMMENT ON COLUMN internal.trend_checkpoints.replay_from IS
'Bar number a replay from this checkpoint reads from: the bar before the oldest bar its state '
'refers to (the neighbour test of offerPDS), or before the checkpoint''s own bar. The inputs '
'from the earliest replay_from of the checkpoints kept are kept.';

COMMENT ON TABLE internal.trend_inputs IS
'The closed bars each detector job analysed, as it saw them, numbered: compared with '
'market.bars to notice bars that changed after analysis. Bounded: each run keeps only the bars '
'its next recheck compares (the last recheck_bars bars and every bar the state refers to) and '
'those a replay from a kept checkpoint reads; older rows are deleted in the same transaction. '
'A bar that changes after it left this range is not rechecked.';

COMMENT ON COLUMN signals.trend_jobs.recheck_bars IS
'Each run compares this many of the last analysed bars (and every older bar the detector state '
'still refers to) with market.bars; a bar that changed (late tick, gap repair) makes the job '
'recompute from it. It also bounds the detector state: older analysed bars and checkpoints are '
'pruned, so a bar that changes after it fell out of that range is not rechecked and its '
'change is ignored until an operator runs signals.trend_advance(..., p_changed_from => ts), '
'which recomputes from the newest checkpoint kept before ts or, if there is none, the whole '
'series. Raising it takes effect as new bars arrive (pruned bars are not compared again).';
