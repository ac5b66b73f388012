-- Where the stored tape of a contract ends: lets the write-only ingest role find the gap a
-- restart left without being able to read ticks.
CREATE OR REPLACE FUNCTION market.latest_tick_time(
    p_contract_id text
) RETURNS timestamptz
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT max(t.ts) FROM market.ticks AS t WHERE t.contract_id = p_contract_id;
$$;

COMMENT ON FUNCTION market.latest_tick_time(text) IS
'Time of the latest stored trade of a contract (NULL if none).';
