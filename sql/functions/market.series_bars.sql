-- Every series the trend detector can run on: a contract's bars, or a root's continuous bars.
CREATE OR REPLACE VIEW market.series_bars AS
SELECT
    b.contract_id AS series,
    b.timeframe,
    b.bucket,
    b.open,
    b.high,
    b.low,
    b.close,
    b.volume,
    b.closes_at,
    b.is_closed
FROM market.bars AS b
UNION ALL
SELECT
    cb.root,
    cb.timeframe,
    cb.bucket,
    cb.open,
    cb.high,
    cb.low,
    cb.close,
    cb.volume,
    cb.closes_at,
    cb.is_closed
FROM market.continuous_bars AS cb;

COMMENT ON VIEW market.series_bars IS
'The series trend jobs and signals.trend_starts read, keyed by series: a contract id (its '
'market.bars) or a root symbol such as MES (its market.continuous_bars: stitched at the rolls, '
'not back-adjusted, so no bar already analysed changes when the root rolls).';
