-- Who may do what: the ingest role writes ticks and history bars only; analysts only read.
BEGIN;
SELECT plan(19);

SELECT table_privs_are(
    'market', 'ticks', 'mechtrade_ingest', ARRAY['INSERT'],
    'ingest may only insert ticks'
);
SELECT table_privs_are(
    'market', 'history_bars', 'mechtrade_ingest', ARRAY['SELECT', 'INSERT', 'UPDATE'],
    'ingest may upsert history bars'
);
SELECT table_privs_are(
    'market', 'ticks', 'mechtrade_analyst', ARRAY['SELECT'],
    'analysts may only read ticks'
);

SET ROLE mechtrade_ingest;
SELECT lives_ok(
    $$INSERT INTO market.ticks (contract_id, ts, price, size, side)
      VALUES ('T', '2025-06-02 14:00Z', 6000, 1, 0) ON CONFLICT DO NOTHING$$,
    'ingest inserts a tick (and re-inserts it as a no-op)'
);
SELECT lives_ok(
    $$INSERT INTO market.history_bars AS h
          (contract_id, timeframe, bucket, open, high, low, close, volume)
      VALUES ('T', '5m', '2025-06-02 14:00Z', 1, 2, 1, 2, 10)
      ON CONFLICT (contract_id, timeframe, bucket)
      DO UPDATE SET volume = excluded.volume, fetched_at = now()$$,
    'ingest upserts a history bar'
);
SELECT throws_ok(
    $$DELETE FROM market.ticks$$, '42501', NULL, 'ingest cannot delete ticks'
);
SELECT is(
    market.latest_tick_time('T'), '2025-06-02 14:00Z'::timestamptz,
    'ingest finds where the stored tape ends without reading ticks'
);
SELECT lives_ok(
    $$INSERT INTO market.feed_gaps (contract_id, gap_start, gap_end, reason)
      VALUES ('T', '2025-06-02 14:00Z', '2025-06-02 14:05Z', 'test')$$,
    'ingest records a feed gap'
);
SELECT is(
    market.latest_tick_before('T', now() + interval '1 second'), '2025-06-02 14:00Z'::timestamptz,
    'ingest finds where the tape stored before its start ends'
);
SELECT lives_ok(
    $$INSERT INTO market.feed_gaps (contract_id, gap_start, gap_end, reason, gap_key)
      VALUES ('T', '2025-06-02 15:00Z', NULL, 'closed', gen_random_uuid())$$,
    'ingest opens a feed gap the moment the feed drops'
);
SELECT lives_ok(
    $$UPDATE market.feed_gaps SET gap_end = '2025-06-02 15:01Z'
      WHERE contract_id = 'T' AND gap_end IS NULL$$,
    'ingest closes it at the first trade after'
);
SELECT throws_ok(
    $$UPDATE market.ticks SET size = 2$$, '42501', NULL, 'ingest cannot rewrite ticks'
);
SELECT throws_ok(
    $$SELECT count(*) FROM market.bars$$, '42501', NULL, 'ingest does not read bars'
);
RESET ROLE;

SET ROLE mechtrade_analyst;
SELECT lives_ok(
    $$SELECT count(*) FROM market.bars$$, 'analysts read market.bars'
);
SELECT lives_ok(
    $$SELECT count(*) FROM market.bars_4h$$, 'analysts read the continuous aggregates'
);
SELECT is(
    (SELECT count(*) FROM market.ticks), 1::bigint, 'analysts read ticks'
);
SELECT throws_ok(
    $$INSERT INTO market.ticks (contract_id, ts, price, size, side)
      VALUES ('T', now(), 1, 1, 0)$$,
    '42501', NULL, 'analysts cannot insert ticks'
);
SELECT throws_ok(
    $$UPDATE market.history_bars SET volume = 0$$,
    '42501', NULL, 'analysts cannot change history bars'
);
SELECT throws_ok(
    $$SELECT count(*) FROM internal.schema_migrations$$,
    '42501', NULL, 'analysts do not see internals'
);
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
