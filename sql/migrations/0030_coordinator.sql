-- The coordinator: combines trend starts across timeframes into trading decisions. It reads
-- signals.detected_signals past a durable watermark (NOTIFY is only a wake-up) and writes
-- signals.decisions and the watermark in one transaction per batch (signals.coordinate).

DO $$
BEGIN
    CREATE ROLE mechtrade_coordinator NOLOGIN;
EXCEPTION WHEN duplicate_object THEN
    NULL;
END
$$;
COMMENT ON ROLE mechtrade_coordinator IS
'The coordinator: runs signals.coordinate(), which reads signals and writes decisions.';

CREATE TABLE internal.coordinator_watermarks (
    consumer text PRIMARY KEY,
    last_signal_id bigint NOT NULL DEFAULT 0,
    batches bigint NOT NULL DEFAULT 0,
    signals_read bigint NOT NULL DEFAULT 0,
    decisions_made bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT coordinator_watermarks_last_signal_id_non_negative CHECK (last_signal_id >= 0)
);
COMMENT ON TABLE internal.coordinator_watermarks IS
'Per coordinator name: the last signal_id of signals.detected_signals it has processed, and '
'running totals. Its row is locked (FOR UPDATE) by each batch, so two coordinators of one '
'name take turns and never read the same signal twice.';

CREATE TABLE signals.decisions (
    decision_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule text NOT NULL,
    contract_id text NOT NULL,
    profile text NOT NULL,
    direction text NOT NULL,
    timeframes text[] NOT NULL,
    starts timestamptz[] NOT NULL,
    inputs bigint[] NOT NULL,
    trigger_signal_id bigint NOT NULL REFERENCES signals.detected_signals (signal_id),
    price numeric NOT NULL,
    reason text NOT NULL,
    consumer text NOT NULL,
    decided_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT decisions_direction_known CHECK (direction IN ('long', 'short')),
    CONSTRAINT decisions_inputs_match_timeframes CHECK (
        cardinality(inputs) = cardinality(timeframes)
        AND cardinality(starts) = cardinality(timeframes)
    ),
    -- One decision per rule and combination of start bars: reprocessing a signal, or a
    -- replacement signal for the same bar and direction, adds nothing.
    CONSTRAINT decisions_key UNIQUE (rule, contract_id, profile, direction, starts)
);
CREATE INDEX decisions_contract_decided_at ON signals.decisions (contract_id, decided_at);
COMMENT ON TABLE signals.decisions IS
'Trading decisions made by the coordinator from trend starts (config/mechtrade.yaml, section '
'coordinator.rules). A decision is never withdrawn: a later signal of the other direction '
'makes the opposite decision.';
COMMENT ON COLUMN signals.decisions.decision_id IS 'Identity; ascending in decision order.';
COMMENT ON COLUMN signals.decisions.rule IS 'Name of the rule that fired.';
COMMENT ON COLUMN signals.decisions.contract_id IS 'Gateway contract id.';
COMMENT ON COLUMN signals.decisions.profile IS 'Detector profile of the input signals.';
COMMENT ON COLUMN signals.decisions.direction IS 'long (up starts) or short (down starts).';
COMMENT ON COLUMN signals.decisions.timeframes IS 'The rule''s timeframes, in its order.';
COMMENT ON COLUMN signals.decisions.starts IS
'Start bar open time of the input signal on each timeframe (same order).';
COMMENT ON COLUMN signals.decisions.inputs IS
'signal_id of the input signal on each timeframe (same order), in signals.detected_signals.';
COMMENT ON COLUMN signals.decisions.trigger_signal_id IS
'The input signal detected last: the one whose arrival completed the rule.';
COMMENT ON COLUMN signals.decisions.price IS 'signal_price of the trigger signal.';
COMMENT ON COLUMN signals.decisions.reason IS 'The rule and its inputs, in words.';
COMMENT ON COLUMN signals.decisions.consumer IS 'Name of the coordinator that decided.';
COMMENT ON COLUMN signals.decisions.decided_at IS 'When the decision was written.';
