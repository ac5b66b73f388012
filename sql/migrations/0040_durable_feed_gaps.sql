-- Durable feed gaps: a gap is written the moment the feed goes down, open (gap_end NULL), and
-- closed by the first trade after it. gap_key makes re-sending a journalled opening a no-op.

ALTER TABLE market.feed_gaps ALTER COLUMN gap_end DROP NOT NULL;
ALTER TABLE market.feed_gaps ADD COLUMN gap_key uuid;
ALTER TABLE market.feed_gaps ADD CONSTRAINT feed_gaps_gap_key_unique UNIQUE (gap_key);
ALTER TABLE market.feed_gaps ADD CONSTRAINT feed_gaps_finalized_when_closed CHECK (
    finalized_at IS NULL OR gap_end IS NOT NULL
);

COMMENT ON COLUMN market.feed_gaps.gap_end IS
'Time of the first trade after the outage; NULL while the gap is still open (no trade of the '
'contract seen since). Ticks may be missing anywhere from gap_start to gap_end (or to now).';
COMMENT ON COLUMN market.feed_gaps.gap_key IS
'Identity the ingester gave the gap when it began (it is journalled locally until the database '
'takes it, so a replayed opening adds nothing). NULL for gaps recorded before migration 0040.';
