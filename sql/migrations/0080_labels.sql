-- Hand labels of trend starts (made on the chart page of `mechtrade serve`, or imported from CSV)
-- and the role the chart page connects as: it reads market data and signals, writes only labels.

DO $$
BEGIN
    CREATE ROLE mechtrade_web NOLOGIN;
EXCEPTION WHEN duplicate_object THEN
    NULL;
END
$$;
COMMENT ON ROLE mechtrade_web IS
'The chart page (mechtrade serve): reads market and signals, adds and removes labels only.';

CREATE TABLE signals.labels (
    label_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    contract_id text,
    root text,
    timeframe text NOT NULL REFERENCES market.timeframes (timeframe),
    bar timestamptz NOT NULL,
    direction text NOT NULL,
    author text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    removed_at timestamptz,
    removed_by text,
    CONSTRAINT labels_contract_or_root CHECK (num_nonnulls(contract_id, root) = 1),
    CONSTRAINT labels_direction_known CHECK (direction IN ('up', 'down')),
    CONSTRAINT labels_author_not_empty CHECK (author <> ''),
    CONSTRAINT labels_removed_together CHECK ((removed_at IS NULL) = (removed_by IS NULL)),
    CONSTRAINT labels_removed_after_created CHECK (removed_at >= created_at)
);
-- One current label per series, bar and direction (an up and a down start may share a bar).
CREATE UNIQUE INDEX labels_current_key ON signals.labels (
    coalesce(contract_id, root), timeframe, bar, direction
) WHERE removed_at IS NULL;

COMMENT ON TABLE signals.labels IS
'Hand-labelled trend starts, what signals.score_labels() scores the detectors against. Removing '
'a label sets removed_at and removed_by; rows are never deleted, so current labels are WHERE '
'removed_at IS NULL. Each change sends NOTIFY signals_labels_v1.';
COMMENT ON COLUMN signals.labels.label_id IS 'Identity; ascending in creation order.';
COMMENT ON COLUMN signals.labels.contract_id IS
'Gateway contract id the label was made on (NULL when it was made on a root''s series).';
COMMENT ON COLUMN signals.labels.root IS
'Contract root (e.g. MES) for a label made on the continuous series of a root, else NULL.';
COMMENT ON COLUMN signals.labels.timeframe IS 'Bar timeframe (market.timeframes).';
COMMENT ON COLUMN signals.labels.bar IS
'Open time of the bar marked as the start (market.bars.bucket).';
COMMENT ON COLUMN signals.labels.direction IS
'up (an up-move starts at this bar''s low) or down (at its high).';
COMMENT ON COLUMN signals.labels.author IS
'Who made the label (the chart page''s --author, or the CSV import''s).';
COMMENT ON COLUMN signals.labels.created_at IS 'When the label was made or imported.';
COMMENT ON COLUMN signals.labels.removed_at IS
'When the label was removed; NULL while it is current.';
COMMENT ON COLUMN signals.labels.removed_by IS 'Who removed it.';
