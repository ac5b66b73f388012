-- The swing profile: variant B with two options a trader's hand labels follow. A down start sits
-- on the swing high (the highest high since the up start before it), and two down starts always
-- have an up start between them.

ALTER TABLE signals.trend_profiles
ADD COLUMN down_at_swing_high boolean NOT NULL DEFAULT FALSE,
ADD COLUMN up_between_adjacent_downs boolean NOT NULL DEFAULT FALSE,
ADD CONSTRAINT trend_profiles_swing_options_variant_b_only CHECK (
    algorithm = 'variant_b' OR NOT (down_at_swing_high OR up_between_adjacent_downs)
);
COMMENT ON COLUMN signals.trend_profiles.down_at_swing_high IS
'variant_b: when a down start is confirmed, put it on the bar with the highest high after the '
'up start just emitted (up to the PDS; earliest on ties) instead of on the PDS itself.';
COMMENT ON COLUMN signals.trend_profiles.up_between_adjacent_downs IS
'variant_b: when a down start is confirmed on the bar right after the previous down start, '
'that bar is also the up start between them, so starts always alternate.';

INSERT INTO signals.trend_profiles (
    profile, algorithm, description, down_at_swing_high, up_between_adjacent_downs
)
VALUES (
    'swing', 'variant_b',
    'Variant B with each down start on the swing high since the preceding up start and an up '
    'start between any two down starts: up and down starts alternate, each at the extreme of '
    'its swing. Best against the hand labels (1d, 4h, 4h extended, MNQ); same delays as '
    'variant B.',
    TRUE, TRUE
);

-- signals.trend_fold_variant_b takes the two options as arguments now (sql/functions recreates it).
DROP FUNCTION IF EXISTS signals.trend_fold_variant_b(
    timestamptz[], numeric[], numeric[], numeric[], numeric[], bigint, integer, jsonb, boolean
);
