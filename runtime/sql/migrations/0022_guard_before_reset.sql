-- df._run_step_task sets the worker's search_path back right after the step again (as before
-- migration 0020) and runs RESET ALL and DISCARD TEMP after its guard query: placed first, they
-- made the queries after them cost about 60 us more per call (the function called alone,
-- 3,000 calls a round, five rounds interleaved with the former order).

-- Called by the worker (the owner) for a SQL step, in one statement: optionally lock the step's
-- task first (a step the worker goes on with right after committing the one before, without
-- claiming it: skipped when another worker holds it, when it is no longer due or its instance
-- no longer runs), run the step as its role (df_exec.run_<role oid>) inside a subtransaction, so
-- that a failing step leaves the task locked and its failure can be recorded in the same
-- transaction (error_message/error_state; a cancelled statement still aborts the transaction),
-- then lock the parent task its outcome goes to. `got` is false when the task was not taken.
-- `p_prepared`: how many prepared statements the worker's session holds (the worker prepares
-- them itself and keeps count), NULL to count them here.
CREATE OR REPLACE FUNCTION df._run_step_task(p_task bigint, p_lock boolean, p_now timestamptz,
                                  p_role regrole, p_sql text, p_returns_rows boolean,
                                  p_search_path text, p_parent bigint, p_prepared bigint,
                                  OUT got boolean, OUT task_state json, OUT result_rows json,
                                  OUT error_message text, OUT error_state text,
                                  OUT parent_row json)
RETURNS record
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_runner name := df._runner_name(p_role);
    v_valid boolean;
    v_prepared bigint;
    v_refused boolean;
    v_links boolean;
    v_unlocked boolean;
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
    -- The full canonical check ran when the runner was created (df._runner_gate_check) and its
    -- owner cannot change it since; what the step's identity rests on is checked every time.
    -- The session's prepared statements must come out of the step as they went in (a step
    -- that replaced one of the worker's would have it run as the worker). A statement
    -- prepared now carries this statement's start time as its prepare_time, and the worker
    -- prepares none in the message that runs a step: the count tells a statement removed, the
    -- time one added (or replaced), without comparing names. The count before the step is the
    -- worker's, else taken here (in the same query as the runner check).
    SELECT EXISTS (SELECT 1 FROM pg_proc p
                    WHERE p.pronamespace = 'df_exec'::regnamespace
                      AND p.proname = v_runner
                      AND p.proowner = p_role AND p.prosecdef),
           coalesce(p_prepared, (SELECT count(*) FROM pg_prepared_statements s))
      INTO v_valid, v_prepared;
    IF NOT v_valid THEN
        RAISE EXCEPTION 'role % has no valid step runner (start a workflow as that role to create it)',
            p_role USING ERRCODE = 'insufficient_privilege';
    END IF;
    BEGIN
        result_rows := df._runner_call(p_role::oid, p_sql, p_returns_rows, p_search_path);
        IF result_rows IS NULL THEN  -- a role without a static call there
            EXECUTE format('SELECT coalesce(json_agg(r), ''[]'') FROM df_exec.%I($1, $2, $3) r',
                           v_runner)
               INTO result_rows USING p_sql, p_returns_rows, p_search_path;
        END IF;
    EXCEPTION WHEN OTHERS THEN
        -- the step's effects are rolled back with the subtransaction; the task stays locked
        GET STACKED DIAGNOSTICS error_message = MESSAGE_TEXT, error_state = RETURNED_SQLSTATE;
        result_rows := NULL;
    END;
    -- The runner set the step's search_path for the rest of the transaction: back to the
    -- worker's before anything else here looks up a name (else a function or view the step's
    -- role put in front of pg_catalog would run as the worker). Nothing above it looks one up.
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    -- the prepared-statement guard, dblink looked up (after the step, which may have installed
    -- it itself) and the step's session-level advisory locks released, in one query
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
    -- session state the step left behind (settings, temporary objects) must not reach the
    -- worker's own statements or the next role's step (after the queries above: in front of
    -- them it made them dearer)
    RESET ALL;
    DISCARD TEMP;
    IF v_links THEN
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
