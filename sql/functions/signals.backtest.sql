-- The analysts' backtest: what trading the decisions of a coordinator rule, or one profile's
-- actionable trend starts, would have made on one contract over a range of bars.
CREATE OR REPLACE FUNCTION signals.backtest(
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
    trade_no integer,
    side text,
    entry_known_at timestamptz,
    entry_ts timestamptz,
    entry_price numeric,
    exit_known_at timestamptz,
    exit_ts timestamptz,
    exit_price numeric,
    bars_held integer,
    points numeric,
    pnl numeric,
    is_open boolean
)
LANGUAGE plpgsql
STABLE
AS $$
#variable_conflict use_column
DECLARE
    v_bucket timestamptz[];
    v_open numeric[];
    v_close numeric[];
    v_closes_at timestamptz[];
    v_n integer;
    v_tick_size numeric;
    v_tick_value numeric;
    v_slip numeric;
    v_fill record;
    v_position text := 'flat';
    v_sign integer;
    v_entry_bar integer;
    v_consumers bigint;
BEGIN
    SELECT cs.tick_size, cs.tick_value INTO v_tick_size, v_tick_value
    FROM market.contract_specs AS cs
    WHERE cs.symbol IN (backtest.contract_id, split_part(backtest.contract_id, '.', 4))
    ORDER BY cs.symbol = backtest.contract_id DESC
    LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no tick size and value for contract %', backtest.contract_id
        USING
            ERRCODE = 'invalid_parameter_value',
            HINT = 'Add its symbol root or contract id to market.contract_specs.';
    END IF;
    IF backtest.commission < 0 OR backtest.slippage_ticks < 0 THEN
        RAISE EXCEPTION 'commission and slippage_ticks must not be negative'
        USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_slip := backtest.slippage_ticks * v_tick_size;

    SELECT
        array_agg(b.bucket ORDER BY b.bucket),
        array_agg(b.open ORDER BY b.bucket),
        array_agg(b.close ORDER BY b.bucket),
        array_agg(b.closes_at ORDER BY b.bucket)
    INTO v_bucket, v_open, v_close, v_closes_at
    FROM market.bars AS b
    WHERE
        b.contract_id = backtest.contract_id
        AND b.timeframe = backtest.timeframe
        AND b.is_closed
        AND b.bucket >= coalesce(backtest.from_ts, '-infinity')
        AND b.bucket < coalesce(backtest.to_ts, 'infinity');
    v_n := coalesce(array_length(v_bucket, 1), 0);
    IF v_n = 0 THEN
        RETURN;
    END IF;

    IF backtest.rule IS NOT NULL THEN
        SELECT count(DISTINCT d.consumer) INTO v_consumers
        FROM signals.decisions AS d
        WHERE d.rule = backtest.rule AND d.contract_id = backtest.contract_id;
        IF backtest.consumer IS NULL AND v_consumers > 1 THEN
            RAISE EXCEPTION 'rule % has decisions of % coordinators', backtest.rule, v_consumers
            USING
                ERRCODE = 'invalid_parameter_value',
                HINT = 'Name one with consumer => ...';
        END IF;
    END IF;

    -- Position changes in the order they became known, each filled at the open of the first
    -- bar opening at or after its known_at; of several landing on one bar the last one counts.
    FOR v_fill IN
        WITH events AS (
            SELECT d.known_at, d.decision_id AS ord, d.direction AS target
            FROM signals.decisions AS d
            WHERE
                backtest.rule IS NOT NULL
                AND d.rule = backtest.rule
                AND d.contract_id = backtest.contract_id
                AND d.action IS NOT NULL
                AND (backtest.consumer IS NULL OR d.consumer = backtest.consumer)
                AND d.known_at >= v_bucket[1]
            UNION ALL
            SELECT
                a.known_at,
                row_number() OVER (ORDER BY a.known_at, a.start_ts),
                CASE a.direction WHEN 'up' THEN 'long' ELSE 'short' END
            FROM signals.actionable_starts(
                backtest.contract_id, backtest.timeframe, backtest.from_ts, backtest.to_ts,
                backtest.profile, backtest.max_delay
            ) AS a
            WHERE backtest.rule IS NULL
        ),

        timeline AS (
            -- events and bar opens in time order, an event before a bar opening at its known_at:
            -- the bars opened before an event, plus one, is the bar it is filled on
            SELECT
                e.known_at AS at,
                e.ord,
                e.target,
                0 AS is_bar
            FROM events AS e
            UNION ALL
            SELECT
                t.bucket,
                NULL,
                NULL,
                1
            FROM unnest(v_bucket) AS t (bucket)
        ),

        fills AS (
            SELECT
                timeline.at AS known_at,
                timeline.ord,
                timeline.target,
                1 + sum(timeline.is_bar) OVER (
                    ORDER BY timeline.at, timeline.is_bar
                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
                )::integer AS bar
            FROM timeline
        )

        SELECT DISTINCT ON (f.bar)
            f.bar,
            f.known_at,
            f.target
        FROM fills AS f
        WHERE f.target IS NOT NULL AND f.bar <= v_n
        ORDER BY f.bar, f.known_at DESC, f.ord DESC
    LOOP
        CONTINUE WHEN v_fill.target = v_position;
        IF v_position <> 'flat' THEN
            trade_no := coalesce(trade_no, 0) + 1;
            exit_known_at := v_fill.known_at;
            exit_ts := v_bucket[v_fill.bar];
            exit_price := v_open[v_fill.bar] - v_sign * v_slip;
            bars_held := v_fill.bar - v_entry_bar;
            points := (exit_price - entry_price) * v_sign;
            pnl := points / v_tick_size * v_tick_value - 2 * backtest.commission;
            is_open := FALSE;
            RETURN NEXT;
        END IF;
        v_position := v_fill.target;
        v_sign := CASE v_position WHEN 'long' THEN 1 WHEN 'short' THEN -1 END;
        IF v_position <> 'flat' THEN
            side := v_position;
            entry_known_at := v_fill.known_at;
            entry_ts := v_bucket[v_fill.bar];
            entry_price := v_open[v_fill.bar] + v_sign * v_slip;
            v_entry_bar := v_fill.bar;
        END IF;
    END LOOP;

    -- A position still open is marked at the last close, costs as if it were closed there.
    IF v_position <> 'flat' THEN
        trade_no := coalesce(trade_no, 0) + 1;
        exit_known_at := NULL;
        exit_ts := v_closes_at[v_n];
        exit_price := v_close[v_n] - v_sign * v_slip;
        bars_held := v_n + 1 - v_entry_bar;
        points := (exit_price - entry_price) * v_sign;
        pnl := points / v_tick_size * v_tick_value - 2 * backtest.commission;
        is_open := TRUE;
        RETURN NEXT;
    END IF;
END;
$$;

COMMENT ON FUNCTION signals.backtest(
    text, text, timestamptz, timestamptz, text, text, text, numeric, numeric, integer
) IS
'Backtest one contract on the closed timeframe bars of market.bars with from_ts <= bucket < '
'to_ts. With rule (and consumer, if several coordinators decided for it): the position changes '
'of that coordinator rule (signals.decisions). Without: the actionable starts of profile on '
'this timeframe (signals.actionable_starts with max_delay), up = long, down = short, always in '
'the market after the first. Each change is filled at the open of the first bar opening at or '
'after its known_at (several on one bar: the last counts), slippage_ticks against the trade on '
'each side; commission (USD per contract and side) is charged on entry and exit. Tick size and '
'value: market.contract_specs. One row per trade: side (long/short), entry and exit '
'(known_at, bar open time, price), bars_held, points and pnl (USD, net of costs); a position '
'still open at the end is marked at the last close (is_open, exit_ts = that bar''s close). '
'signals.backtest_summary adds up the result.';
