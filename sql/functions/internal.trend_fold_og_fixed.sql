-- The baseline trend-start detector (docs/trend-starts.md sections 1-7) as a left fold over
-- bars held in arrays. Positions 1..n index the arrays; bar numbers are p_base - 1 + position.
-- Positions before p_start are context only (already processed; p_state is the state after
-- p_start - 1). The range helpers of section 2 are kept as running aggregates that reset when
-- their anchor (PUS or PDS) changes, so a long series costs O(n).
CREATE OR REPLACE FUNCTION internal.trend_fold_og_fixed(
    p_ts timestamptz[],
    p_open numeric[],
    p_high numeric[],
    p_low numeric[],
    p_close numeric[],
    p_base bigint,
    p_start integer,
    p_state jsonb,
    p_exhaustion_max_age integer,
    p_containment_grace integer,
    p_trace boolean
) RETURNS SETOF signals.trend_event
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
AS $$
DECLARE
    v_cds text;
    v_cont_ref integer;
    v_cont_start integer;
    v_cus text;
    v_d integer;
    v_frozen boolean;
    v_i integer;
    v_k integer;
    v_last_bar integer;
    v_last_dir text;
    v_m numeric;
    v_n integer := coalesce(array_length(p_high, 1), 0);
    v_n1 boolean;
    v_nh boolean;
    v_off bigint := p_base - 1;
    v_p integer;
    v_pb boolean;
    v_pds integer;
    v_pus integer;
    v_r integer;
    v_undercut boolean;
    v_x integer;
    -- running aggregates: min low over (pus + 1 .. v_x1_end); max high and min low over
    -- (pds + 1 .. v_dr_end)
    v_dr_anchor integer;
    v_dr_end integer;
    v_dr_max numeric;
    v_dr_min numeric;
    v_x1_anchor integer;
    v_x1_end integer;
    v_x1_min numeric;
BEGIN
    IF p_state IS NOT NULL THEN
        v_pus := (p_state ->> 'pus')::bigint - v_off;
        v_pds := (p_state ->> 'pds')::bigint - v_off;
        v_last_dir := p_state ->> 'last_dir';
        v_last_bar := (p_state ->> 'last_bar')::bigint - v_off;
        v_cont_ref := (p_state ->> 'cont_ref')::bigint - v_off;
        v_cont_start := (p_state ->> 'cont_start')::bigint - v_off;
    END IF;
    IF p_trace AND p_start <= 2 AND v_n >= 1 THEN
        RETURN NEXT (
            v_off + 1, p_ts[1], 'STATE', v_off + 1, p_ts[1], NULL, NULL,
            jsonb_build_object(
                'pus', NULL, 'pds', NULL, 'last_dir', NULL, 'last_bar', NULL,
                'cont_ref', NULL, 'cont_start', NULL
            )
        )::signals.trend_event;
    END IF;

    FOR v_i IN greatest(p_start, 2) .. v_n LOOP
        -- Step 1 (X1): drop the PUS if a bar strictly between it and the previous bar undercut it.
        IF v_pus IS NOT NULL AND v_pus + 1 <= v_i - 2 THEN
            IF v_x1_anchor IS DISTINCT FROM v_pus OR v_x1_end > v_i - 2 THEN
                v_x1_anchor := v_pus;
                v_x1_end := v_pus;
                v_x1_min := NULL;
            END IF;
            FOR v_k IN v_x1_end + 1 .. v_i - 2 LOOP
                IF v_x1_min IS NULL OR p_low[v_k] < v_x1_min THEN
                    v_x1_min := p_low[v_k];
                END IF;
            END LOOP;
            v_x1_end := v_i - 2;
            IF v_x1_min < p_low[v_pus] THEN
                IF p_trace THEN
                    RETURN NEXT (
                        v_off + v_i, p_ts[v_i], 'PUS_DROPPED', v_off + v_pus, p_ts[v_pus],
                        NULL, 'X1', NULL
                    )::signals.trend_event;
                END IF;
                v_pus := NULL;
            END IF;
        END IF;

        -- Step 2: snapshot.
        v_p := v_pus;
        v_d := v_pds;

        -- Step 3: containment.
        IF v_cont_ref IS NOT NULL AND NOT internal.trend_inside_bar(
            p_high[v_i], p_low[v_i], p_high[v_cont_ref], p_low[v_cont_ref]
        ) THEN
            IF p_trace THEN
                RETURN NEXT (
                    v_off + v_i, p_ts[v_i], 'CONTAINMENT_END', v_off + v_cont_ref,
                    p_ts[v_cont_ref], NULL, NULL, NULL
                )::signals.trend_event;
            END IF;
            v_cont_ref := NULL;
            v_cont_start := NULL;
        END IF;
        IF v_cont_ref IS NULL THEN
            v_r := coalesce(v_d, v_p);
            IF v_r IS NOT NULL AND internal.trend_inside_bar(
                p_high[v_i], p_low[v_i], p_high[v_r], p_low[v_r]
            ) THEN
                v_cont_ref := v_r;
                v_cont_start := v_i;
                IF p_trace THEN
                    RETURN NEXT (
                        v_off + v_i, p_ts[v_i], 'CONTAINMENT_START', v_off + v_r, p_ts[v_r],
                        NULL, NULL, NULL
                    )::signals.trend_event;
                END IF;
            END IF;
        END IF;
        v_frozen := v_cont_ref IS NOT NULL AND v_i > v_cont_start + p_containment_grace;

        -- Step 4: CUS test (rules U1-U5, first that holds).
        v_cus := NULL;
        IF v_p IS NOT NULL AND NOT v_frozen THEN
            -- undercut(P, i - 1); the X1 aggregate covers P + 1 .. i - 2 here.
            v_undercut := false;
            IF v_p + 1 <= v_i - 1 THEN
                v_m := p_low[v_i - 1];
                IF v_p + 1 <= v_i - 2 THEN
                    v_m := least(v_m, v_x1_min);
                END IF;
                v_undercut := v_m < p_low[v_p];
            END IF;
            IF internal.trend_lower_bar(
                p_high[v_i], p_low[v_i], p_close[v_i],
                p_high[v_i - 1], p_low[v_i - 1], p_close[v_i - 1]
            )
            AND NOT (v_d IS NOT NULL AND p_low[v_i] < p_low[v_d])
            AND v_i - v_p <= p_exhaustion_max_age THEN
                v_cus := 'U1';
            ELSIF v_d IS NOT NULL AND v_d > v_p AND p_low[v_i] < p_low[v_d]
                AND p_high[v_i] <= p_high[v_d] AND p_close[v_i] > p_close[v_i - 1] THEN
                v_cus := 'U2';
            ELSIF internal.trend_outside_bar(
                p_high[v_i], p_low[v_i], p_high[v_i - 1], p_low[v_i - 1]
            ) AND p_close[v_i] < p_open[v_i] THEN
                v_cus := 'U3';
            ELSIF v_d IS NOT NULL AND internal.trend_outside_bar(
                p_high[v_i], p_low[v_i], p_high[v_i - 1], p_low[v_i - 1]
            )
            AND p_close[v_i] > p_close[v_i - 1] AND p_close[v_i] > p_open[v_i]
            AND p_low[v_i] < p_low[v_d] THEN
                v_cus := 'U4';
            ELSIF v_d IS NOT NULL AND v_d > v_p AND NOT v_undercut
                AND p_high[v_i] > p_high[v_d] AND p_close[v_i] > p_close[v_i - 1]
                AND p_close[v_i] > p_open[v_i] THEN
                v_cus := 'U5';
            END IF;
        END IF;

        -- Step 5: CDS test (rules D1-D5) with NH = noHigherHigh(D, i - 1), PB = pullback(D, i - 1).
        v_cds := NULL;
        IF v_d IS NOT NULL AND NOT v_frozen THEN
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
                v_cds := internal.trend_down_rule(
                    p_open[v_i], p_high[v_i], p_low[v_i], p_close[v_i],
                    p_high[v_i - 1], p_low[v_i - 1], p_close[v_i - 1],
                    p_open[v_d], p_high[v_d], p_low[v_d], v_pb
                );
            END IF;
        END IF;

        -- Step 6a: apply the CUS (with a forced down start before it if the last start was up).
        IF v_cus IS NOT NULL THEN
            IF v_last_dir = 'up' AND v_p > v_last_bar + 1 THEN
                v_x := v_last_bar + 1;
                FOR v_k IN v_last_bar + 2 .. v_p - 1 LOOP
                    IF p_high[v_k] > p_high[v_x] THEN
                        v_x := v_k;
                    END IF;
                END LOOP;
                RETURN NEXT (
                    v_off + v_i, p_ts[v_i], 'CDS_FORCED', v_off + v_x, p_ts[v_x], p_high[v_x],
                    'FORCED', NULL
                )::signals.trend_event;
            END IF;
            RETURN NEXT (
                v_off + v_i, p_ts[v_i], 'CUS', v_off + v_p, p_ts[v_p], p_low[v_p], v_cus, NULL
            )::signals.trend_event;
            v_last_dir := 'up';
            v_last_bar := v_p;
            v_pus := NULL;
            -- A1 offers the confirming bar, A2 the start just confirmed, as the new PDS.
            v_x := CASE
                WHEN v_cus = 'U3' THEN v_i
                WHEN v_cus <> 'U4' AND p_high[v_i] <= p_high[v_p] THEN v_p
            END;
            IF v_x IS NOT NULL
                AND NOT (v_off + v_x > 1 AND p_high[v_x] < p_high[v_x - 1])
                AND (v_pds IS NULL OR p_high[v_x] > p_high[v_pds]) THEN
                v_pds := v_x;
                IF p_trace THEN
                    RETURN NEXT (
                        v_off + v_i, p_ts[v_i], 'PDS_SET', v_off + v_x, p_ts[v_x], NULL,
                        CASE WHEN v_x = v_i THEN 'A1' ELSE 'A2' END, NULL
                    )::signals.trend_event;
                END IF;
            END IF;
        END IF;

        -- Step 6b: apply the CDS (with a forced up start before it if the last start was down).
        IF v_cds IS NOT NULL THEN
            IF v_last_dir = 'down' AND v_d > v_last_bar + 1 THEN
                v_x := v_last_bar + 1;
                FOR v_k IN v_last_bar + 2 .. v_d - 1 LOOP
                    IF p_low[v_k] < p_low[v_x] THEN
                        v_x := v_k;
                    END IF;
                END LOOP;
                RETURN NEXT (
                    v_off + v_i, p_ts[v_i], 'CUS_FORCED', v_off + v_x, p_ts[v_x], p_low[v_x],
                    'FORCED', NULL
                )::signals.trend_event;
            END IF;
            RETURN NEXT (
                v_off + v_i, p_ts[v_i], 'CDS', v_off + v_d, p_ts[v_d], p_high[v_d], v_cds, NULL
            )::signals.trend_event;
            v_last_dir := 'down';
            v_last_bar := v_d;
            IF v_pus IS NOT NULL AND v_pus < v_d THEN
                IF p_trace THEN
                    RETURN NEXT (
                        v_off + v_i, p_ts[v_i], 'PUS_DROPPED', v_off + v_pus, p_ts[v_pus],
                        NULL, 'X2', NULL
                    )::signals.trend_event;
                END IF;
                v_pus := NULL;
            END IF;
            IF v_pds = v_d THEN
                v_pds := NULL;
            END IF;
        END IF;

        -- Step 7: new pending starts, unless blocked by a containment that began earlier.
        IF v_cont_ref IS NULL OR v_cont_start = v_i THEN
            v_n1 := false;
            IF v_cds IS NULL AND p_high[v_i] > p_high[v_i - 1] AND p_close[v_i] < p_open[v_i]
                AND NOT (v_off + v_i > 1 AND p_high[v_i] < p_high[v_i - 1])
                AND (v_pds IS NULL OR p_high[v_i] > p_high[v_pds]) THEN
                v_pds := v_i;
                v_n1 := true;
                IF p_trace THEN
                    RETURN NEXT (
                        v_off + v_i, p_ts[v_i], 'PDS_SET', v_off + v_i, p_ts[v_i], NULL, 'N1',
                        NULL
                    )::signals.trend_event;
                END IF;
            END IF;
            IF v_cds IS NULL AND NOT v_n1 AND p_high[v_i] <= p_high[v_i - 1]
                AND NOT (v_off + v_i - 1 > 1 AND p_high[v_i - 1] < p_high[v_i - 2])
                AND (v_pds IS NULL OR p_high[v_i - 1] > p_high[v_pds]) THEN
                v_pds := v_i - 1;
                IF p_trace THEN
                    RETURN NEXT (
                        v_off + v_i, p_ts[v_i], 'PDS_SET', v_off + v_i - 1, p_ts[v_i - 1], NULL,
                        'N2', NULL
                    )::signals.trend_event;
                END IF;
            END IF;
            IF v_cus IS NULL AND NOT v_n1
                AND (
                    p_low[v_i] >= p_low[v_i - 1]
                    OR (
                        internal.trend_outside_bar(
                            p_high[v_i], p_low[v_i], p_high[v_i - 1], p_low[v_i - 1]
                        )
                        AND p_close[v_i] < p_open[v_i]
                    )
                )
                AND (v_pus IS NULL OR p_low[v_i - 1] < p_low[v_pus]) THEN
                v_pus := v_i - 1;
                IF p_trace THEN
                    RETURN NEXT (
                        v_off + v_i, p_ts[v_i], 'PUS_SET', v_off + v_i - 1, p_ts[v_i - 1], NULL,
                        'N3', NULL
                    )::signals.trend_event;
                END IF;
            END IF;
        END IF;

        IF p_trace THEN
            RETURN NEXT (
                v_off + v_i, p_ts[v_i], 'STATE', v_off + v_i, p_ts[v_i], NULL, NULL,
                jsonb_build_object(
                    'pus', v_off + v_pus, 'pds', v_off + v_pds, 'last_dir', v_last_dir,
                    'last_bar', v_off + v_last_bar, 'cont_ref', v_off + v_cont_ref,
                    'cont_start', v_off + v_cont_start
                )
            )::signals.trend_event;
        END IF;
    END LOOP;

    IF NOT p_trace THEN
        v_x := greatest(v_n, p_start - 1);
        RETURN NEXT (
            v_off + v_x, p_ts[v_x], 'STATE', v_off + v_x, p_ts[v_x], NULL, NULL,
            jsonb_build_object(
                'pus', v_off + v_pus, 'pds', v_off + v_pds, 'last_dir', v_last_dir,
                'last_bar', v_off + v_last_bar, 'cont_ref', v_off + v_cont_ref,
                'cont_start', v_off + v_cont_start
            )
        )::signals.trend_event;
    END IF;
END;
$$;

COMMENT ON FUNCTION internal.trend_fold_og_fixed(
    timestamptz[], numeric[], numeric[], numeric[], numeric[], bigint, integer, jsonb,
    integer, integer, boolean
) IS
'The baseline trend-start detector (docs/trend-starts.md sections 1-7) over bars given as '
'arrays of open time, open, high, low, close. p_base: bar number of element 1; elements '
'before p_start are context already processed, with p_state the detector state after element '
'p_start - 1 (NULL: fresh). '
'Returns the starts (CUS, CDS, CUS_FORCED, CDS_FORCED) in the order they are raised, then one '
'STATE row; with p_trace every event and the state after every bar. Starts are not yet '
'deduplicated (section 7 there). Parameters come from signals.trend_profiles via '
'internal.trend_detect.';
