-- Contracts by root: the ingester keeps them (and their first/last tick without reading ticks);
-- analysts read them and the continuous series; one active contract per root.
BEGIN;
SELECT plan(8);

SELECT table_privs_are(
    'market', 'contracts', 'mechtrade_ingest', ARRAY['SELECT', 'INSERT', 'UPDATE'],
    'ingest keeps the contracts'
);
SELECT table_privs_are(
    'market', 'contract_rolls', 'mechtrade_analyst', ARRAY['SELECT'],
    'analysts only read the rolls'
);

INSERT INTO market.ticks (contract_id, ts, price, size, side) VALUES
('CON.F.US.T.M25', '2025-06-02 14:00Z', 6000, 1, 0),
('CON.F.US.T.M25', '2025-06-02 14:03Z', 6001, 1, 1);

SET ROLE mechtrade_ingest;
SELECT lives_ok(
    $$INSERT INTO market.contracts (contract_id, root, tick_size, tick_value, active)
      VALUES ('CON.F.US.T.M25', 'T', 0.25, 1.25, true)$$,
    'ingest records a contract'
);
SELECT lives_ok(
    $$SELECT internal.note_contract_ticks(ARRAY['CON.F.US.T.M25'])$$,
    'ingest notes first and last ticks'
);
SELECT throws_ok(
    $$INSERT INTO market.contracts (contract_id, root, tick_size, tick_value, active)
      VALUES ('CON.F.US.T.U25', 'T', 0.25, 1.25, true)$$,
    '23505', NULL, 'one active contract per root'
);
RESET ROLE;

SET ROLE mechtrade_analyst;
SELECT results_eq(
    $$SELECT first_tick, last_tick FROM market.contracts$$,
    $$VALUES ('2025-06-02 14:00Z'::timestamptz, '2025-06-02 14:03Z'::timestamptz)$$,
    'first and last tick come from the stored ticks'
);
SELECT results_eq(
    $$SELECT contract_id, close FROM market.continuous_bars
      WHERE root = 'T' AND timeframe = '5m'$$,
    $$VALUES ('CON.F.US.T.M25', 6001::numeric)$$,
    'analysts read the root''s continuous series'
);
SELECT results_eq(
    $$SELECT adjustment FROM market.continuous_bars_adjusted WHERE root = 'T' AND timeframe = '5m'$$,
    $$VALUES (0::numeric)$$,
    'no roll yet: nothing to adjust'
);
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
