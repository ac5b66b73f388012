-- Raw trades as the gateway reports them: a hypertable partitioned by trade time.

CREATE TABLE market.ticks (
    contract_id text NOT NULL,
    ts timestamptz NOT NULL,
    price numeric NOT NULL,
    size integer NOT NULL,
    side smallint NOT NULL,
    seq smallint NOT NULL DEFAULT 0,
    received_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ticks_pkey PRIMARY KEY (contract_id, ts, price, size, side, seq),
    CONSTRAINT ticks_price_positive CHECK (price > 0),
    CONSTRAINT ticks_size_positive CHECK (size > 0),
    CONSTRAINT ticks_side_known CHECK (side IN (0, 1)),
    CONSTRAINT ticks_seq_non_negative CHECK (seq >= 0)
);

SELECT create_hypertable('market.ticks', by_range('ts', interval '1 day'));

COMMENT ON TABLE market.ticks IS
'Raw trades (GatewayTrade), one row per print. Re-inserting a stored trade is a no-op with '
'ON CONFLICT DO NOTHING; bars are derived from this table by continuous aggregates.';
COMMENT ON COLUMN market.ticks.contract_id IS 'Gateway contract id, e.g. CON.F.US.MES.M25.';
COMMENT ON COLUMN market.ticks.ts IS 'Exchange time of the trade (UTC).';
COMMENT ON COLUMN market.ticks.price IS 'Trade price, exact decimal.';
COMMENT ON COLUMN market.ticks.size IS 'Contracts traded.';
COMMENT ON COLUMN market.ticks.side IS 'Aggressor side as the gateway sends it: 0 = buy, 1 = sell.';
COMMENT ON COLUMN market.ticks.seq IS
'Ordinal among prints with identical (contract_id, ts, price, size, side) in one gateway '
'message: the gateway sends no trade id, so this keeps genuinely repeated prints apart while '
'a replayed message maps onto the rows it already wrote.';
COMMENT ON COLUMN market.ticks.received_at IS 'When the row was written (arrival time).';
