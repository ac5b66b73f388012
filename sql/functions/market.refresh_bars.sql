-- Re-materialize every bar level, finest first, over a window widened to whole sessions.
-- Policies keep recent bars fresh on their own; call this after loading or repairing older
-- ticks (late data beyond a policy's start_offset is otherwise only seen by real-time queries).
CREATE OR REPLACE PROCEDURE market.refresh_bars(
    p_from timestamptz, p_to timestamptz
)
LANGUAGE plpgsql
AS $$
DECLARE
    v_from timestamptz := time_bucket(
        '1 day', p_from, 'America/Chicago', '2000-01-02 23:00:00+00'
    );
    -- Never past now: a watermark in the future would hide later ticks from real-time reads.
    v_to timestamptz := least(
        time_bucket('1 day', p_to, 'America/Chicago', '2000-01-02 23:00:00+00')
        + INTERVAL '1 day',
        now()
    );
    v_level regclass;
    v_levels regclass [] := ARRAY[
        'market.bars_1m', 'market.bars_5m', 'market.bars_15m',
        'market.bars_1h', 'market.bars_4h', 'market.bars_1d'
    ];
    v_widths interval [] := ARRAY[
        '1 minute', '5 minutes', '15 minutes', '1 hour', '4 hours', '1 day'
    ];
    -- Where the oldest stored ticks begin: a refresh reaching further back would find the ticks a
    -- retention policy dropped missing and delete their bars. Only bars whose whole bucket lies in
    -- the window are refreshed, so a bar straddling this point keeps what it has.
    v_kept_from timestamptz := (
        SELECT min(c.range_start)
        FROM timescaledb_information.chunks AS c
        WHERE c.hypertable_schema = 'market' AND c.hypertable_name = 'ticks'
    );
BEGIN
    v_from := greatest(v_from, v_kept_from);
    FOR i IN 1..array_length(v_levels, 1) LOOP
        v_level := v_levels[i];
        -- TimescaleDB refuses a window narrower than one bucket (here only after clamping).
        IF v_to - v_from >= v_widths[i] THEN
            CALL refresh_continuous_aggregate(v_level, v_from, v_to);
            COMMIT;
        END IF;
    END LOOP;
END;
$$;

COMMENT ON PROCEDURE market.refresh_bars (timestamptz, timestamptz) IS
'Refresh all bar levels (1m up to 1d, in order) for the sessions overlapping [p_from, p_to]. '
'Run it with CALL outside a transaction block. Fails with lock_not_available (55P03) while '
'a refresh policy is refreshing an overlapping window: retry (ingest.bars.refresh_bars does). '
'Starts no earlier than the oldest chunk of market.ticks, so bars whose ticks were dropped by '
'retention (market.set_tick_storage) are kept as they are.';
