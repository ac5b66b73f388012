-- Each coordinator name (consumer) makes its own decisions: two coordinators with different
-- names and the same rules each record theirs, instead of the second recording none.

ALTER TABLE signals.decisions DROP CONSTRAINT decisions_key;
ALTER TABLE signals.decisions ADD CONSTRAINT decisions_key UNIQUE (
    consumer, rule, contract_id, profile, direction, starts
);

COMMENT ON CONSTRAINT decisions_key ON signals.decisions IS
'One decision per coordinator, rule and combination of start bars: reprocessing a signal, or a '
'replacement signal for the same bar and direction, adds nothing.';
