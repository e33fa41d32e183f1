-- A step runs in the message that commits the one before (docs/runtime.md, Performance): the
-- worker reserves the id of the task of the step it goes on with, so df._apply inserts that task
-- with the id given and returns nothing. (df._take_step, which locked such a task by a session
-- setting for a while, is gone where it was installed.)

DROP FUNCTION IF EXISTS df._take_step();
DROP FUNCTION df._apply(json);

-- A step's bookkeeping in one call: the writes whose results nobody reads, in order, as a JSON
-- array of operations (runtime/store.py builds them).
CREATE FUNCTION df._apply(p_ops json) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    op json;
BEGIN
    FOR op IN SELECT json_array_elements(p_ops) LOOP
        CASE op ->> 0
        WHEN 'delete' THEN
            DELETE FROM df.tasks WHERE id = (op ->> 1)::bigint;
        WHEN 'state' THEN
            UPDATE df.tasks SET state = op -> 2 WHERE id = (op ->> 1)::bigint;
        WHEN 'insert' THEN
            -- [instance, node, parent, branch, status, run_at, scope, state, id]; the id is
            -- given for the step the worker goes on with (taken from the sequence beforehand)
            IF op ->> 9 IS NULL THEN
                INSERT INTO df.tasks (instance_id, node_id, parent_id, branch, status, run_at,
                                      scope, state)
                VALUES (op ->> 1, op ->> 2, (op ->> 3)::bigint, (op ->> 4)::integer, op ->> 5,
                        coalesce((op ->> 6)::timestamptz, clock_timestamp()), op -> 7, op -> 8);
            ELSE
                INSERT INTO df.tasks (id, instance_id, node_id, parent_id, branch, status, run_at,
                                      scope, state)
                OVERRIDING SYSTEM VALUE
                VALUES ((op ->> 9)::bigint, op ->> 1, op ->> 2, (op ->> 3)::bigint,
                        (op ->> 4)::integer, op ->> 5,
                        coalesce((op ->> 6)::timestamptz, clock_timestamp()), op -> 7, op -> 8);
            END IF;
        WHEN 'started' THEN
            UPDATE df.nodes
               SET status = 'running', result = NULL, runs = runs + 1, attempts = 1,
                   last_error = NULL, started_at = clock_timestamp(),
                   updated_at = clock_timestamp()
             WHERE instance_id = op ->> 1 AND id = op ->> 2;
        WHEN 'finished' THEN
            UPDATE df.nodes
               SET status = op ->> 3, result = (op -> 4)::jsonb, updated_at = clock_timestamp()
             WHERE instance_id = op ->> 1 AND id = op ->> 2;
        WHEN 'running' THEN
            UPDATE df.instances SET status = 'running' WHERE id = op ->> 1 AND status = 'pending';
        ELSE
            RAISE EXCEPTION 'unknown bookkeeping operation %', op ->> 0;
        END CASE;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION df._apply(json) FROM PUBLIC;
