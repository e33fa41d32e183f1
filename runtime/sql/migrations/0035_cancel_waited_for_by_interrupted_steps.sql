-- df.cancel holds an advisory lock (class 1147489355, the instance id's hash) from before it
-- interrupts the instance's running steps until it commits. A worker whose step was interrupted
-- takes the same lock before it records the step's failure (lock_instance_cancel in
-- runtime/sql/queries.sql), so it then finds the instance cancelled and leaves no work behind.
-- Without the lock, a failure recorded before the cancellation committed was an ordinary one:
-- its retry was scheduled, and the cancellation's trigger skipped the task the worker held.

CREATE OR REPLACE FUNCTION df.cancel(instance_id text, reason text DEFAULT 'Cancelled by user') RETURNS text
LANGUAGE plpgsql STRICT SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM df.instances i WHERE i.id = instance_id) THEN
        RAISE EXCEPTION 'Instance not found or access denied: %', instance_id
            USING ERRCODE = 'no_data_found';
    END IF;
    -- Held until this cancellation commits: a worker whose step it interrupts waits for it
    -- before recording the step's failure, and then finds the instance cancelled (without
    -- it, a failure recorded first would schedule a retry that outlives the cancellation).
    PERFORM pg_advisory_xact_lock(1147489355, hashtext(instance_id));
    -- a step running for this instance holds row locks until it ends: interrupt it first
    BEGIN
        PERFORM df._interrupt_steps(instance_id);
    EXCEPTION WHEN insufficient_privilege THEN
        NULL;  -- granted before this function existed: the step finishes, then it stops
    END;
    UPDATE df.instances i SET status = 'cancelled', output = reason
     WHERE i.id = instance_id AND i.status IN ('pending', 'running');
    RETURN format('Instance %s cancelled: %s', instance_id, reason);
END
$$;
