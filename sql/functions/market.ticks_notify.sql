-- New ticks change the forming bars: wake the live chart (one NOTIFY per insert statement).
CREATE OR REPLACE TRIGGER ticks_notify
AFTER INSERT ON market.ticks
FOR EACH STATEMENT
EXECUTE FUNCTION internal.notify_changed('market_bars_v1');

COMMENT ON TRIGGER ticks_notify ON market.ticks IS
'NOTIFY market_bars_v1 after each statement that inserted ticks (market.bars changed).';
