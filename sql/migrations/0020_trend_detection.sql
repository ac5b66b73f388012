-- Trend-start detection (docs/trend-starts.md): detector profiles and their parameters,
-- the rule catalogue, which series the incremental jobs analyse, the detected signals, and the
-- jobs' private state (watermarks, checkpoints, the bars each job has seen).

CREATE TABLE signals.trend_profiles (
    profile text PRIMARY KEY,
    algorithm text NOT NULL,
    exhaustion_max_age integer,
    containment_grace integer,
    description text NOT NULL,
    CONSTRAINT trend_profiles_name_format CHECK (profile ~ '^[a-z][a-z0-9_]*$'),
    CONSTRAINT trend_profiles_algorithm_known CHECK (algorithm IN ('og_fixed', 'variant_b')),
    CONSTRAINT trend_profiles_exhaustion_max_age_positive CHECK (exhaustion_max_age > 0),
    CONSTRAINT trend_profiles_containment_grace_non_negative CHECK (containment_grace >= 0),
    CONSTRAINT trend_profiles_og_fixed_parameters_set CHECK (
        algorithm <> 'og_fixed'
        OR (exhaustion_max_age IS NOT NULL AND containment_grace IS NOT NULL)
    )
);
COMMENT ON TABLE signals.trend_profiles IS
'Trend-start detector profiles: which algorithm and with which parameters. A profile name is '
'what signals.trend_starts() and the jobs take; change a parameter with UPDATE, no redeploy.';
COMMENT ON COLUMN signals.trend_profiles.profile IS 'Profile name (lower snake case).';
COMMENT ON COLUMN signals.trend_profiles.algorithm IS
'og_fixed: the baseline of spec sections 1-12 (PUS/PDS, rules U1-U5 and D1-D5, containment, '
'forced alternation); variant_b: spec section 13 (down starts by D1-D5, each up start the '
'lowest low between two down starts).';
COMMENT ON COLUMN signals.trend_profiles.exhaustion_max_age IS
'og_fixed: rule U1 confirms a PUS at most this many bars old (spec: 6).';
COMMENT ON COLUMN signals.trend_profiles.containment_grace IS
'og_fixed: bars after a containment starts during which confirmations are still allowed (spec: 5).';
COMMENT ON COLUMN signals.trend_profiles.description IS 'What the profile is for.';

INSERT INTO signals.trend_profiles (
    profile, algorithm, exhaustion_max_age, containment_grace, description
)
VALUES
(
    'baseline', 'og_fixed', 6, 5,
    'The baseline detector of the spec (trend_start_og_fixed.py), reproduced exactly. '
    'Confirms up and down starts by rules; median delay 3 bars on 4h.'
),
(
    'variant_b', 'variant_b', NULL, NULL,
    'Variant B of the spec (trend_analyzer_alt.py at d896847): down starts confirmed by rules '
    'D1-D5, each up start the lowest low between two down starts. Scores higher against the '
    'hand labels than the baseline but confirms up starts later (at the next down start).'
);

CREATE TABLE signals.trend_rules (
    rule text PRIMARY KEY,
    rule_name text NOT NULL UNIQUE,
    direction text NOT NULL,
    summary text NOT NULL,
    CONSTRAINT trend_rules_direction_known CHECK (direction IN ('up', 'down', 'either'))
);
COMMENT ON TABLE signals.trend_rules IS
'The rules that confirm a trend start (spec section 5), by code; signals carry the code.';
COMMENT ON COLUMN signals.trend_rules.rule IS 'Rule code: U1-U5, D1-D5, or FORCED.';
COMMENT ON COLUMN signals.trend_rules.rule_name IS 'The rule''s name in the original code.';
COMMENT ON COLUMN signals.trend_rules.direction IS 'Which starts the rule confirms.';
COMMENT ON COLUMN signals.trend_rules.summary IS 'The condition, in words.';

INSERT INTO signals.trend_rules (rule, rule_name, direction, summary) VALUES
(
    'U1', 'EXHAUSTION_REVERSAL', 'up',
    'A lower bar (lower low, high and close) within 6 bars of the PUS that does not break '
    'below the PDS low.'
),
(
    'U2', 'LowUndercutHighRespect', 'up',
    'With a PDS newer than the PUS: the bar undercuts the PDS low, stays under its high, and '
    'closes above the previous close.'
),
('U3', 'HigherHighLowerLowDownClose', 'up', 'An outside bar that closes down.'),
(
    'U4', 'EngulfingUpPDSLowBreak', 'up',
    'An outside bar closing up and above the previous close that breaks the PDS low.'
),
(
    'U5', 'BreakoutAfterFailedLowV2', 'up',
    'With a PDS newer than the PUS and the PUS low never undercut: the bar breaks the PDS high '
    'and closes up, above the previous close.'
),
(
    'D1', 'LowThenHigherClose_vs_PDSOpen', 'down',
    'The PDS high holds; an outside bar closing above the previous close with its low under '
    'the PDS open.'
),
(
    'D2', 'RallyLowBreaksPeakLow_A', 'down',
    'The PDS high holds and a bar has pulled back to its low; a higher high and higher close '
    'with the low under the PDS low.'
),
(
    'D3', 'NewHighWeakAdvance_B', 'down',
    'The PDS high held and a bar pulled back to its low; now a higher close without a lower '
    'low that takes out the PDS high.'
),
(
    'D4', 'FailedRallyAfterLowBreak_F', 'down',
    'The PDS high holds and the previous bar broke the PDS low; a higher high that closes down '
    'and below the previous close.'
),
(
    'D5', 'HigherOHLCAfterLowBreak_G', 'down',
    'The PDS high holds and the previous bar broke the PDS low; a higher bar (higher low, high '
    'and close).'
),
(
    'FORCED', 'FORCED', 'either',
    'Forced alternation: two starts of one direction in a row get the opposite start at the '
    'most extreme bar between them (highest high for down, lowest low for up).'
);

-- One bar-by-bar detector result row (an event, a start or the state after a bar).
CREATE TYPE signals.trend_event AS (
    at_bar bigint,
    at_ts timestamptz,
    event text,
    bar bigint,
    bar_ts timestamptz,
    price numeric,
    rule text,
    state jsonb
);
COMMENT ON TYPE signals.trend_event IS
'One detector output row: at bar at_bar (open time at_ts) the event happened to bar bar '
'(open time bar_ts). Events: PUS_SET, PDS_SET, PUS_DROPPED, CUS, CDS, CUS_FORCED, CDS_FORCED, '
'CONTAINMENT_START, CONTAINMENT_END, and STATE (state = detector state after at_bar). '
'price is the start price for CUS/CDS rows; rule is a rule code or a detail code (N1, X2, ...).';

CREATE TABLE signals.trend_jobs (
    contract_id text NOT NULL,
    timeframe text NOT NULL REFERENCES market.timeframes (timeframe),
    profile text NOT NULL REFERENCES signals.trend_profiles (profile),
    schedule_interval interval NOT NULL DEFAULT interval '1 minute',
    scheduled boolean NOT NULL DEFAULT TRUE,
    recheck_bars integer NOT NULL DEFAULT 100,
    CONSTRAINT trend_jobs_pkey PRIMARY KEY (contract_id, timeframe, profile),
    CONSTRAINT trend_jobs_schedule_interval_positive CHECK (
        schedule_interval > interval '0'
    ),
    CONSTRAINT trend_jobs_recheck_bars_non_negative CHECK (recheck_bars >= 0)
);
COMMENT ON TABLE signals.trend_jobs IS
'Which series the incremental detector runs on: one TimescaleDB job per row, added, altered '
'and deleted automatically when rows change (signals.sync_trend_jobs).';
COMMENT ON COLUMN signals.trend_jobs.contract_id IS 'Gateway contract id, e.g. CON.F.US.MES.M25.';
COMMENT ON COLUMN signals.trend_jobs.timeframe IS 'Bar timeframe (market.timeframes).';
COMMENT ON COLUMN signals.trend_jobs.profile IS 'Detector profile (signals.trend_profiles).';
COMMENT ON COLUMN signals.trend_jobs.schedule_interval IS 'How often the job runs.';
COMMENT ON COLUMN signals.trend_jobs.scheduled IS
'false keeps the job registered but paused (run it with CALL run_job(job_id)).';
COMMENT ON COLUMN signals.trend_jobs.recheck_bars IS
'Each run compares this many of the last analysed bars with market.bars; a bar that changed '
'(late tick, gap repair) makes the job recompute from it. Older repairs: '
'signals.trend_advance(..., p_changed_from => ts).';

CREATE TABLE signals.detected_signals (
    signal_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    contract_id text NOT NULL,
    timeframe text NOT NULL,
    profile text NOT NULL,
    signal_type text NOT NULL,
    timestamp timestamptz NOT NULL,
    signal_price numeric NOT NULL,
    confirmed_at timestamptz NOT NULL,
    details jsonb NOT NULL,
    detected_at timestamptz NOT NULL DEFAULT now(),
    superseded_at timestamptz,
    superseded_by bigint REFERENCES signals.detected_signals (signal_id),
    CONSTRAINT detected_signals_signal_type_known CHECK (
        signal_type IN ('uptrend_start', 'downtrend_start')
    ),
    CONSTRAINT detected_signals_confirmed_after_start CHECK (confirmed_at >= timestamp),
    CONSTRAINT detected_signals_superseded_by_needs_superseded_at CHECK (
        superseded_by IS NULL OR superseded_at IS NOT NULL
    )
);
-- The streaming form of the spec's "keep the first start per bar and direction", and what makes
-- a re-run a no-op: one current signal per series, profile, bar and direction.
CREATE UNIQUE INDEX detected_signals_current_key ON signals.detected_signals (
    contract_id, timeframe, profile, timestamp, signal_type
) WHERE superseded_at IS NULL;
CREATE INDEX detected_signals_confirmed_at ON signals.detected_signals (
    contract_id, timeframe, profile, confirmed_at
);

COMMENT ON TABLE signals.detected_signals IS
'Trend starts found by the incremental jobs, one row per start. Rows are never deleted: when '
'a bar changes after analysis the job recomputes from it, and a signal that no longer holds '
'gets superseded_at (and superseded_by, its replacement for the same bar and direction, if '
'any). Current signals: WHERE superseded_at IS NULL.';
COMMENT ON COLUMN signals.detected_signals.signal_id IS 'Identity; ascending in detection order.';
COMMENT ON COLUMN signals.detected_signals.contract_id IS 'Gateway contract id.';
COMMENT ON COLUMN signals.detected_signals.timeframe IS 'Bar timeframe of the series.';
COMMENT ON COLUMN signals.detected_signals.profile IS 'Detector profile that found it.';
COMMENT ON COLUMN signals.detected_signals.signal_type IS 'uptrend_start or downtrend_start.';
COMMENT ON COLUMN signals.detected_signals.timestamp IS
'Open time of the start bar (as market.bars.bucket).';
COMMENT ON COLUMN signals.detected_signals.signal_price IS
'Low of the start bar for an up start, high for a down start.';
COMMENT ON COLUMN signals.detected_signals.confirmed_at IS
'Open time of the confirming bar; the signal was knowable when that bar closed.';
COMMENT ON COLUMN signals.detected_signals.details IS
'{"rule": code, "rule_name": ..., "direction": up|down, "bar": n, "confirmed_bar": m} '
'(bar numbers count closed bars of the series from its first).';
COMMENT ON COLUMN signals.detected_signals.detected_at IS 'When the job wrote the row.';
COMMENT ON COLUMN signals.detected_signals.superseded_at IS
'When a recomputation withdrew this signal; NULL while it is current.';
COMMENT ON COLUMN signals.detected_signals.superseded_by IS
'The current signal that replaced this one (same bar and direction), if there is one.';

-- What the jobs remember, per (contract, timeframe, profile).
CREATE TABLE internal.trend_watermarks (
    contract_id text NOT NULL,
    timeframe text NOT NULL,
    profile text NOT NULL,
    bar_no bigint NOT NULL,
    bar_ts timestamptz NOT NULL,
    state jsonb NOT NULL,
    runs bigint NOT NULL DEFAULT 1,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT trend_watermarks_pkey PRIMARY KEY (contract_id, timeframe, profile),
    CONSTRAINT trend_watermarks_bar_no_positive CHECK (bar_no > 0)
);
COMMENT ON TABLE internal.trend_watermarks IS
'Per detector job: the last analysed closed bar (number and open time) and the detector state '
'after it.';

CREATE TABLE internal.trend_checkpoints (
    contract_id text NOT NULL,
    timeframe text NOT NULL,
    profile text NOT NULL,
    bar_ts timestamptz NOT NULL,
    bar_no bigint NOT NULL,
    state jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT trend_checkpoints_pkey PRIMARY KEY (contract_id, timeframe, profile, bar_ts)
);
COMMENT ON TABLE internal.trend_checkpoints IS
'Detector state after the last bar of every job run: where a recomputation restarts from when '
'an analysed bar changes.';

CREATE TABLE internal.trend_inputs (
    contract_id text NOT NULL,
    timeframe text NOT NULL,
    profile text NOT NULL,
    bucket timestamptz NOT NULL,
    bar_no bigint NOT NULL,
    open numeric NOT NULL,
    high numeric NOT NULL,
    low numeric NOT NULL,
    close numeric NOT NULL,
    CONSTRAINT trend_inputs_pkey PRIMARY KEY (contract_id, timeframe, profile, bucket),
    CONSTRAINT trend_inputs_bar_no_key UNIQUE (contract_id, timeframe, profile, bar_no)
);
COMMENT ON TABLE internal.trend_inputs IS
'The closed bars each detector job analysed, as it saw them, numbered: compared with '
'market.bars to notice bars that changed after analysis.';
