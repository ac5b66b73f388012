-- Every label change reaches the other open chart pages.
CREATE OR REPLACE TRIGGER labels_notify
AFTER INSERT OR UPDATE ON signals.labels
FOR EACH STATEMENT
EXECUTE FUNCTION internal.notify_changed('signals_labels_v1');

COMMENT ON TRIGGER labels_notify ON signals.labels IS
'NOTIFY signals_labels_v1 after each statement that added or removed labels.';
