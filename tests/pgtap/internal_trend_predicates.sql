-- The bar predicates of the trend-start spec (section 2), ties included: every comparison is
-- strict except inside, whose edges count.
BEGIN;
SELECT plan(14);

SELECT ok(internal.trend_lower_bar(9, 4, 5, 10, 5, 6), 'lowerBar: lower high, low and close');
SELECT ok(NOT internal.trend_lower_bar(10, 4, 5, 10, 5, 6), 'lowerBar: an equal high is not lower');
SELECT ok(NOT internal.trend_lower_bar(9, 5, 5, 10, 5, 6), 'lowerBar: an equal low is not lower');
SELECT ok(NOT internal.trend_lower_bar(9, 4, 6, 10, 5, 6), 'lowerBar: an equal close is not lower');

SELECT ok(internal.trend_higher_bar(11, 6, 7, 10, 5, 6), 'higherBar: higher high, low and close');
SELECT ok(NOT internal.trend_higher_bar(11, 5, 7, 10, 5, 6), 'higherBar: an equal low is not higher');
SELECT ok(NOT internal.trend_higher_bar(11, 6, 6, 10, 5, 6), 'higherBar: an equal close is not higher');

SELECT ok(internal.trend_outside_bar(11, 4, 10, 5), 'outside: higher high and lower low');
SELECT ok(NOT internal.trend_outside_bar(10, 4, 10, 5), 'outside: an equal high is not outside');
SELECT ok(NOT internal.trend_outside_bar(11, 5, 10, 5), 'outside: an equal low is not outside');

SELECT ok(internal.trend_inside_bar(10, 5, 10, 5), 'inside: the same range is inside (edges count)');
SELECT ok(internal.trend_inside_bar(9.75, 5.25, 10, 5), 'inside: strictly within');
SELECT ok(NOT internal.trend_inside_bar(10.25, 5, 10, 5), 'inside: a tick above the high is not inside');

SELECT ok(
    internal.trend_lower_bar(5000.25, 4990.00, 4995.50, 5000.50, 4990.25, 4995.75),
    'prices compare as exact numeric, one tick apart'
);

SELECT * FROM finish();
ROLLBACK;
