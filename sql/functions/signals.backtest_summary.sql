-- The figures of a backtest, one row, with buy-and-hold over the same bars for comparison.
CREATE OR REPLACE FUNCTION signals.backtest_summary(
    contract_id text,
    timeframe text,
    from_ts timestamptz,
    to_ts timestamptz,
    profile text DEFAULT signals.default_profile(),
    rule text DEFAULT NULL,
    consumer text DEFAULT NULL,
    commission numeric DEFAULT 0,
    slippage_ticks numeric DEFAULT 0,
    max_delay integer DEFAULT 3
) RETURNS TABLE (
    first_bar timestamptz,
    last_bar timestamptz,
    bars bigint,
    trades bigint,
    wins bigint,
    win_rate numeric,
    net_pnl numeric,
    gross_profit numeric,
    gross_loss numeric,
    profit_factor numeric,
    max_drawdown numeric,
    avg_trade numeric,
    time_in_market numeric,
    buy_and_hold numeric
)
LANGUAGE sql
STABLE
AS $$
    WITH trades AS (
        SELECT
            t.*,
            sum(t.pnl) OVER (ORDER BY t.trade_no) AS equity
        FROM signals.backtest(
            backtest_summary.contract_id, backtest_summary.timeframe,
            backtest_summary.from_ts, backtest_summary.to_ts, backtest_summary.profile,
            backtest_summary.rule, backtest_summary.consumer, backtest_summary.commission,
            backtest_summary.slippage_ticks, backtest_summary.max_delay
        ) AS t
    ),

    drawdowns AS (
        -- peak-to-trough of the closed-trade equity curve, starting from 0
        SELECT
            greatest(0, max(d.peak - d.equity)) AS max_drawdown
        FROM (
            SELECT
                trades.equity,
                greatest(0, max(trades.equity) OVER (ORDER BY trades.trade_no)) AS peak
            FROM trades
        ) AS d
    ),

    series AS (
        SELECT
            min(b.bucket) AS first_bar,
            max(b.bucket) AS last_bar,
            count(*) AS bars,
            (array_agg(b.open ORDER BY b.bucket))[1] AS first_open,
            (array_agg(b.close ORDER BY b.bucket DESC))[1] AS last_close
        FROM market.bars AS b
        WHERE
            b.contract_id = backtest_summary.contract_id
            AND b.timeframe = backtest_summary.timeframe
            AND b.is_closed
            AND b.bucket >= coalesce(backtest_summary.from_ts, '-infinity')
            AND b.bucket < coalesce(backtest_summary.to_ts, 'infinity')
    ),

    spec AS (
        SELECT
            cs.tick_size,
            cs.tick_value
        FROM market.contract_specs AS cs
        WHERE
            cs.symbol IN (
                backtest_summary.contract_id, split_part(backtest_summary.contract_id, '.', 4)
            )
        ORDER BY cs.symbol = backtest_summary.contract_id DESC
        LIMIT 1
    )

    SELECT
        series.first_bar,
        series.last_bar,
        series.bars,
        (SELECT count(*) FROM trades),
        (SELECT count(*) FROM trades WHERE trades.pnl > 0),
        (SELECT round(avg((trades.pnl > 0)::integer), 4) FROM trades),
        (SELECT coalesce(sum(trades.pnl), 0) FROM trades),
        (SELECT coalesce(sum(trades.pnl) FILTER (WHERE trades.pnl > 0), 0) FROM trades),
        (SELECT coalesce(-sum(trades.pnl) FILTER (WHERE trades.pnl < 0), 0) FROM trades),
        (
            SELECT
                round(
                    sum(trades.pnl) FILTER (WHERE trades.pnl > 0)
                    / nullif(-sum(trades.pnl) FILTER (WHERE trades.pnl < 0), 0),
                    4
                )
            FROM trades
        ),
        (SELECT coalesce(drawdowns.max_drawdown, 0) FROM drawdowns),
        (SELECT round(avg(trades.pnl), 2) FROM trades),
        (SELECT round(coalesce(sum(trades.bars_held), 0)::numeric / nullif(series.bars, 0), 4) FROM trades),
        (
            (series.last_close - series.first_open) / spec.tick_size * spec.tick_value
            - 2 * backtest_summary.slippage_ticks * spec.tick_value
            - 2 * backtest_summary.commission
        )
    FROM series
    CROSS JOIN spec
    WHERE series.bars > 0
$$;

COMMENT ON FUNCTION signals.backtest_summary(
    text, text, timestamptz, timestamptz, text, text, text, numeric, numeric, integer
) IS
'One row summing up signals.backtest with the same arguments: the bars traded (first, last, '
'count), trades, wins (pnl > 0), win_rate, net_pnl, gross_profit, gross_loss (positive), '
'profit_factor (gross profit / gross loss; NULL without a loss), max_drawdown (largest fall of '
'the closed-trade equity curve from its peak, starting at 0), avg_trade, time_in_market '
'(share of the bars a position was held) and buy_and_hold (one contract long from the first '
'open to the last close, same costs), all money in USD per contract. No row without bars.';
