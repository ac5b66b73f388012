-- Hindsight and actionable F1 of a detector profile against the hand labels of one series.
CREATE OR REPLACE FUNCTION signals.score_labels(
    profile text,
    contract_id text,
    timeframe text,
    author text DEFAULT NULL,
    window_from timestamptz DEFAULT NULL,
    window_to timestamptz DEFAULT NULL,
    max_delay_bars integer DEFAULT 3
) RETURNS TABLE (
    score text,
    direction text,
    labels bigint,
    detections bigint,
    matched bigint,
    -- precision is a keyword in PostgreSQL: quoted.
    "precision" numeric,  -- noqa: RF06
    recall numeric,
    f1 numeric,
    median_delay_bars double precision
)
LANGUAGE sql
STABLE
AS $$
    WITH current_labels AS (
        SELECT DISTINCT
            l.bar,
            l.direction
        FROM signals.labels AS l
        WHERE
            l.contract_id = score_labels.contract_id
            AND l.timeframe = score_labels.timeframe
            AND l.removed_at IS NULL
            AND (score_labels.author IS NULL OR l.author = score_labels.author)
    ),

    -- Like the scoring tool: by default, from the earliest to the latest label, inclusive.
    score_window AS (
        SELECT
            coalesce(score_labels.window_from, min(current_labels.bar)) AS lo,
            coalesce(score_labels.window_to, max(current_labels.bar)) AS hi
        FROM current_labels
    ),

    lab AS (
        SELECT current_labels.*
        FROM current_labels, score_window
        WHERE current_labels.bar BETWEEN score_window.lo AND score_window.hi
    ),

    -- Detected on the whole series, then clipped to the window.
    det AS (
        SELECT
            k.start_ts AS bar,
            k.direction,
            k.delay_bars,
            k.actionable
        FROM signals.trend_starts_known(
            score_labels.contract_id, score_labels.timeframe, NULL, NULL,
            score_labels.profile, score_labels.max_delay_bars
        ) AS k, score_window
        WHERE k.start_ts BETWEEN score_window.lo AND score_window.hi
    ),

    kinds AS (
        SELECT
            s.score,
            d.direction,
            s.ord * 10 + d.ord AS ord
        FROM (VALUES ('hindsight', 1), ('actionable', 2)) AS s (score, ord)
        CROSS JOIN (VALUES ('up', 1), ('down', 2), ('total', 3)) AS d (direction, ord)
    ),

    counted AS (
        SELECT
            kinds.score,
            kinds.direction,
            kinds.ord,
            (
                SELECT count(*) FROM lab
                WHERE kinds.direction IN ('total', lab.direction)
            ) AS n_labels,
            (
                SELECT count(*) FROM det
                WHERE
                    kinds.direction IN ('total', det.direction)
                    AND (kinds.score = 'hindsight' OR det.actionable)
            ) AS n_detections,
            m.n_matched,
            m.median_delay
        FROM kinds
        CROSS JOIN LATERAL (
            SELECT
                count(*) AS n_matched,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY det.delay_bars) AS median_delay
            FROM det
            INNER JOIN lab ON det.bar = lab.bar AND det.direction = lab.direction
            WHERE
                kinds.direction IN ('total', det.direction)
                AND (kinds.score = 'hindsight' OR det.actionable)
        ) AS m
    ),

    rated AS (
        SELECT
            counted.*,
            CASE
                WHEN counted.n_detections > 0
                    THEN counted.n_matched::numeric / counted.n_detections
                ELSE 0
            END AS p,
            CASE
                WHEN counted.n_labels > 0 THEN counted.n_matched::numeric / counted.n_labels
                ELSE 0
            END AS r
        FROM counted
    )

    SELECT
        rated.score,
        rated.direction,
        rated.n_labels,
        rated.n_detections,
        rated.n_matched,
        rated.p,
        rated.r,
        CASE WHEN rated.p + rated.r > 0 THEN 2 * rated.p * rated.r / (rated.p + rated.r) ELSE 0 END,
        rated.median_delay
    FROM rated
    ORDER BY rated.ord
$$;

COMMENT ON FUNCTION signals.score_labels(
    text, text, text, text, timestamptz, timestamptz, integer
) IS
'How well a detector profile finds the hand labels (signals.labels) of one contract and '
'timeframe, by author or (NULL) everyone''s. A detection matches a label with the same bar and '
'direction. Scored inside [window_from, window_to] (inclusive; default: the earliest and the '
'latest label), detections computed on the whole series. Six rows: score hindsight (every '
'start, however late it became known) and actionable (only starts with actionable = true in '
'signals.trend_starts_known(): rule not FORCED, confirmed at most max_delay_bars bars after the '
'start bar; max_delay_bars NULL: not FORCED is enough), each for direction up, down and '
'total: counts, precision, recall, f1, and the median confirmation delay in bars of the matched '
'detections.';
