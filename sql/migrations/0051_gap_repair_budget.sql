-- Gap repair within the history budget: overlapping or adjacent gaps of a contract are coalesced
-- into one span, each timeframe is fetched once (after the span's last bar of it has closed), and
-- every span records the history requests it cost.

ALTER TABLE market.feed_gaps
ADD COLUMN repaired_timeframes text[] NOT NULL DEFAULT '{}',
ADD COLUMN requests integer NOT NULL DEFAULT 0,
ADD COLUMN outages integer NOT NULL DEFAULT 1;

-- Gaps recorded before: each timeframe is fetched again once, as a new gap would be.
COMMENT ON COLUMN market.feed_gaps.repaired_timeframes IS
'Timeframes whose bars over the span were fetched after the last of them closed: complete, '
'never fetched again. The gap is finalized when every configured timeframe is here.';
COMMENT ON COLUMN market.feed_gaps.requests IS
'History requests (retrieveBars calls) its repairs made; the budget is 30 per 30 s.';
COMMENT ON COLUMN market.feed_gaps.outages IS
'Feed outages coalesced into this span (they overlapped it or touched the same 1m bar).';
COMMENT ON COLUMN market.feed_gaps.gap_end IS
'When the feed was subscribed again (the latest such time of the outages coalesced here).';
