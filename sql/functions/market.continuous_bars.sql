-- One series per root symbol across front-month rolls: each bar from the contract that was the
-- root's front when the bar started.
CREATE OR REPLACE VIEW market.continuous_bars AS
WITH segments AS (
    -- from each roll on: its new contract, until the next roll
    SELECT
        r.root,
        r.to_contract AS contract_id,
        r.rolled_at AS valid_from,
        lead(r.rolled_at) OVER (PARTITION BY r.root ORDER BY r.rolled_at) AS valid_to
    FROM market.contract_rolls AS r
    UNION ALL
    -- before a root's first roll: the contract it rolled from
    SELECT
        first_roll.root,
        first_roll.from_contract,
        '-infinity'::timestamptz,
        first_roll.rolled_at
    FROM (
        SELECT DISTINCT ON (r.root)
            r.root,
            r.from_contract,
            r.rolled_at
        FROM market.contract_rolls AS r
        ORDER BY r.root ASC, r.rolled_at ASC
    ) AS first_roll
    UNION ALL
    -- a root that never rolled: its active contract
    SELECT
        c.root,
        c.contract_id,
        '-infinity'::timestamptz,
        NULL::timestamptz
    FROM market.contracts AS c
    WHERE
        c.active
        AND NOT EXISTS (
            SELECT 1 FROM market.contract_rolls AS r
            WHERE r.root = c.root
        )
)

SELECT
    s.root,
    b.timeframe,
    b.bucket,
    b.open,
    b.high,
    b.low,
    b.close,
    b.volume,
    b.trade_count,
    b.buy_volume,
    b.sell_volume,
    b.contract_id,
    b.source,
    b.closes_at,
    b.is_closed
FROM segments AS s
INNER JOIN market.bars AS b
    ON
        s.contract_id = b.contract_id
        AND s.valid_from <= b.bucket
        AND (s.valid_to IS NULL OR s.valid_to > b.bucket);

COMMENT ON VIEW market.continuous_bars IS
'Bars of a root symbol (MES, MNQ, ...) stitched across front-month rolls: a bar starting before a '
'roll (market.contract_rolls.rolled_at) comes from the old contract, one starting at or after it '
'from the new one; contract_id tells which. Prices are as traded, so a roll shows as a jump; '
'market.continuous_bars_adjusted removes it. Columns otherwise as market.bars.';
