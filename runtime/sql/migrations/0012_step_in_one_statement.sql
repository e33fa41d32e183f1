-- Steps in fewer statements (docs/runtime.md, Performance).
--
-- df._run_step_task runs a SQL step like df._run_step, but inside a subtransaction, so a failing
-- step's failure is recorded while its task is still locked (before, another worker could claim
-- the task between the rollback and the bookkeeping and run it again at once); it can also lock
-- the task itself, for the step a worker goes on with right after the one before, and the parent
-- task. df._apply does a step's bookkeeping writes in one call. df._ensure_runner (df.start)
-- checks the role's runner as cheaply as each step does once it exists.

-- Called by the worker (the owner) for a SQL step, in one statement: optionally lock the step's
-- task first (a step the worker goes on with right after committing the one before, without
-- claiming it: skipped when another worker holds it, when it is no longer due or its instance
-- no longer runs), run the step as its role like df._run_step, but inside a subtransaction, so
-- that a failing step leaves the task locked and its failure can be recorded in the same
-- transaction (error_message/error_state; a cancelled statement still aborts the transaction),
-- then lock the parent task its outcome goes to. `got` is false when the task was not taken.
CREATE FUNCTION df._run_step_task(p_task bigint, p_lock boolean, p_now timestamptz,
                                  p_role regrole, p_sql text, p_returns_rows boolean,
                                  p_search_path text, p_parent bigint,
                                  OUT got boolean, OUT task_state json, OUT result_rows json,
                                  OUT error_message text, OUT error_state text,
                                  OUT parent_row json)
RETURNS record
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_prepared text;
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
                      AND p.proname = df._runner_name(p_role)
                      AND p.proowner = p_role AND p.prosecdef) THEN
        RAISE EXCEPTION 'role % has no valid step runner (start a workflow as that role to create it)',
            p_role USING ERRCODE = 'insufficient_privilege';
    END IF;
    v_prepared := (SELECT string_agg(s.name || ' ' || s.prepare_time, ',' ORDER BY s.name)
                     FROM pg_prepared_statements s);
    BEGIN
        EXECUTE format('SELECT coalesce(json_agg(r), ''[]'') FROM df_exec.%I($1, $2, $3) r',
                       df._runner_name(p_role))
           INTO result_rows USING p_sql, p_returns_rows, p_search_path;
    EXCEPTION WHEN OTHERS THEN
        -- the step's effects are rolled back with the subtransaction; the task stays locked
        GET STACKED DIAGNOSTICS error_message = MESSAGE_TEXT, error_state = RETURNED_SQLSTATE;
        result_rows := NULL;
    END;
    IF (SELECT string_agg(s.name || ' ' || s.prepare_time, ',' ORDER BY s.name)
          FROM pg_prepared_statements s) IS DISTINCT FROM v_prepared THEN
        RAISE EXCEPTION 'a workflow step may not PREPARE or DEALLOCATE statements'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Run the statement itself in the step instead of preparing it.';
    END IF;
    -- session state the step left behind (settings, temporary objects, advisory locks) must
    -- not reach the worker's own statements or the next role's step
    RESET ALL;
    DISCARD TEMP;
    PERFORM pg_advisory_unlock_all();
    IF error_state IS NULL AND p_parent IS NOT NULL THEN
        SELECT pg_catalog.to_json(l) INTO parent_row
          FROM (SELECT t.id, t.instance_id, t.node_id, t.parent_id, t.branch, t.status, t.scope,
                       t.state
                  FROM df.tasks t WHERE t.id = p_parent FOR UPDATE) l;
    END IF;
END
$$;

REVOKE ALL ON FUNCTION df._run_step_task(bigint, boolean, timestamptz, regrole, text, boolean, text, bigint) FROM PUBLIC;

-- A step's bookkeeping in one call: the writes whose results nobody reads, in order, as a JSON
-- array of operations (runtime/store.py builds them). Returns the id of the task inserted with
-- the `next` flag (the step the worker goes on with), if any.
CREATE FUNCTION df._apply(p_ops json) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    op json;
    v_id bigint;
    v_next bigint;
BEGIN
    FOR op IN SELECT json_array_elements(p_ops) LOOP
        CASE op ->> 0
        WHEN 'delete' THEN
            DELETE FROM df.tasks WHERE id = (op ->> 1)::bigint;
        WHEN 'state' THEN
            UPDATE df.tasks SET state = op -> 2 WHERE id = (op ->> 1)::bigint;
        WHEN 'insert' THEN
            -- [instance, node, parent, branch, status, run_at, scope, state, next]
            INSERT INTO df.tasks (instance_id, node_id, parent_id, branch, status, run_at, scope,
                                  state)
            VALUES (op ->> 1, op ->> 2, (op ->> 3)::bigint, (op ->> 4)::integer, op ->> 5,
                    coalesce((op ->> 6)::timestamptz, clock_timestamp()), op -> 7, op -> 8)
            RETURNING id INTO v_id;
            IF (op ->> 9)::boolean THEN
                v_next := v_id;
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
    RETURN v_next;
END
$$;

REVOKE ALL ON FUNCTION df._apply(json) FROM PUBLIC;

CREATE OR REPLACE FUNCTION df._ensure_runner() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    me regrole := df._my_role();
    fn name := df._runner_name(df._my_role());
BEGIN
    -- the runner was proven canonical when it was created (df._runner_gate_check) and its owner
    -- cannot change it since: that it exists, owned by the role, is enough on the way in
    IF EXISTS (SELECT 1 FROM pg_proc p
                WHERE p.pronamespace = 'df_exec'::regnamespace AND p.proname = fn
                  AND p.proowner = me AND p.prosecdef) THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(1147489350, me::oid::integer);
    IF df._runner_ok(me) THEN
        RETURN;
    END IF;
    PERFORM df._runner_gate_open(me);
    EXECUTE format(
        'CREATE FUNCTION df_exec.%I(p_sql text, p_returns_rows boolean, p_search_path text) '
        'RETURNS SETOF json LANGUAGE plpgsql SECURITY DEFINER AS %L', fn, df._runner_body());
    EXECUTE format('REVOKE ALL ON FUNCTION df_exec.%I(text, boolean, text) FROM PUBLIC', fn);
    EXECUTE format('GRANT EXECUTE ON FUNCTION df_exec.%I(text, boolean, text) TO %s',
                   fn, df._owner_role()::text);
END
$$;
