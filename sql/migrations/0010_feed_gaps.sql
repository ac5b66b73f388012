-- Feed outages: every disconnect of the live feed is recorded, then repaired from REST bars.

CREATE TABLE market.feed_gaps (
    gap_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    contract_id text NOT NULL,
    gap_start timestamptz NOT NULL,
    gap_end timestamptz NOT NULL,
    reason text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    repaired_at timestamptz,
    finalized_at timestamptz,
    bars_repaired integer NOT NULL DEFAULT 0,
    CONSTRAINT feed_gaps_ordered CHECK (gap_end >= gap_start),
    CONSTRAINT feed_gaps_finalized_after_repair CHECK (
        finalized_at IS NULL OR repaired_at IS NOT NULL
    )
);
CREATE INDEX feed_gaps_open ON market.feed_gaps (contract_id, gap_start)
WHERE finalized_at IS NULL;

COMMENT ON TABLE market.feed_gaps IS
'Spans in which the live feed of a contract was down (disconnect, restart, stall): ticks there '
'may be missing. The ingester re-fetches the bars these spans touch from the gateway REST '
'history, and market.bars prefers those complete history bars over the tick-derived ones.';
COMMENT ON COLUMN market.feed_gaps.gap_start IS 'Time of the last trade seen before the outage.';
COMMENT ON COLUMN market.feed_gaps.gap_end IS 'When the feed was subscribed again.';
COMMENT ON COLUMN market.feed_gaps.reason IS 'Why the feed was down (closed, server silent, ...).';
COMMENT ON COLUMN market.feed_gaps.repaired_at IS 'Last time history bars were fetched for it.';
COMMENT ON COLUMN market.feed_gaps.finalized_at IS
'When every bar it touches had closed and was fetched complete; no more repairs needed.';
COMMENT ON COLUMN market.feed_gaps.bars_repaired IS 'History bars written by its repairs.';
