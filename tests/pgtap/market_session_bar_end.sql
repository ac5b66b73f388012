-- Bar close times follow Chicago local time across daylight-saving changes.
BEGIN;
SELECT plan(6);

SELECT is(
    market.session_bar_end('4h', '2025-07-14 18:00Z'), '2025-07-14 22:00Z'::timestamptz,
    'summer 4h bar 18:00 UTC closes at 22:00 UTC'
);
SELECT is(
    market.session_bar_end('4h', '2025-12-01 19:00Z'), '2025-12-01 23:00Z'::timestamptz,
    'winter 4h bar 19:00 UTC closes at 23:00 UTC'
);
SELECT is(
    market.session_bar_end('1d', '2025-07-14 00:00Z'), '2025-07-14 22:00Z'::timestamptz,
    'summer trading date closes 17:00 CDT'
);
SELECT is(
    market.session_bar_end('1d', '2025-12-01 00:00Z'), '2025-12-01 23:00Z'::timestamptz,
    'winter trading date closes 17:00 CST'
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
