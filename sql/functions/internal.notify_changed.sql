-- Trigger function: one NOTIFY per statement that changed a table, for live readers.
CREATE OR REPLACE FUNCTION internal.notify_changed()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    -- Identical notifications within a transaction are delivered once.
    PERFORM pg_notify(tg_argv[0], tg_table_schema || '.' || tg_table_name);
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION internal.notify_changed() IS
'Statement trigger function: NOTIFY on the channel given as the trigger''s argument, with the '
'changed table''s name as payload. The chart server (mechtrade serve) listens.';
