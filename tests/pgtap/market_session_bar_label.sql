-- A daily bar opening at 17:00 Chicago is labelled with its trading date at 00:00 UTC, in summer
-- and winter time; other bars by their open time; session_bar_start is the inverse.
BEGIN;
SELECT plan(5);

SELECT is(
    market.session_bar_label('1d', '2025-07-13 22:00Z'), '2025-07-14 00:00Z'::timestamptz,
    'summer: the daily bar opening Sunday 17:00 CDT is Monday''s'
);
SELECT is(
    market.session_bar_label('1d', '2025-11-30 23:00Z'), '2025-12-01 00:00Z'::timestamptz,
    'winter: the daily bar opening Sunday 17:00 CST is Monday''s'
);
SELECT is(
    market.session_bar_label('4h', '2025-07-14 18:00Z'), '2025-07-14 18:00Z'::timestamptz,
    'a 4h bar is labelled by its open time'
);
SELECT is(
    market.session_bar_label('1d', market.session_bar_start('1d', '2025-03-10 00:00Z')),
    '2025-03-10 00:00Z'::timestamptz,
    'session_bar_start is the inverse across the spring-forward weekend'
);
SELECT is(
    market.session_bar_label('1d', market.session_bar_start('1d', '2025-11-03 00:00Z')),
    '2025-11-03 00:00Z'::timestamptz,
    'session_bar_start is the inverse across the fall-back weekend'
);

SELECT * FROM finish();
ROLLBACK;
