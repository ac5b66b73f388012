-- market.continuous_bars, back-adjusted: older segments shifted by the gap at each later roll.
CREATE OR REPLACE VIEW market.continuous_bars_adjusted AS
WITH roll_gaps AS (
    SELECT
        r.root,
        r.rolled_at,
        (
            -- new minus old close in the latest bar both traded that closed by the roll
            SELECT n.close - o.close
            FROM market.bars AS n
            INNER JOIN market.bars AS o
                ON
                    n.timeframe = o.timeframe
                    AND n.bucket = o.bucket
            WHERE
                n.contract_id = r.to_contract
                AND o.contract_id = r.from_contract
                AND n.bucket >= r.rolled_at - interval '7 days'
                AND n.closes_at <= r.rolled_at
            ORDER BY n.closes_at DESC, n.bucket DESC
            LIMIT 1
        ) AS gap
    FROM market.contract_rolls AS r
)

-- prices in their usual OHLC place, before the plain columns
SELECT  -- noqa: ST06
    cb.root,
    cb.timeframe,
    cb.bucket,
    cb.open + adj.adjustment AS open,
    cb.high + adj.adjustment AS high,
    cb.low + adj.adjustment AS low,
    cb.close + adj.adjustment AS close,
    cb.volume,
    cb.trade_count,
    cb.buy_volume,
    cb.sell_volume,
    cb.contract_id,
    adj.adjustment,
    cb.source,
    cb.closes_at,
    cb.is_closed
FROM market.continuous_bars AS cb
CROSS JOIN LATERAL (
    SELECT coalesce(sum(g.gap), 0) AS adjustment
    FROM roll_gaps AS g
    WHERE g.root = cb.root AND cb.bucket < g.rolled_at
) AS adj;

COMMENT ON VIEW market.continuous_bars_adjusted IS
'market.continuous_bars back-adjusted (the usual "panama" method): the prices of every bar '
'before a roll are shifted by that roll''s gap, so the series has no jump at the roll and the '
'newest segment keeps its traded prices. The gap is the new contract''s close minus the old '
'one''s in the latest bar both traded that closed by the roll (the finest such bar; none in the '
'week before: no shift); adjustment is the total shift of the row.';
