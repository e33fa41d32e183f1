-- df.signal's trigger no longer waits for a wait task that a worker holds: the worker holds the
-- task's row lock and then takes the signal lock, the trigger took them the other way round, and
-- the two could deadlock. A held task is skipped; its worker sees the signal under the lock.

CREATE OR REPLACE FUNCTION df._signal_after_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- serialised with a wait that is checking for this signal right now (the worker takes the
    -- same lock): either it sees this signal, or its rescheduled task is visible below
    PERFORM pg_advisory_xact_lock(1147489353, hashtext(NEW.instance_id || '/' || NEW.name));
    -- a wait for this signal may be sleeping until its timeout: make it due now. A wait task a
    -- worker holds right now is skipped, not waited for: that worker takes the lock above before
    -- it looks for signals, so it sees this one (waiting would deadlock with it).
    UPDATE df.tasks t SET run_at = clock_timestamp()
     WHERE t.id IN (SELECT w.id FROM df.tasks w
                     WHERE w.instance_id = NEW.instance_id AND w.status = 'ready'
                       AND (w.state ->> 'signal') IS NOT NULL
                       FOR UPDATE SKIP LOCKED);
    PERFORM pg_notify('df_work', NEW.instance_id);
    RETURN NULL;
END
$$;
