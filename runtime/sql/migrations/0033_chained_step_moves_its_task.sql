-- A step of a chain whose bookkeeping is the usual one (its task moves on to the next step of
-- the sequence, that step's node starts) runs in df._run_chained_step_moving: the move is the
-- step's first statement, with typed arguments, and the step runs without a subtransaction.
-- Per step that is one parent lock and one subtransaction fewer, and no JSON operations to
-- read (df._run_chained_step stays for any other bookkeeping, and for workers of the previous
-- version).

-- Called by the worker (the owner) for one step of a chain (runtime/chains.py), sent with the
-- rest of the chain in one message, each step as `BEGIN; <this>; COMMIT`. It moves the step's
-- task on to the next step (`p_next…`: the new task's id, node, branch, due time, scope and
-- state; the row keeps its instance and parent); runs the step as its role;
-- records the step's node as completed with its result and starts the next step's node.
-- Anything else raises, so that the message stops there with the step's transaction rolled
-- back: SQLSTATE DFC01 when the step was not taken (its task is not at `p_node` or not due, its
-- instance no longer runs, or its parent is gone), the step's own error when it failed (the
-- worker then cleans up what a rollback leaves of a failed step: see reset_session in
-- runtime/sql/queries.sql). A task another worker holds is not taken, as in
-- df._run_step_task. The parent must still exist after the step but is not locked: a chained
-- step does not change it.
-- `p_prepared`: as for df._run_step_task.
CREATE FUNCTION df._run_chained_step_moving(p_task bigint, p_instance text, p_node text,
                                            p_now timestamptz, p_role regrole, p_sql text,
                                            p_returns_rows boolean, p_search_path text,
                                            p_parent bigint, p_prepared bigint, p_next bigint,
                                            p_next_node text, p_next_branch integer,
                                            p_next_run_at timestamptz, p_next_scope json,
                                            p_next_state json)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_valid boolean;
    v_prepared bigint;
    v_rows json;
    v_refused boolean;
    v_links boolean;
    v_unlocked boolean;
BEGIN
    -- locked first with SKIP LOCKED, not by the update alone: an update waits for a worker
    -- holding the task, and that wait would count against the step's statement_timeout
    UPDATE df.tasks t
       SET id = p_next, node_id = p_next_node, branch = p_next_branch,
           run_at = coalesce(p_next_run_at, clock_timestamp()), scope = p_next_scope,
           state = p_next_state, created_at = clock_timestamp()
     WHERE t.id = (SELECT c.id FROM df.tasks c
                    WHERE c.id = p_task AND c.node_id = p_node AND c.status = 'ready'
                      AND c.run_at <= GREATEST(p_now, clock_timestamp())
                      AND (SELECT x.status FROM df.instances x WHERE x.id = c.instance_id)
                          OPERATOR(pg_catalog.=) ANY ('{pending,running}'::text[])
                      FOR UPDATE OF c SKIP LOCKED);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the step of task % was not taken', p_task USING ERRCODE = 'DFC01';
    END IF;
    -- as in df._run_step_task: the runner's identity, and the prepared statements before the step
    SELECT EXISTS (SELECT 1 FROM pg_proc p
                    WHERE p.pronamespace = 'df_exec'::regnamespace
                      AND p.proname = df._runner_name(p_role)
                      AND p.proowner = p_role AND p.prosecdef),
           coalesce(p_prepared, (SELECT count(*) FROM pg_prepared_statements s))
      INTO v_valid, v_prepared;
    IF NOT v_valid THEN
        RAISE EXCEPTION 'role % has no valid step runner (start a workflow as that role to create it)',
            p_role USING ERRCODE = 'insufficient_privilege';
    END IF;
    v_rows := df._runner_call(p_role::oid, p_sql, p_returns_rows, p_search_path);
    IF v_rows IS NULL THEN  -- a role without a static call there
        EXECUTE format('SELECT coalesce(json_agg(r), ''[]'') FROM df_exec.%I($1, $2, $3) r',
                       df._runner_name(p_role))
           INTO v_rows USING p_sql, p_returns_rows, p_search_path;
    END IF;
    -- what df._run_step_task does after a step, in the same order and for the same reasons
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    SELECT pg_catalog.count(*) OPERATOR(pg_catalog.<>) v_prepared
               OR coalesce(pg_catalog.bool_or(s.prepare_time
                                              OPERATOR(pg_catalog.>=) pg_catalog.statement_timestamp()),
                           false),
           EXISTS (SELECT 1 FROM pg_catalog.pg_extension e
                    WHERE e.extname OPERATOR(pg_catalog.=) 'dblink'::name),
           pg_catalog.pg_advisory_unlock_all() IS NULL
      INTO v_refused, v_links, v_unlocked
      FROM pg_catalog.pg_prepared_statements s;
    IF v_refused THEN
        RAISE EXCEPTION 'a workflow step may not PREPARE or DEALLOCATE statements'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Run the statement itself in the step instead of preparing it.';
    END IF;
    RESET ALL;
    DISCARD TEMP;
    IF v_links THEN
        PERFORM df._close_step_links();
    END IF;
    -- looked for after the step, where df._run_step_task locks it: a sequence deleted while
    -- its step ran (a race lost elsewhere) has that step's outcome discarded and goes no
    -- further, so the chain stops here; the step runs again on its own and is discarded there
    IF NOT EXISTS (SELECT 1 FROM df.tasks p WHERE p.id = p_parent) THEN
        RAISE EXCEPTION 'the parent of task % is gone', p_task USING ERRCODE = 'DFC01';
    END IF;
    UPDATE df.nodes
       SET status = 'completed',
           result = pg_catalog.jsonb_build_object('rows', v_rows::jsonb,
                                                  'row_count', pg_catalog.json_array_length(v_rows)),
           updated_at = pg_catalog.clock_timestamp()
     WHERE instance_id = p_instance AND id = p_node;
    UPDATE df.nodes
       SET status = 'running', result = NULL, runs = runs + 1, attempts = 1, last_error = NULL,
           started_at = clock_timestamp(), updated_at = clock_timestamp()
     WHERE instance_id = p_instance AND id = p_next_node;
END
$$;

REVOKE ALL ON FUNCTION df._run_chained_step_moving(bigint, text, text, timestamptz, regrole, text,
                                                     boolean, text, bigint, bigint, bigint, text,
                                                     integer, timestamptz, json, json) FROM PUBLIC;
