-- The realtime profile: trend starts a trader can act on when they become known. Every start,
-- up and down, is confirmed by a rule on the bars seen so far (no forced starts), typically one
-- bar after the start bar. It becomes the default profile; swing stays for annotation.

ALTER TABLE signals.trend_profiles
DROP CONSTRAINT trend_profiles_algorithm_known,
ADD CONSTRAINT trend_profiles_algorithm_known CHECK (
    algorithm IN ('og_fixed', 'variant_b', 'zigzag')
);
COMMENT ON COLUMN signals.trend_profiles.algorithm IS
'og_fixed: the baseline of spec sections 1-12 (PUS/PDS, rules U1-U5 and D1-D5, containment, '
'forced alternation); variant_b: spec section 13 (down starts by D1-D5, each up start the '
'lowest low between two down starts, forced); zigzag: alternating swing extremes, each '
'confirmed by the first bar that reverses from it (rules ZU and ZD), never forced.';

INSERT INTO signals.trend_rules (rule, rule_name, direction, summary) VALUES
(
    'ZU', 'HigherHighHigherLow', 'up',
    'The lowest low since the last down start is the up start once a bar makes a higher high '
    'and a higher low than the bar before it.'
),
(
    'ZD', 'LowerHighLowerLow', 'down',
    'The highest high since the last up start is the down start once a bar makes a lower high '
    'and a lower low than the bar before it.'
);

INSERT INTO signals.trend_profiles (profile, algorithm, description) VALUES (
    'realtime', 'zigzag',
    'The default. Up and down starts alternate, each on the extreme of its swing, and each is '
    'confirmed by a rule on the bars seen so far (usually the next bar), so a trader can act '
    'on it when its confirming bar closes. Never forced.'
);

UPDATE signals.trend_profiles
SET
    description = description
    || ' Its up starts are forced (known only at the next down start): for charts and '
    || 'research, not for trading.'
WHERE profile IN ('variant_b', 'swing');

COMMENT ON TABLE signals.trend_rules IS
'The rules that confirm a trend start (spec section 5, and ZU/ZD of the realtime profile), by '
'code; signals carry the code. FORCED starts are inserted by alternation, known only with '
'hindsight: the coordinator and signals.backtest never act on them.';

-- An existing database: every series analysed with swing gets a realtime job too (the coordinator's
-- default rule now reads realtime signals); the swing jobs stay.
INSERT INTO signals.trend_jobs (
    contract_id, timeframe, profile, schedule_interval, scheduled, recheck_bars
)
SELECT
    contract_id,
    timeframe,
    'realtime' AS profile,
    schedule_interval,
    scheduled,
    recheck_bars
FROM signals.trend_jobs
WHERE profile = 'swing'
ON CONFLICT DO NOTHING;
