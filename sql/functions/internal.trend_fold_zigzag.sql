-- The realtime detector ("zigzag" algorithm) as a left fold over bars held in arrays, with the
-- calling convention and output of internal.trend_fold_og_fixed. Starts alternate: while looking
-- for an up start the candidate (PUS) is the lowest low since the last down start, and the first
-- bar with a higher high and a higher low than the bar before it confirms it; down starts mirror
-- that (highest high since the last up start, confirmed by a lower high and a lower low). Every
-- start is confirmed by a rule on the bars seen so far, so none is forced.
CREATE OR REPLACE FUNCTION internal.trend_fold_zigzag(
    p_ts timestamptz[],
    p_open numeric[],
    p_high numeric[],
    p_low numeric[],
    p_close numeric[],
    p_base bigint,
    p_start integer,
    p_state jsonb,
    p_trace boolean
) RETURNS SETOF signals.trend_event
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
AS $$
DECLARE
    v_dir text;
    v_i integer;
    v_k integer;
    v_n integer := coalesce(array_length(p_high, 1), 0);
    v_off bigint := p_base - 1;
    v_p integer;
    v_pds integer;
    v_pus integer;
BEGIN
    IF p_state IS NOT NULL THEN
        v_dir := p_state ->> 'dir';
        v_pus := (p_state ->> 'pus')::bigint - v_off;
        v_pds := (p_state ->> 'pds')::bigint - v_off;
    ELSIF v_n >= 1 THEN
        -- Fresh: bar 1 is the candidate of both directions.
        v_pus := 1;
        v_pds := 1;
    END IF;
    IF p_trace AND p_start <= 2 AND v_n >= 1 THEN
        RETURN NEXT (
            v_off + 1, p_ts[1], 'STATE', v_off + 1, p_ts[1], NULL, NULL,
            jsonb_build_object('dir', v_dir, 'pus', v_off + v_pus, 'pds', v_off + v_pds)
        )::signals.trend_event;
    END IF;

    FOR v_i IN greatest(p_start, 2) .. v_n LOOP
        IF
            v_pus IS NOT NULL
            AND p_high[v_i] > p_high[v_i - 1] AND p_low[v_i] > p_low[v_i - 1]
        THEN
            -- ZU: the up start is confirmed; the new PDS is the highest high after it.
            v_p := v_pus;
            RETURN NEXT (
                v_off + v_i, p_ts[v_i], 'CUS', v_off + v_p, p_ts[v_p], p_low[v_p], 'ZU', NULL
            )::signals.trend_event;
            v_dir := 'up';
            v_pus := NULL;
            v_pds := v_p + 1;
            FOR v_k IN v_p + 2 .. v_i LOOP
                IF p_high[v_k] > p_high[v_pds] THEN
                    v_pds := v_k;
                END IF;
            END LOOP;
        ELSIF
            v_pds IS NOT NULL
            AND p_high[v_i] < p_high[v_i - 1] AND p_low[v_i] < p_low[v_i - 1]
        THEN
            -- ZD: the down start is confirmed; the new PUS is the lowest low after it.
            v_p := v_pds;
            RETURN NEXT (
                v_off + v_i, p_ts[v_i], 'CDS', v_off + v_p, p_ts[v_p], p_high[v_p], 'ZD', NULL
            )::signals.trend_event;
            v_dir := 'down';
            v_pds := NULL;
            v_pus := v_p + 1;
            FOR v_k IN v_p + 2 .. v_i LOOP
                IF p_low[v_k] < p_low[v_pus] THEN
                    v_pus := v_k;
                END IF;
            END LOOP;
        ELSE
            -- No confirmation: a more extreme bar becomes the candidate (strictly: ties keep
            -- the earlier bar).
            IF v_pus IS NOT NULL AND p_low[v_i] < p_low[v_pus] THEN
                v_pus := v_i;
                IF p_trace THEN
                    RETURN NEXT (
                        v_off + v_i, p_ts[v_i], 'PUS_SET', v_off + v_i, p_ts[v_i], NULL, NULL,
                        NULL
                    )::signals.trend_event;
                END IF;
            END IF;
            IF v_pds IS NOT NULL AND p_high[v_i] > p_high[v_pds] THEN
                v_pds := v_i;
                IF p_trace THEN
                    RETURN NEXT (
                        v_off + v_i, p_ts[v_i], 'PDS_SET', v_off + v_i, p_ts[v_i], NULL, NULL,
                        NULL
                    )::signals.trend_event;
                END IF;
            END IF;
        END IF;

        IF p_trace THEN
            RETURN NEXT (
                v_off + v_i, p_ts[v_i], 'STATE', v_off + v_i, p_ts[v_i], NULL, NULL,
                jsonb_build_object('dir', v_dir, 'pus', v_off + v_pus, 'pds', v_off + v_pds)
            )::signals.trend_event;
        END IF;
    END LOOP;

    IF NOT p_trace THEN
        v_k := greatest(v_n, p_start - 1);
        RETURN NEXT (
            v_off + v_k, p_ts[v_k], 'STATE', v_off + v_k, p_ts[v_k], NULL, NULL,
            jsonb_build_object('dir', v_dir, 'pus', v_off + v_pus, 'pds', v_off + v_pds)
        )::signals.trend_event;
    END IF;
END;
$$;

COMMENT ON FUNCTION internal.trend_fold_zigzag(
    timestamptz[], numeric[], numeric[], numeric[], numeric[], bigint, integer, jsonb, boolean
) IS
'The zigzag detector of the realtime profile over bars given as arrays (calling convention of '
'internal.trend_fold_og_fixed). State: dir (last confirmed direction), pus and pds (bar numbers; '
'only the candidate of the direction looked for is set). Up start: the lowest low since the '
'last down start, confirmed by the first bar with a higher high and a higher low (rule ZU); '
'down start: the mirror (ZD).';
