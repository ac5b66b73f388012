-- The permission model in one place, re-applied by every migrate so new objects are covered.
GRANT USAGE ON SCHEMA market, signals TO mechtrade_ingest, mechtrade_analyst;

GRANT INSERT ON market.ticks TO mechtrade_ingest;
GRANT SELECT, INSERT, UPDATE ON market.history_bars TO mechtrade_ingest;
GRANT SELECT ON market.timeframes TO mechtrade_ingest;
GRANT SELECT, INSERT, UPDATE ON market.feed_gaps TO mechtrade_ingest;
REVOKE ALL ON FUNCTION market.latest_tick_time(text) FROM PUBLIC;  -- noqa: CP02
GRANT EXECUTE ON FUNCTION market.latest_tick_time(text) TO mechtrade_ingest, mechtrade_analyst;
REVOKE ALL ON FUNCTION market.latest_tick_before(text, timestamptz) FROM PUBLIC;  -- noqa: CP02
GRANT EXECUTE ON FUNCTION market.latest_tick_before(
    text, timestamptz
) TO mechtrade_ingest, mechtrade_analyst;
GRANT EXECUTE ON FUNCTION market.upsert_history_bars(
    text, text, timestamptz[], numeric[], numeric[], numeric[], numeric[], bigint[]
) TO mechtrade_ingest;
GRANT USAGE ON SCHEMA internal TO mechtrade_ingest;
-- Analysts' functions call a few private helpers; only those are executable.
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA internal FROM PUBLIC;  -- noqa: CP02
GRANT USAGE ON SCHEMA internal TO mechtrade_analyst;
-- The detector behind signals.trend_starts, trend_events and trend_states (not the stages of
-- signals.trend_advance, which write detector state).
GRANT EXECUTE ON FUNCTION
internal.trend_lower_bar(numeric, numeric, numeric, numeric, numeric, numeric),
internal.trend_higher_bar(numeric, numeric, numeric, numeric, numeric, numeric),
internal.trend_outside_bar(numeric, numeric, numeric, numeric),
internal.trend_inside_bar(numeric, numeric, numeric, numeric),
internal.trend_down_rule(
    numeric, numeric, numeric, numeric, numeric, numeric, numeric, numeric, numeric, numeric,
    boolean
),
internal.trend_fold_og_fixed(
    timestamptz[], numeric[], numeric[], numeric[], numeric[], bigint, integer, jsonb,
    integer, integer, boolean
),
internal.trend_fold_variant_b(
    timestamptz[], numeric[], numeric[], numeric[], numeric[], bigint, integer, jsonb,
    boolean, boolean, boolean
),
internal.trend_fold_zigzag(
    timestamptz[], numeric[], numeric[], numeric[], numeric[], bigint, integer, jsonb, boolean
),
internal.trend_detect(
    text, timestamptz[], numeric[], numeric[], numeric[], numeric[], bigint, integer, jsonb,
    boolean
),
internal.trend_series_bars(text, text, timestamptz, timestamptz),
internal.trend_detect_series(text, text, text, timestamptz, timestamptz, boolean),
internal.trend_first_starts(signals.trend_event[])
TO mechtrade_analyst, mechtrade_ingest;
GRANT SELECT, INSERT, UPDATE ON internal.backfill_runs TO mechtrade_ingest;
-- Contracts by root and their rolls: the ingester keeps them; first/last tick through a definer.
GRANT SELECT, INSERT, UPDATE ON market.contracts, market.contract_rolls TO mechtrade_ingest;
REVOKE ALL ON FUNCTION internal.note_contract_ticks(text[]) FROM PUBLIC;  -- noqa: CP02
GRANT EXECUTE ON FUNCTION internal.note_contract_ticks(text[]) TO mechtrade_ingest;

GRANT SELECT ON ALL TABLES IN SCHEMA market TO mechtrade_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA signals TO mechtrade_analyst;

-- Trend detection. Views of signals are (re)created after this file in order.txt, so default
-- privileges cover them on a fresh database; detector state stays in internal, unreadable.
ALTER DEFAULT PRIVILEGES IN SCHEMA signals GRANT SELECT ON TABLES TO mechtrade_analyst;
GRANT SELECT ON
signals.detected_signals,
signals.trend_profiles,
signals.trend_rules,
signals.trend_jobs
TO mechtrade_analyst;

-- Coordinator: decisions are for analysts to read; the coordinator role only runs batches.
GRANT USAGE ON SCHEMA signals TO mechtrade_coordinator;
GRANT SELECT ON signals.decisions TO mechtrade_analyst;
GRANT EXECUTE ON FUNCTION signals.coordinate(text, jsonb, integer) TO mechtrade_coordinator;

-- The chart page (mechtrade serve): reads what analysts read, adds and removes labels only.
GRANT mechtrade_analyst TO mechtrade_web;
GRANT SELECT ON signals.labels TO mechtrade_analyst;
GRANT INSERT (contract_id, root, timeframe, bar, direction, author)
ON signals.labels TO mechtrade_web;
GRANT UPDATE (removed_at, removed_by) ON signals.labels TO mechtrade_web;
