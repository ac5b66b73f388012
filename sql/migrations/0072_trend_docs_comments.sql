-- Comments and profile descriptions that cited a specification users do not have now point to
-- docs/trend-starts.md, which ships with the repository.
COMMENT ON COLUMN signals.trend_profiles.algorithm IS
'og_fixed: the baseline of docs/trend-starts.md sections 1-7 (pending up and down starts, rules '
'U1-U5 and D1-D5, containment, forced alternation); variant_b: section 8 there (down starts by '
'D1-D5, each up start the lowest low between two down starts), also behind the swing profile '
'(section 9).';
COMMENT ON COLUMN signals.trend_profiles.exhaustion_max_age IS
'og_fixed: rule U1 confirms a pending up start at most this many bars old (baseline: 6).';
COMMENT ON COLUMN signals.trend_profiles.containment_grace IS
'og_fixed: bars after a containment starts during which confirmations are still allowed '
'(baseline: 5).';
COMMENT ON TABLE signals.trend_rules IS
'The rules that confirm a trend start (docs/trend-starts.md section 5), by code; signals carry '
'the code.';

UPDATE signals.trend_profiles
SET
    description = 'The baseline detector (docs/trend-starts.md sections 1-7), reproducing the '
    'original trend_start_og_fixed.py exactly. Confirms up and down starts by rules; median delay '
    '3 bars on 4h.'
WHERE profile = 'baseline' AND description LIKE 'The baseline detector of the spec%';

UPDATE signals.trend_profiles
SET
    description = 'Variant B (docs/trend-starts.md section 8; the original trend_analyzer_alt.py '
    'at d896847): down starts confirmed by rules D1-D5, each up start the lowest low between two '
    'down starts. Scores higher against the hand labels than the baseline but confirms up starts '
    'later (at the next down start).'
WHERE profile = 'variant_b' AND description LIKE 'Variant B of the spec%';
