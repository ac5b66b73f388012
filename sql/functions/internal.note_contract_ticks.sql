-- Keeps market.contracts.first_tick / last_tick current for the ingester, which cannot read ticks.
CREATE OR REPLACE FUNCTION internal.note_contract_ticks(
    p_contract_ids text[]
) RETURNS void
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE market.contracts AS c
    SET
        first_tick = coalesce(
            c.first_tick,
            (SELECT min(t.ts) FROM market.ticks AS t WHERE t.contract_id = c.contract_id)
        ),
        last_tick = (SELECT max(t.ts) FROM market.ticks AS t WHERE t.contract_id = c.contract_id),
        updated_at = now()
    WHERE c.contract_id = any(p_contract_ids);
$$;

COMMENT ON FUNCTION internal.note_contract_ticks(text[]) IS
'Sets first_tick and last_tick of the given contracts in market.contracts from the stored ticks.';
