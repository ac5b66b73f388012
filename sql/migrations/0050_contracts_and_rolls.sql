-- Contracts by root symbol: the ingester resolves each configured root (MES, MNQ, ...) to its
-- active contract, records every contract it streams, and every front-month roll.

CREATE TABLE market.contracts (
    contract_id text PRIMARY KEY,
    root text NOT NULL,
    description text NOT NULL DEFAULT '',
    tick_size numeric NOT NULL,
    tick_value numeric NOT NULL,
    expires_on date,
    first_tick timestamptz,
    last_tick timestamptz,
    active boolean NOT NULL DEFAULT FALSE,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT contracts_tick_size_positive CHECK (tick_size > 0)
);
CREATE UNIQUE INDEX contracts_one_active_per_root ON market.contracts (root) WHERE active;

COMMENT ON TABLE market.contracts IS
'Every contract the ingester streamed or resolved, by root symbol. One active contract per root: '
'the front month the continuous series (market.continuous_bars) follows from now on.';
COMMENT ON COLUMN market.contracts.contract_id IS 'Gateway contract id, e.g. CON.F.US.MES.M25.';
COMMENT ON COLUMN market.contracts.root IS
'Root symbol as in the id, e.g. MES (EP for ES, ENQ for NQ).';
COMMENT ON COLUMN market.contracts.description IS
'The gateway''s description, e.g. Micro E-mini S&P 500: June 2025.';
COMMENT ON COLUMN market.contracts.tick_size IS 'Minimum price increment.';
COMMENT ON COLUMN market.contracts.tick_value IS 'Currency value of one tick per contract.';
COMMENT ON COLUMN market.contracts.expires_on IS
'Last trading day as the ingester reckons it: the third Friday of the contract month (CME '
'equity index futures).';
COMMENT ON COLUMN market.contracts.first_tick IS
'Exchange time of the first stored trade (NULL: none yet).';
COMMENT ON COLUMN market.contracts.last_tick IS
'Exchange time of the latest stored trade (NULL: none yet).';
COMMENT ON COLUMN market.contracts.active IS 'The root''s active (front) contract.';
COMMENT ON COLUMN market.contracts.updated_at IS 'Last time the ingester updated this row.';

CREATE TABLE market.contract_rolls (
    roll_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    root text NOT NULL,
    from_contract text NOT NULL REFERENCES market.contracts (contract_id),
    to_contract text NOT NULL REFERENCES market.contracts (contract_id),
    rolled_at timestamptz NOT NULL,
    reason text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT contract_rolls_moves CHECK (from_contract <> to_contract),
    CONSTRAINT contract_rolls_once UNIQUE (root, rolled_at)
);

COMMENT ON TABLE market.contract_rolls IS
'Front-month rolls: from rolled_at on, the root''s continuous series takes its bars from '
'to_contract instead of from_contract. Both were streamed across the roll, so no tick is lost.';
COMMENT ON COLUMN market.contract_rolls.rolled_at IS
'Market time of the switch: bars starting at or after it come from to_contract.';
COMMENT ON COLUMN market.contract_rolls.reason IS
'gateway (its activeContract moved) or expiry (the configured rule: N days before expiry).';
COMMENT ON COLUMN market.contract_rolls.recorded_at IS 'When the ingester recorded the roll.';

COMMENT ON COLUMN signals.trend_jobs.contract_id IS
'Gateway contract id (CON.F.US.MES.M25), or a root symbol (MES): a root runs on its continuous '
'series (market.continuous_bars) and carries on across front-month rolls without a cold start.';
