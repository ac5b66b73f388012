-- Replay, second half: the detector over a window, from its state, as one array in processing
-- order (the last element is the STATE row after the window's last bar).
CREATE OR REPLACE FUNCTION internal.trend_replay(
    p_profile text, p_window internal.trend_window
) RETURNS signals.trend_event[]
LANGUAGE sql
STABLE
AS $$
    SELECT
        array_agg(
            (d.at_bar, d.at_ts, d.event, d.bar, d.bar_ts, d.price, d.rule, d.state
            )::signals.trend_event
            ORDER BY d.ord
        )
    FROM internal.trend_detect(
        p_profile, p_window.ts, p_window.open, p_window.high, p_window.low, p_window.close,
        p_window.first_bar_no, greatest(p_window.new_from, 2), p_window.state, FALSE
    ) WITH ORDINALITY AS d (at_bar, at_ts, event, bar, bar_ts, price, rule, state, ord)
$$;

COMMENT ON FUNCTION internal.trend_replay(text, internal.trend_window) IS
'The detector of p_profile over the bars of p_window from its state (no trace): the starts '
'raised, then the STATE row after the last bar, as one array in processing order.';
