-- The stages of signals.trend_advance one by one, on a small 4h series of contract T analysed by
-- the realtime profile: up start at bar 1 (ZU at 2), down start at bar 3 (ZD at 4), up start at
-- bar 5 (ZU at 6).
BEGIN;
SELECT plan(27);

INSERT INTO market.history_bars (contract_id, timeframe, bucket, open, high, low, close, volume)
VALUES
('T', '4h', '2025-03-17 02:00Z', 10, 12, 9, 11, 10),
('T', '4h', '2025-03-17 06:00Z', 11, 13, 10, 12, 10),
('T', '4h', '2025-03-17 10:00Z', 12, 14, 11, 13, 10),
('T', '4h', '2025-03-17 14:00Z', 13, 13.5, 10, 11, 10),
('T', '4h', '2025-03-17 18:00Z', 11, 12, 8, 9, 10),
('T', '4h', '2025-03-17 22:00Z', 9, 12.5, 8.5, 12, 10),
('T', '4h', '2025-03-18 02:00Z', 12, 14, 11, 13, 10);
INSERT INTO signals.trend_jobs (contract_id, timeframe, profile, scheduled, recheck_bars)
VALUES ('T', '4h', 'realtime', FALSE, 2);

-- The oldest bar a state refers to, and the bars a replay and a recheck reach back to.
SELECT is(
    internal.trend_state_oldest_bar('{"dir": "up", "pus": 5, "pds": 3}'), 3::bigint,
    'oldest bar: the smallest bar number in the state'
);
SELECT is(
    internal.trend_state_oldest_bar('{"dir": "up"}'), NULL::bigint,
    'oldest bar: none when the state refers to no bar'
);
SELECT is(
    internal.trend_replay_from(10, '{"pus": 5}'), 4::bigint,
    'replay from the bar before the oldest bar the state refers to'
);
SELECT is(
    internal.trend_replay_from(10, '{}'), 9::bigint,
    'replay from the bar before the state''s own bar when it refers to none'
);
SELECT is(internal.trend_replay_from(1, NULL), 1::bigint, 'replay from bar 1 at the earliest');
SELECT is(
    internal.trend_recheck_from(100, '{"pus": 99}', 3), 98::bigint,
    'recheck the last recheck_bars bars'
);
SELECT is(
    internal.trend_recheck_from(100, '{"pus": 95}', 3), 94::bigint,
    'recheck from before the oldest bar the state refers to when that is earlier'
);

-- Dedupe: the first start per bar and direction, in the order raised, starts only.
SELECT is(
    internal.trend_first_starts(ARRAY[
        (2, '2025-01-02', 'CUS', 1, '2025-01-01', 9, 'ZU', NULL),
        (3, '2025-01-03', 'CDS', 1, '2025-01-01', 12, 'D1', NULL),
        (4, '2025-01-04', 'CUS_FORCED', 1, '2025-01-01', 9, 'FORCED', NULL),
        (4, '2025-01-04', 'STATE', NULL, NULL, NULL, NULL, '{"pus": 3}')
    ]::signals.trend_event[]),
    ARRAY[
        (2, '2025-01-02', 'CUS', 1, '2025-01-01', 9, 'ZU', NULL),
        (3, '2025-01-03', 'CDS', 1, '2025-01-01', 12, 'D1', NULL)
    ]::signals.trend_event[],
    'dedupe: the first start per bar and direction, without STATE rows'
);

-- Lock: an unconfigured series is refused.
SELECT throws_ok(
    $$SELECT internal.trend_advance_lock('T', '4h', 'baseline')$$, '22023', NULL,
    'lock: a series without a trend job is refused'
);
SELECT is(
    (internal.trend_advance_lock('T', '4h', 'realtime')).recheck_bars, 2,
    'lock: returns the series'' job'
);

-- Replay from scratch: the whole series, read as internal.trend_detect_series reads it.
SELECT is(
    (
        SELECT row(w.first_bar_no, w.new_from, cardinality(w.ts))::text
        FROM internal.trend_replay_window('T', '4h', 'realtime', NULL, NULL, NULL) AS w
    ),
    '(1,1,7)', 'replay window from scratch: every closed bar, all new'
);
SELECT results_eq(
    $$SELECT e.event, e.bar FROM unnest(internal.trend_replay(
          'realtime', internal.trend_replay_window('T', '4h', 'realtime', NULL, NULL, NULL)
      )) AS e$$,
    $$SELECT e.event, e.bar FROM internal.trend_detect_series('realtime', 'T', '4h', NULL, NULL)
      AS e$$,
    'replay from scratch raises what internal.trend_detect_series does'
);

-- A whole run, then each stage against the state it left.
SELECT is(
    signals.trend_advance('T', '4h', 'realtime') - 'through' - 'recomputed_from',
    '{"type": "trend_signals", "contract_id": "T", "timeframe": "4h", "profile": "realtime",
      "bars": 7, "new": 3, "superseded": 0}'::jsonb,
    'a first run analyses 7 bars and records 3 starts'
);
SELECT is(
    (
        SELECT row(w.bar_no, w.runs)::text FROM internal.trend_watermarks AS w
        WHERE w.contract_id = 'T'
    ),
    '(7,1)', 'watermark: after bar 7, one run'
);
SELECT is(
    (
        SELECT row(w.first_bar_no, w.new_from, cardinality(w.ts))::text
        FROM internal.trend_watermarks AS h,
            internal.trend_replay_window('T', '4h', 'realtime', h.bar_no, h.bar_ts, h.state) AS w
        WHERE h.contract_id = 'T'
    ),
    (
        SELECT row(r, 8 - r + 1, 8 - r)::text
        FROM internal.trend_watermarks AS h,
            internal.trend_replay_from(h.bar_no, h.state) AS r
        WHERE h.contract_id = 'T'
    ),
    'replay window after the watermark: from trend_replay_from, no new bar'
);
SELECT is(
    (SELECT internal.trend_recheck(h, 2, NULL) FROM internal.trend_watermarks AS h),
    NULL::timestamptz, 'recheck: nothing changed'
);
SELECT is(
    (SELECT internal.trend_recheck(h, 2, '2030-01-01') FROM internal.trend_watermarks AS h),
    NULL::timestamptz, 'recheck: p_changed_from after the watermark is ignored'
);
UPDATE market.history_bars SET low = 10.5
WHERE contract_id = 'T' AND bucket = '2025-03-18 02:00Z';
SELECT is(
    (SELECT internal.trend_recheck(h, 2, NULL) FROM internal.trend_watermarks AS h),
    '2025-03-18 02:00Z'::timestamptz, 'recheck: the changed bar 7'
);
SELECT is(
    (SELECT internal.trend_recheck(h, 2, '2025-03-17 02:00Z') FROM internal.trend_watermarks AS h),
    '2025-03-17 02:00Z'::timestamptz, 'recheck: p_changed_from when earlier'
);

-- Retention: the inputs kept reach back as far as the next recheck and every kept checkpoint's
-- replay; the first run kept one checkpoint.
SELECT is(
    (
        SELECT min(ti.bar_no) FROM internal.trend_inputs AS ti
        WHERE ti.contract_id = 'T'
    ),
    (SELECT least(
        internal.trend_recheck_from(h.bar_no, h.state, 2),
        (SELECT min(cp.replay_from) FROM internal.trend_checkpoints AS cp)
    ) FROM internal.trend_watermarks AS h),
    'retention: inputs from the earliest bar a recheck or a replay reads'
);
SELECT is(
    (
        SELECT count(*) FROM internal.trend_checkpoints
        WHERE contract_id = 'T'
    ), 1::bigint,
    'checkpoint: one after the first run'
);

-- Rewind before every checkpoint: start afresh, no state left.
SELECT is(
    (SELECT cp.bar_ts FROM internal.trend_rewind('T', '4h', 'realtime', '2025-03-17 02:00Z') AS cp),
    NULL::timestamptz, 'rewind: no checkpoint before the first bar'
);
SELECT is(
    (
        SELECT count(*) FROM internal.trend_inputs
        WHERE contract_id = 'T'
    )
    + (
        SELECT count(*) FROM internal.trend_checkpoints
        WHERE contract_id = 'T'
    ),
    0::bigint, 'rewind: the checkpoints and inputs after it are gone'
);

-- Supersede: after a replay that raised nothing, every current signal confirmed since goes.
SELECT is(
    cardinality(internal.trend_supersede('T', '4h', 'realtime', '2025-03-17 06:00Z', '{}')), 2,
    'supersede: the two signals confirmed after bar 2 are withdrawn'
);
SELECT is(
    (
        SELECT count(*) FROM signals.detected_signals
        WHERE contract_id = 'T' AND superseded_at IS NULL
    ),
    1::bigint, 'supersede: the signal confirmed earlier stays current'
);

-- Watermark: a final row without a bar (every bar gone) forgets it.
SELECT lives_ok(
    $$SELECT internal.trend_set_watermark('T', '4h', 'realtime', NULL::signals.trend_event)$$,
    'watermark: forgotten when no bar is left'
);

-- Notify: the summary returned is the one sent.
SELECT is(
    internal.trend_notify('T', '4h', 'realtime', NULL, 0, 0, 0, NULL) ->> 'type', 'trend_signals',
    'notify: returns the summary it sends'
);

SELECT * FROM finish();
ROLLBACK;
