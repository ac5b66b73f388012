-- Variant B of the trend-start rules (docs/trend-starts.md section 8) as a left fold over bars
-- held in arrays, with the
-- same calling convention as internal.trend_fold_og_fixed. Only down starts are confirmed by rules
-- (D1-D5, never frozen); each up start is the lowest low between two consecutive down starts.
CREATE OR REPLACE FUNCTION internal.trend_fold_variant_b(
    p_ts timestamptz[],
    p_open numeric[],
    p_high numeric[],
    p_low numeric[],
    p_close numeric[],
    p_base bigint,
    p_start integer,
    p_state jsonb,
    p_down_at_swing_high boolean,
    p_up_between_adjacent_downs boolean,
    p_trace boolean
) RETURNS SETOF signals.trend_event
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
AS $$
DECLARE
    v_d integer;
    v_i integer;
    v_k integer;
    v_last_down integer;
    v_n integer := coalesce(array_length(p_high, 1), 0);
    v_nh boolean;
    v_off bigint := p_base - 1;
    v_pb boolean;
    v_pds integer;
    v_rule text;
    v_top integer;
    v_x integer;
    -- running max high and min low over (pds + 1 .. v_dr_end)
    v_dr_anchor integer;
    v_dr_end integer;
    v_dr_max numeric;
    v_dr_min numeric;
BEGIN
    IF p_state IS NOT NULL THEN
        v_pds := (p_state ->> 'pds')::bigint - v_off;
        v_last_down := (p_state ->> 'last_down')::bigint - v_off;
    END IF;
    IF p_trace AND p_start <= 2 AND v_n >= 1 THEN
        RETURN NEXT (
            v_off + 1, p_ts[1], 'STATE', v_off + 1, p_ts[1], NULL, NULL,
            jsonb_build_object('pds', NULL, 'last_down', NULL)
        )::signals.trend_event;
    END IF;

    FOR v_i IN greatest(p_start, 2) .. v_n LOOP
        v_d := v_pds;
        v_rule := NULL;
        IF v_d IS NOT NULL THEN
            IF v_dr_anchor IS DISTINCT FROM v_d OR v_dr_end > v_i - 1 THEN
                v_dr_anchor := v_d;
                v_dr_end := v_d;
                v_dr_max := NULL;
                v_dr_min := NULL;
            END IF;
            FOR v_k IN v_dr_end + 1 .. v_i - 1 LOOP
                IF v_dr_max IS NULL OR p_high[v_k] > v_dr_max THEN
                    v_dr_max := p_high[v_k];
                END IF;
                IF v_dr_min IS NULL OR p_low[v_k] < v_dr_min THEN
                    v_dr_min := p_low[v_k];
                END IF;
            END LOOP;
            v_dr_end := greatest(v_dr_end, v_i - 1);
            v_nh := v_dr_max IS NULL OR v_dr_max <= p_high[v_d];
            v_pb := v_dr_min IS NOT NULL AND v_dr_min <= p_low[v_d];
            IF v_nh THEN
                v_rule := internal.trend_down_rule(
                    p_open[v_i], p_high[v_i], p_low[v_i], p_close[v_i],
                    p_high[v_i - 1], p_low[v_i - 1], p_close[v_i - 1],
                    p_open[v_d], p_high[v_d], p_low[v_d], v_pb
                );
            END IF;
        END IF;

        IF v_rule IS NOT NULL THEN
            v_top := v_d;
            IF v_last_down IS NOT NULL AND v_d > v_last_down + 1 THEN
                v_x := v_last_down + 1;
                FOR v_k IN v_last_down + 2 .. v_d - 1 LOOP
                    IF p_low[v_k] < p_low[v_x] THEN
                        v_x := v_k;
                    END IF;
                END LOOP;
                RETURN NEXT (
                    v_off + v_i, p_ts[v_i], 'CUS_FORCED', v_off + v_x, p_ts[v_x], p_low[v_x],
                    'FORCED', NULL
                )::signals.trend_event;
                -- The swing high: the highest high after that up start, up to the PDS.
                IF p_down_at_swing_high THEN
                    v_top := v_x + 1;
                    FOR v_k IN v_x + 2 .. v_d LOOP
                        IF p_high[v_k] > p_high[v_top] THEN
                            v_top := v_k;
                        END IF;
                    END LOOP;
                END IF;
            ELSIF p_up_between_adjacent_downs AND v_d = v_last_down + 1 THEN
                -- No bar between two down starts: the second one made the low between them.
                RETURN NEXT (
                    v_off + v_i, p_ts[v_i], 'CUS_FORCED', v_off + v_d, p_ts[v_d], p_low[v_d],
                    'FORCED', NULL
                )::signals.trend_event;
            END IF;
            RETURN NEXT (
                v_off + v_i, p_ts[v_i], 'CDS', v_off + v_top, p_ts[v_top], p_high[v_top], v_rule,
                NULL
            )::signals.trend_event;
            v_last_down := v_top;
            IF v_pds = v_d THEN
                v_pds := NULL;
            END IF;
            IF v_rule = 'D4' THEN
                v_pds := v_i;
                IF p_trace THEN
                    RETURN NEXT (
                        v_off + v_i, p_ts[v_i], 'PDS_SET', v_off + v_i, p_ts[v_i], NULL, 'D4',
                        NULL
                    )::signals.trend_event;
                END IF;
            END IF;
        END IF;

        -- A new PDS: the current bar if it makes a higher high and closes down (unconditionally),
        -- else the previous bar if nothing fired, the current bar did not exceed it, and it is
        -- higher than the PDS held.
        v_x := NULL;
        IF p_high[v_i] > p_high[v_i - 1] AND p_close[v_i] < p_open[v_i] THEN
            v_x := v_i;
        ELSIF v_rule IS NULL AND p_high[v_i] <= p_high[v_i - 1]
            AND (v_pds IS NULL OR p_high[v_i - 1] > p_high[v_pds]) THEN
            v_x := v_i - 1;
        END IF;
        IF v_x IS NOT NULL THEN
            v_pds := v_x;
            IF p_trace THEN
                RETURN NEXT (
                    v_off + v_i, p_ts[v_i], 'PDS_SET', v_off + v_x, p_ts[v_x], NULL,
                    CASE WHEN v_x = v_i THEN 'N1' ELSE 'N2' END, NULL
                )::signals.trend_event;
            END IF;
        END IF;

        IF p_trace THEN
            RETURN NEXT (
                v_off + v_i, p_ts[v_i], 'STATE', v_off + v_i, p_ts[v_i], NULL, NULL,
                jsonb_build_object('pds', v_off + v_pds, 'last_down', v_off + v_last_down)
            )::signals.trend_event;
        END IF;
    END LOOP;

    IF NOT p_trace THEN
        v_x := greatest(v_n, p_start - 1);
        RETURN NEXT (
            v_off + v_x, p_ts[v_x], 'STATE', v_off + v_x, p_ts[v_x], NULL, NULL,
            jsonb_build_object('pds', v_off + v_pds, 'last_down', v_off + v_last_down)
        )::signals.trend_event;
    END IF;
END;
$$;

COMMENT ON FUNCTION internal.trend_fold_variant_b(
    timestamptz[], numeric[], numeric[], numeric[], numeric[], bigint, integer, jsonb,
    boolean, boolean, boolean
) IS
'Variant B of the trend-start rules (docs/trend-starts.md section 8) over bars given as arrays, '
'with the calling '
'convention and output of internal.trend_fold_og_fixed. State: pds and last_down (bar numbers). '
'The options of the swing profile: p_down_at_swing_high puts each down start on the highest '
'high after the up start emitted with it (up to the PDS, earliest on ties); '
'p_up_between_adjacent_downs makes a down start on the bar right after the previous one an up '
'start as well.';
