-- The bars a run analysed for the first time, numbered, as the next recheck compares them.
CREATE OR REPLACE FUNCTION internal.trend_record_inputs(
    p_contract_id text,
    p_timeframe text,
    p_profile text,
    p_window internal.trend_window,
    p_keep_no bigint
) RETURNS void
LANGUAGE sql
VOLATILE
AS $$
    INSERT INTO internal.trend_inputs (
        contract_id, timeframe, profile, bucket, bar_no, open, high, low, close
    )
    SELECT
        p_contract_id,
        p_timeframe,
        p_profile,
        t.bucket,
        t.bar_no,
        t.open,
        t.high,
        t.low,
        t.close
    FROM (
        SELECT
            u.*,
            p_window.first_bar_no + p_window.new_from - 2 + u.ord AS bar_no
        FROM unnest(
            p_window.ts[p_window.new_from:], p_window.open[p_window.new_from:],
            p_window.high[p_window.new_from:], p_window.low[p_window.new_from:],
            p_window.close[p_window.new_from:]
        ) WITH ORDINALITY AS u (bucket, open, high, low, close, ord)
    ) AS t
    WHERE t.bar_no >= p_keep_no;
$$;

COMMENT ON FUNCTION internal.trend_record_inputs(
    text, text, text, internal.trend_window, bigint
) IS
'Stores the bars of p_window from index new_from on (those not analysed before) in '
'internal.trend_inputs with their bar numbers, except those numbered below p_keep_no.';
