-- Replay, first half: the bars a trend job run analyses, continuing from the state after bar
-- p_bar_no (from the watermark, or the checkpoint a rewind returned; NULL: from the first bar).
-- Read from the bar before the oldest one the state refers to, through
-- internal.trend_series_bars.
CREATE OR REPLACE FUNCTION internal.trend_replay_window(
    p_contract_id text,
    p_timeframe text,
    p_profile text,
    p_bar_no bigint,
    p_bar_ts timestamptz,
    p_state jsonb
) RETURNS internal.trend_window
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    v_from_ts timestamptz;
    v_window internal.trend_window;
BEGIN
    IF p_state IS NULL THEN
        SELECT * INTO v_window
        FROM internal.trend_series_bars(p_contract_id, p_timeframe, NULL, NULL);
        RETURN v_window;
    END IF;
    v_window.first_bar_no := internal.trend_replay_from(p_bar_no, p_state);
    SELECT ti.bucket INTO v_from_ts
    FROM internal.trend_inputs AS ti
    WHERE
        ti.contract_id = p_contract_id
        AND ti.timeframe = p_timeframe
        AND ti.profile = p_profile
        AND ti.bar_no = v_window.first_bar_no;
    IF v_from_ts IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT w.ts, w.open, w.high, w.low, w.close
    INTO v_window.ts, v_window.open, v_window.high, v_window.low, v_window.close
    FROM internal.trend_series_bars(p_contract_id, p_timeframe, v_from_ts, NULL) AS w;
    v_window.new_from := (p_bar_no - v_window.first_bar_no + 2)::integer;
    v_window.state := p_state;
    -- A bar the state refers to, older than anything compared, was inserted or removed.
    IF v_window.ts[v_window.new_from - 1] IS DISTINCT FROM p_bar_ts THEN
        RETURN NULL;
    END IF;
    RETURN v_window;
END;
$$;

COMMENT ON FUNCTION internal.trend_replay_window(
    text, text, text, bigint, timestamptz, jsonb
) IS
'The closed bars a trend job run replays, as a internal.trend_window continuing from detector '
'state p_state after bar p_bar_no (open time p_bar_ts): from internal.trend_replay_from on, '
'numbered by the analysed bars kept in internal.trend_inputs. The whole series when p_state is '
'NULL; NULL when the bars no longer line up with the state (a bar it refers to was inserted or '
'removed, or its analysed bars are gone): the caller then recomputes the whole series.';
