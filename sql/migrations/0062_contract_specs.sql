-- The contract catalogue the backtest prices trades with: tick size and tick value per symbol
-- root, as the gateway's contract search reports them (tickSize, tickValue).

CREATE TABLE market.contract_specs (
    symbol text PRIMARY KEY,
    tick_size numeric NOT NULL,
    tick_value numeric NOT NULL,
    description text NOT NULL,
    CONSTRAINT contract_specs_tick_size_positive CHECK (tick_size > 0),
    CONSTRAINT contract_specs_tick_value_positive CHECK (tick_value > 0)
);
COMMENT ON TABLE market.contract_specs IS
'Tick size and tick value (USD per tick and contract) per symbol root (MES) or full contract id '
'(CON.F.US.MES.M25, which wins over its root), as ProjectX''s contract search reports them '
'(tickSize, tickValue; mechtrade contracts prints them). signals.backtest prices trades with '
'them. Add a row for any other contract.';
COMMENT ON COLUMN market.contract_specs.symbol IS
'Symbol root (the fourth part of a gateway contract id: CON.F.US.MES.M25 -> MES) or a full '
'contract id.';
COMMENT ON COLUMN market.contract_specs.tick_size IS 'Minimum price increment, in index points.';
COMMENT ON COLUMN market.contract_specs.tick_value IS 'USD per tick and contract.';
COMMENT ON COLUMN market.contract_specs.description IS 'What the contract is.';

INSERT INTO market.contract_specs (symbol, tick_size, tick_value, description) VALUES
('MES', 0.25, 1.25, 'Micro E-mini S&P 500'),
('ES', 0.25, 12.50, 'E-mini S&P 500'),
('MNQ', 0.25, 0.50, 'Micro E-mini Nasdaq-100'),
('NQ', 0.25, 5.00, 'E-mini Nasdaq-100'),
('MYM', 1, 0.50, 'Micro E-mini Dow'),
('YM', 1, 5.00, 'E-mini Dow'),
('M2K', 0.10, 0.50, 'Micro E-mini Russell 2000'),
('RTY', 0.10, 5.00, 'E-mini Russell 2000');
