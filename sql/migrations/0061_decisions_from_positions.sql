-- Decisions from positions: per coordinator, rule and contract the coordinator is flat, long or
-- short, and a decision is a transition (enter, reverse, exit), made when its trigger signal
-- became known (known_at) at a price that existed then. The position is the direction of the
-- latest such decision; no separate state is kept.

ALTER TABLE signals.decisions
ADD COLUMN action text,
ADD COLUMN known_at timestamptz,
DROP CONSTRAINT decisions_direction_known,
ADD CONSTRAINT decisions_direction_known CHECK (direction IN ('long', 'short', 'flat')),
ADD CONSTRAINT decisions_action_known CHECK (action IN ('enter', 'reverse', 'exit')),
ADD CONSTRAINT decisions_action_matches_direction CHECK (
    (action = 'exit') = (direction = 'flat')
),
ADD CONSTRAINT decisions_positions_have_known_at CHECK (action IS NULL OR known_at IS NOT NULL);

-- Decisions made before positions were loose signals: their action and known_at stay NULL.

-- Never two decisions of one coordinator, rule and contract at one instant.
CREATE UNIQUE INDEX decisions_one_per_instant ON signals.decisions (
    consumer, rule, contract_id, known_at
) WHERE action IS NOT NULL;
CREATE INDEX decisions_contract_known_at ON signals.decisions (contract_id, known_at);

COMMENT ON TABLE signals.decisions IS
'Trading decisions of the coordinator (config/mechtrade.yaml, section coordinator.rules). Per '
'coordinator (consumer), rule and contract there is a position: flat, long or short, the '
'direction of the latest decision (flat before the first). A decision is a transition: enter '
'(from flat), reverse (long to short or back) or exit (to flat), at most one per instant '
'(known_at). Forced trend starts never decide. Decisions are never withdrawn. Rows with '
'action NULL were written before positions existed (migration 0061).';
COMMENT ON COLUMN signals.decisions.direction IS
'The position after the decision: long, short, or flat (exit).';
COMMENT ON COLUMN signals.decisions.action IS
'enter (flat to long/short), reverse (long to short or short to long) or exit (to flat); NULL '
'for decisions made before positions.';
COMMENT ON COLUMN signals.decisions.known_at IS
'When a trader could have acted: the close of the trigger signal''s confirming bar. Replays '
'and signals.backtest order decisions by it. NULL for decisions made before positions.';
COMMENT ON COLUMN signals.decisions.price IS
'Reference price known at known_at: the close of the trigger signal''s confirming bar (its '
'start price if that bar is not in market.bars; decisions before migration 0061: the start '
'price).';
COMMENT ON COLUMN signals.decisions.timeframes IS 'The rule''s timeframes, in its order.';
COMMENT ON COLUMN signals.decisions.starts IS
'Start bar open time of the input signal on each timeframe (same order); an exit names only '
'its trigger (NULL elsewhere).';
COMMENT ON COLUMN signals.decisions.inputs IS
'signal_id of the input signal on each timeframe (same order), in signals.detected_signals; an '
'exit names only its trigger (NULL elsewhere).';
