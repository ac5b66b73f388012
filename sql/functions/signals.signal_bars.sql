-- Current signals next to the bars they point at: the start bar and the confirming bar.
CREATE OR REPLACE VIEW signals.signal_bars AS
SELECT
    s.signal_id,
    s.contract_id,
    s.timeframe,
    s.profile,
    s.signal_type,
    s.timestamp,
    s.signal_price,
    s.confirmed_at,
    b.open,
    b.high,
    b.low,
    b.close,
    b.volume,
    c.closes_at AS known_at,
    c.close AS confirming_close,
    s.details ->> 'rule' AS rule
FROM signals.detected_signals AS s
LEFT JOIN market.series_bars AS b
    ON
        s.contract_id = b.series
        AND s.timeframe = b.timeframe
        AND s.timestamp = b.bucket
LEFT JOIN market.series_bars AS c
    ON
        s.contract_id = c.series
        AND s.timeframe = c.timeframe
        AND s.confirmed_at = c.bucket
WHERE s.superseded_at IS NULL;

COMMENT ON VIEW signals.signal_bars IS
'Current (not superseded) trend-start signals with their start bar''s OHLCV and the confirming '
'bar''s close and close time (when the signal became known).';
COMMENT ON COLUMN signals.signal_bars.signal_id IS 'signals.detected_signals.signal_id.';
COMMENT ON COLUMN signals.signal_bars.contract_id IS 'Gateway contract id.';
COMMENT ON COLUMN signals.signal_bars.timeframe IS 'Bar timeframe.';
COMMENT ON COLUMN signals.signal_bars.profile IS 'Detector profile.';
COMMENT ON COLUMN signals.signal_bars.signal_type IS 'uptrend_start or downtrend_start.';
COMMENT ON COLUMN signals.signal_bars.timestamp IS 'Open time of the start bar.';
COMMENT ON COLUMN signals.signal_bars.signal_price IS 'Low (up) or high (down) of the start bar.';
COMMENT ON COLUMN signals.signal_bars.confirmed_at IS 'Open time of the confirming bar.';
COMMENT ON COLUMN signals.signal_bars.rule IS 'Confirming rule code (signals.trend_rules).';
COMMENT ON COLUMN signals.signal_bars.open IS 'Start bar open.';
COMMENT ON COLUMN signals.signal_bars.high IS 'Start bar high.';
COMMENT ON COLUMN signals.signal_bars.low IS 'Start bar low.';
COMMENT ON COLUMN signals.signal_bars.close IS 'Start bar close.';
COMMENT ON COLUMN signals.signal_bars.volume IS 'Start bar volume.';
COMMENT ON COLUMN signals.signal_bars.known_at IS
'When the confirming bar closed, i.e. when the signal could first be known.';
COMMENT ON COLUMN signals.signal_bars.confirming_close IS 'Close of the confirming bar.';
