-- Gap repair within the history budget: the bar ranges of overlapping or adjacent gaps of a
-- contract are fetched in one request, each timeframe once (after the gap's last bar of it has
-- closed), and every gap records the history requests it cost.

ALTER TABLE market.feed_gaps
ADD COLUMN repaired_timeframes text[] NOT NULL DEFAULT '{}',
ADD COLUMN requests integer NOT NULL DEFAULT 0;

-- Gaps recorded before: each timeframe is fetched again once, as a new gap would be.
COMMENT ON COLUMN market.feed_gaps.repaired_timeframes IS
'Timeframes whose bars over the span were fetched after the last of them closed: complete, '
'never fetched again. The gap is finalized when every configured timeframe is here.';
COMMENT ON COLUMN market.feed_gaps.requests IS
'History requests (retrieveBars calls) its repairs made; the budget is 30 per 30 s.';
