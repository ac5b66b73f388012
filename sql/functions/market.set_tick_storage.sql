-- How long raw ticks stay row-wise, and whether they are dropped at some age.
CREATE OR REPLACE FUNCTION market.set_tick_storage(
    p_compress_after interval,
    p_drop_after interval DEFAULT NULL
) RETURNS TABLE (policy text, job_id integer, older_than interval)
LANGUAGE plpgsql
AS $$
DECLARE
    -- The furthest back a refresh policy of a bar level built on market.ticks recomputes: ticks
    -- must outlive it, or that refresh would find them gone and delete its bars.
    v_reach interval;
BEGIN
    IF p_compress_after IS NULL OR p_compress_after < INTERVAL '1 hour' THEN
        RAISE EXCEPTION 'p_compress_after must be at least 1 hour, not %', p_compress_after;
    END IF;
    SELECT max((j.config ->> 'start_offset')::interval) INTO v_reach
    FROM timescaledb_information.continuous_aggregates AS c
    INNER JOIN timescaledb_information.jobs AS j
        ON
            j.hypertable_schema = c.view_schema
            AND j.hypertable_name = c.view_name
    WHERE
        c.hypertable_schema = 'market' AND c.hypertable_name = 'ticks'
        AND j.proc_name = 'policy_refresh_continuous_aggregate';
    IF p_drop_after <= coalesce(v_reach, INTERVAL '0') THEN
        RAISE EXCEPTION 'p_drop_after must be longer than %, how far back bars are refreshed from ticks, not %',
        v_reach, p_drop_after;
    END IF;
    PERFORM remove_compression_policy('market.ticks', if_exists => TRUE);
    -- First run an hour from now: refreshing bars while old chunks are being compressed, or
    -- over freshly compressed chunks, can be far slower than over the row store.
    PERFORM add_compression_policy(
        'market.ticks', compress_after => p_compress_after,
        initial_start => now() + INTERVAL '1 hour'
    );
    PERFORM remove_retention_policy('market.ticks', if_exists => TRUE);
    IF p_drop_after IS NOT NULL THEN
        PERFORM add_retention_policy('market.ticks', drop_after => p_drop_after);
    END IF;
    RETURN QUERY
    SELECT
        j.proc_name::text,
        j.job_id,
        coalesce(j.config ->> 'compress_after', j.config ->> 'drop_after')::interval
    FROM timescaledb_information.jobs AS j
    WHERE j.hypertable_schema = 'market' AND j.hypertable_name = 'ticks'
    ORDER BY j.job_id;
END;
$$;

REVOKE ALL ON FUNCTION market.set_tick_storage(interval, interval) FROM PUBLIC;  -- noqa: CP02

COMMENT ON FUNCTION market.set_tick_storage(interval, interval) IS
'Compress chunks of market.ticks into the columnstore once they are p_compress_after old '
'(default after migrate: 2 days), and drop raw ticks older than p_drop_after (NULL, the default: '
'keep them). The compression policy first runs an hour after it is set. Bars are kept either '
'way. p_drop_after must exceed how far back the 1m bars are '
'refreshed from ticks. Returns the policies now in force. Only the owner may call it.';
