-- Bar close times follow Chicago local time across daylight-saving changes, and the last bars
-- of a session close at the 16:00 Chicago halt.
BEGIN;
SELECT plan(8);

SELECT is(
    market.session_bar_end('4h', '2025-07-14 18:00Z'), '2025-07-14 21:00Z'::timestamptz,
    'summer 4h bar 18:00 UTC closes at the 16:00 CDT halt (21:00 UTC)'
);
SELECT is(
    market.session_bar_end('4h', '2025-12-01 19:00Z'), '2025-12-01 22:00Z'::timestamptz,
    'winter 4h bar 19:00 UTC closes at the 16:00 CST halt (22:00 UTC)'
);
SELECT is(
    market.session_bar_end('4h', '2025-07-14 14:00Z'), '2025-07-14 18:00Z'::timestamptz,
    'a 4h bar before the halt is four hours'
);
SELECT is(
    market.session_bar_end('1d', '2025-07-14 00:00Z'), '2025-07-14 21:00Z'::timestamptz,
    'summer trading date closes at the 16:00 CDT halt'
);
SELECT is(
    market.session_bar_end('1d', '2025-12-01 00:00Z'), '2025-12-01 22:00Z'::timestamptz,
    'winter trading date closes at the 16:00 CST halt'
);
SELECT is(
    market.session_bar_end('1h', '2025-07-14 22:00Z'), '2025-07-14 23:00Z'::timestamptz,
    'the first 1h bar of a session (17:00 CDT) is an hour'
);
SELECT is(
    market.session_bar_end('5m', '2025-03-09 06:55Z'), '2025-03-09 07:00Z'::timestamptz,
    'a 5m bar across the spring-forward instant is still 5 minutes'
);
SELECT is(
    market.session_bar_end('2h', '2025-07-14 18:00Z'), NULL,
    'unknown timeframe gives NULL'
);

SELECT * FROM finish();
ROLLBACK;
