-- Raw ticks in TimescaleDB's columnstore (compression) once a chunk is old enough.
--
-- Segmented by contract, ordered by time and then the rest of the tick's unique key, so one
-- contract's day reads as a few compressed batches, and a late tick that duplicates a stored one
-- is found inside its segment: inserts with ON CONFLICT DO NOTHING still deduplicate after
-- compression. The key is read from the table rather than written out here, so a migration that
-- replaced the key of market.ticks before this one is honoured as it stands.
-- Age and an optional retention of raw ticks: market.set_tick_storage (default 2 days, none).
DO $$
DECLARE
    v_key text[];
BEGIN
    SELECT array_agg(a.attname::text ORDER BY k.ord) INTO v_key
    FROM pg_index AS i
    CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k (attnum, ord)
    INNER JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
    WHERE i.indexrelid = (
        SELECT u.indexrelid
        FROM pg_index AS u
        WHERE u.indrelid = 'market.ticks'::regclass AND u.indisunique
        ORDER BY u.indisprimary DESC, u.indnatts DESC
        LIMIT 1
    );
    IF v_key IS NULL OR NOT v_key @> ARRAY['contract_id', 'ts'] THEN
        RAISE EXCEPTION 'market.ticks: expected a unique key on (contract_id, ts, ...), found %', v_key;
    END IF;
    EXECUTE format(
        'ALTER TABLE market.ticks SET (timescaledb.enable_columnstore, '
        'timescaledb.segmentby = %L, timescaledb.orderby = %L)',
        'contract_id',
        array_to_string(
            ARRAY['ts'] || array_remove(array_remove(v_key, 'contract_id'), 'ts'), ', '
        )
    );
END;
$$;

-- First run an hour from now, not at once: compressing a backlog of old chunks right after a
-- migration competes with the first loads and refreshes (see market.set_tick_storage).
SELECT add_compression_policy(
    'market.ticks',
    compress_after => interval '2 days',
    initial_start => now() + interval '1 hour'
);
