-- Where the stored tape of a contract ended before a process started: the start of its restart
-- gap. Rows dated later than they were written (garbage from before input limits) are ignored.
CREATE OR REPLACE FUNCTION market.latest_tick_before(
    p_contract_id text,
    p_written_before timestamptz
) RETURNS timestamptz
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.ts
    FROM market.ticks AS t
    WHERE
        t.contract_id = p_contract_id
        AND t.received_at < p_written_before
        AND t.ts <= t.received_at + INTERVAL '1 hour'
    ORDER BY t.ts DESC
    LIMIT 1;
$$;

COMMENT ON FUNCTION market.latest_tick_before(text, timestamptz) IS
'Time of the latest trade of a contract written before a given time (NULL if none); trades dated '
'more than an hour after they were written are not believed.';
