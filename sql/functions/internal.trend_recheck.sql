-- Recheck: did a bar change after the detector analysed it? Compares internal.trend_inputs with
-- market.series_bars from internal.trend_recheck_from through the watermark's bar.
CREATE OR REPLACE FUNCTION internal.trend_recheck(
    p_head internal.trend_watermarks,
    p_recheck_bars integer,
    p_changed_from timestamptz
) RETURNS timestamptz
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    v_changed timestamptz;
    v_check_from timestamptz;
    v_check_no bigint := internal.trend_recheck_from(p_head.bar_no, p_head.state, p_recheck_bars);
BEGIN
    -- From the first bar still kept there (retention keeps the whole window, but a recheck_bars
    -- raised since the last run reaches bars already pruned).
    SELECT ti.bar_no, ti.bucket INTO v_check_no, v_check_from
    FROM internal.trend_inputs AS ti
    WHERE
        ti.contract_id = p_head.contract_id
        AND ti.timeframe = p_head.timeframe
        AND ti.profile = p_head.profile
        AND ti.bar_no >= v_check_no
    ORDER BY ti.bar_no
    LIMIT 1;
    SELECT min(coalesce(now_bars.bucket, seen.bucket)) INTO v_changed
    FROM (
        SELECT mb.bucket, mb.open, mb.high, mb.low, mb.close
        FROM market.series_bars AS mb
        WHERE
            mb.series = p_head.contract_id
            AND mb.timeframe = p_head.timeframe
            AND mb.is_closed
            AND mb.bucket >= v_check_from
            AND mb.bucket <= p_head.bar_ts
    ) AS now_bars
    FULL JOIN (
        SELECT ti.bucket, ti.open, ti.high, ti.low, ti.close
        FROM internal.trend_inputs AS ti
        WHERE
            ti.contract_id = p_head.contract_id
            AND ti.timeframe = p_head.timeframe
            AND ti.profile = p_head.profile
            AND ti.bar_no >= v_check_no
    ) AS seen ON now_bars.bucket = seen.bucket
    WHERE
        (now_bars.open, now_bars.high, now_bars.low, now_bars.close)
        IS DISTINCT FROM (seen.open, seen.high, seen.low, seen.close);
    v_changed := least(v_changed, p_changed_from);
    RETURN CASE WHEN v_changed <= p_head.bar_ts THEN v_changed END;
END;
$$;

COMMENT ON FUNCTION internal.trend_recheck(internal.trend_watermarks, integer, timestamptz) IS
'Where a trend job run must recompute from: the open time of the earliest bar that differs '
'between market.series_bars and the bars analysed (internal.trend_inputs, compared from '
'internal.trend_recheck_from through the watermark p_head), or p_changed_from if earlier; NULL '
'when neither is at or before the watermark''s bar.';
