-- The permission model in one place, re-applied by every migrate so new objects are covered.
GRANT USAGE ON SCHEMA market, signals TO mechtrade_ingest, mechtrade_analyst;

GRANT INSERT ON market.ticks TO mechtrade_ingest;
GRANT SELECT, INSERT, UPDATE ON market.history_bars TO mechtrade_ingest;
GRANT SELECT ON market.timeframes TO mechtrade_ingest;

GRANT SELECT ON ALL TABLES IN SCHEMA market TO mechtrade_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA signals TO mechtrade_analyst;
