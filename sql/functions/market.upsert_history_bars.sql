-- The backfill's write path: one page of gateway history bars in one statement. A bar stored
-- with the same values is left alone (fetched_at too), so a re-run writes nothing; a bar
-- stored before it closed is replaced by the complete one.
CREATE OR REPLACE FUNCTION market.upsert_history_bars(
    p_contract_id text,
    p_timeframe text,
    p_buckets timestamptz[],
    p_opens numeric[],
    p_highs numeric[],
    p_lows numeric[],
    p_closes numeric[],
    p_volumes bigint[]
) RETURNS integer
LANGUAGE sql
AS $$
    WITH written AS (
        INSERT INTO market.history_bars AS h (
            contract_id, timeframe, bucket, open, high, low, close, volume
        )
        SELECT p_contract_id, p_timeframe, b.bucket, b.open, b.high, b.low, b.close, b.volume
        FROM unnest(p_buckets, p_opens, p_highs, p_lows, p_closes, p_volumes)
            AS b (bucket, open, high, low, close, volume)
        ON CONFLICT (contract_id, timeframe, bucket) DO UPDATE
            SET
                open = excluded.open,
                high = excluded.high,
                low = excluded.low,
                close = excluded.close,
                volume = excluded.volume,
                fetched_at = now()
            WHERE
                (h.open, h.high, h.low, h.close, h.volume)
                IS DISTINCT FROM
                (excluded.open, excluded.high, excluded.low, excluded.close, excluded.volume)
                OR h.fetched_at < market.session_bar_end(h.timeframe, h.bucket)
        RETURNING 1
    )

    SELECT count(*)::integer FROM written;
$$;

COMMENT ON FUNCTION market.upsert_history_bars(
    text, text, timestamptz[], numeric[], numeric[], numeric[], numeric[], bigint[]
) IS
'Store bars of one contract and timeframe from the gateway history, given as parallel arrays '
'(bucket as market.history_bars labels it). Returns how many rows were inserted or changed; '
'bars already stored with the same values are not touched.';
