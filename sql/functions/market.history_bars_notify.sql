-- Imported history bars change market.bars too: wake the live chart.
CREATE OR REPLACE TRIGGER history_bars_notify
AFTER INSERT OR UPDATE ON market.history_bars
FOR EACH STATEMENT
EXECUTE FUNCTION internal.notify_changed('market_bars_v1');

COMMENT ON TRIGGER history_bars_notify ON market.history_bars IS
'NOTIFY market_bars_v1 after each statement that wrote history bars (market.bars changed).';
