-- A step's guard of the session's prepared statements counts them and looks for one prepared
-- during the step, instead of comparing sorted lists of every name (the worker's session holds
-- many); dblink is looked up in df._run_step_task itself, df._close_step_links runs only where
-- it is installed. df._apply learns `finish` (an instance ends), so the last step of a workflow
-- commits its instance's end in the same message.

-- Called by the worker (the owner) for a SQL step, in one statement: optionally lock the step's
-- task first (a step the worker goes on with right after committing the one before, without
-- claiming it: skipped when another worker holds it, when it is no longer due or its instance
-- no longer runs), run the step as its role (df_exec.run_<role oid>) inside a subtransaction, so
-- that a failing step leaves the task locked and its failure can be recorded in the same
-- transaction (error_message/error_state; a cancelled statement still aborts the transaction),
-- then lock the parent task its outcome goes to. `got` is false when the task was not taken.
CREATE OR REPLACE FUNCTION df._run_step_task(p_task bigint, p_lock boolean, p_now timestamptz,
                                  p_role regrole, p_sql text, p_returns_rows boolean,
                                  p_search_path text, p_parent bigint,
                                  OUT got boolean, OUT task_state json, OUT result_rows json,
                                  OUT error_message text, OUT error_state text,
                                  OUT parent_row json)
RETURNS record
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_runner name := df._runner_name(p_role);
    v_prepared bigint;
BEGIN
    got := true;
    IF p_lock THEN
        SELECT t.state INTO task_state FROM df.tasks t
         WHERE t.id = p_task AND t.status = 'ready'
           AND t.run_at <= GREATEST(p_now, clock_timestamp())
           AND (SELECT x.status FROM df.instances x WHERE x.id = t.instance_id)
               OPERATOR(pg_catalog.=) ANY ('{pending,running}'::text[])
           FOR UPDATE OF t SKIP LOCKED;
        IF NOT FOUND THEN
            got := false;
            RETURN;
        END IF;
    END IF;
    -- the full canonical check ran when the runner was created (df._runner_gate_check) and its
    -- owner cannot change it since; what the step's identity rests on is checked every time
    IF NOT EXISTS (SELECT 1 FROM pg_proc p
                    WHERE p.pronamespace = 'df_exec'::regnamespace
                      AND p.proname = v_runner
                      AND p.proowner = p_role AND p.prosecdef) THEN
        RAISE EXCEPTION 'role % has no valid step runner (start a workflow as that role to create it)',
            p_role USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- The session's prepared statements must come out of the step as they went in (a step
    -- that replaced one of the worker's would have it run as the worker). A statement
    -- prepared now carries this statement's start time as its prepare_time, and the worker
    -- prepares none in the message that runs a step: the count tells a statement removed, the
    -- time one added (or replaced), without comparing names.
    v_prepared := (SELECT count(*) FROM pg_prepared_statements s);
    BEGIN
        EXECUTE format('SELECT coalesce(json_agg(r), ''[]'') FROM df_exec.%I($1, $2, $3) r',
                       v_runner)
           INTO result_rows USING p_sql, p_returns_rows, p_search_path;
    EXCEPTION WHEN OTHERS THEN
        -- the step's effects are rolled back with the subtransaction; the task stays locked
        GET STACKED DIAGNOSTICS error_message = MESSAGE_TEXT, error_state = RETURNED_SQLSTATE;
        result_rows := NULL;
    END;
    IF (SELECT count(*) <> v_prepared
               OR coalesce(bool_or(s.prepare_time >= statement_timestamp()), false)
          FROM pg_prepared_statements s) THEN
        RAISE EXCEPTION 'a workflow step may not PREPARE or DEALLOCATE statements'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Run the statement itself in the step instead of preparing it.';
    END IF;
    -- session state the step left behind (settings, temporary objects, advisory locks) must
    -- not reach the worker's own statements or the next role's step
    RESET ALL;
    DISCARD TEMP;
    PERFORM pg_advisory_unlock_all();
    -- looked up after the step, which may have installed dblink itself
    IF EXISTS (SELECT 1 FROM pg_extension e WHERE e.extname = 'dblink') THEN
        PERFORM df._close_step_links();
    END IF;
    IF error_state IS NULL AND p_parent IS NOT NULL THEN
        SELECT pg_catalog.to_json(l) INTO parent_row
          FROM (SELECT t.id, t.instance_id, t.node_id, t.parent_id, t.branch, t.status, t.scope,
                       t.state
                  FROM df.tasks t WHERE t.id = p_parent FOR UPDATE) l;
    END IF;
END
$$;

-- A step's bookkeeping in one call: the writes whose results nobody reads, in order, as a JSON
-- array of operations (runtime/store.py builds them).
CREATE OR REPLACE FUNCTION df._apply(p_ops json) RETURNS void
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
        WHEN 'finish' THEN
            -- [instance, status, output]: the instance ends and keeps no work (tasks being
            -- executed elsewhere are discarded when done)
            UPDATE df.instances
               SET status = op ->> 2, output = op ->> 3,
                   completed_at = CASE WHEN op ->> 2 = 'completed' THEN clock_timestamp() END
             WHERE id = op ->> 1
               AND status OPERATOR(pg_catalog.=) ANY ('{pending,running}'::text[]);
            DELETE FROM df.tasks d
             WHERE d.id IN (SELECT t.id FROM df.tasks t WHERE t.instance_id = op ->> 1
                            FOR UPDATE SKIP LOCKED);
        ELSE
            RAISE EXCEPTION 'unknown bookkeeping operation %', op ->> 0;
        END CASE;
    END LOOP;
END
$$;
