-- The ingester's write path: one batch of ticks in one statement, duplicates skipped.
CREATE OR REPLACE FUNCTION market.insert_ticks(
    p_contract_ids text[],
    p_ts timestamptz[],
    p_prices numeric[],
    p_sizes integer[],
    p_sides smallint[],
    p_seqs smallint[]
) RETURNS integer
LANGUAGE sql
AS $$
    WITH inserted AS (
        INSERT INTO market.ticks (contract_id, ts, price, size, side, seq)
        SELECT *
        FROM unnest(p_contract_ids, p_ts, p_prices, p_sizes, p_sides, p_seqs)
        ON CONFLICT DO NOTHING
        RETURNING 1
    )

    SELECT count(*)::integer FROM inserted;
$$;

COMMENT ON FUNCTION market.insert_ticks(
    text[], timestamptz[], numeric[], integer[], smallint[], smallint[]
) IS
'Insert a batch of ticks given as parallel arrays; trades already stored are skipped. '
'Returns how many rows were new.';
