-- Progress of `mechtrade backfill`: one row per run, updated with every page it stores, so an
-- interrupted run continues below the oldest bar it stored instead of starting again.

CREATE TABLE internal.backfill_runs (
    run_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    contract_id text NOT NULL,
    timeframe text NOT NULL REFERENCES market.timeframes (timeframe),
    since timestamptz NOT NULL,
    until timestamptz NOT NULL,
    oldest_bucket timestamptz,
    pages integer NOT NULL DEFAULT 0,
    bars_received bigint NOT NULL DEFAULT 0,
    bars_written bigint NOT NULL DEFAULT 0,
    started_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    last_error text,
    CONSTRAINT backfill_runs_ordered CHECK (since <= until),
    CONSTRAINT backfill_runs_oldest_in_range CHECK (
        oldest_bucket IS NULL OR oldest_bucket BETWEEN since AND until
    )
);
CREATE INDEX backfill_runs_unfinished ON internal.backfill_runs (contract_id, timeframe, since)
WHERE finished_at IS NULL;

COMMENT ON TABLE internal.backfill_runs IS
'Runs of mechtrade backfill, which pages the gateway history backwards from until to since into '
'market.history_bars. [oldest_bucket, until] is stored; an unfinished run is resumed below '
'oldest_bucket by the next backfill of the same contract, timeframe and since.';
COMMENT ON COLUMN internal.backfill_runs.oldest_bucket IS
'Start of the oldest bar stored so far (NULL: no page yet); the next page ends 1 s before it.';
COMMENT ON COLUMN internal.backfill_runs.bars_written IS
'Bars inserted or changed; bars already stored with the same values are not counted.';
COMMENT ON COLUMN internal.backfill_runs.last_error IS 'Why the run stopped, if it failed.';

COMMENT ON COLUMN market.history_bars.fetched_at IS
'When the bar was fetched with its current values (a re-fetch that finds it unchanged keeps '
'it); market.bars trusts a history bar fetched after the bar closed as complete.';
