-- dblink connections a step opened are closed after it (df._close_step_links), so no later step
-- of another role can use them; df._run_step, unused since 0012, is gone.

DROP FUNCTION df._run_step(regrole, text, boolean, text);

-- A dblink connection outlives the step (and the transaction) that opened it, and any later
-- statement of the session could use it by name, so a step of another role could act through
-- it as the role that opened it: the worker closes every one after each step. dblink is found
-- wherever an administrator installed it; without it there is nothing to close.
CREATE FUNCTION df._close_step_links() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_schema name := (SELECT n.nspname FROM pg_extension e
                        JOIN pg_namespace n ON n.oid = e.extnamespace
                       WHERE e.extname = 'dblink');
    v_name text;
BEGIN
    IF v_schema IS NULL THEN
        RETURN;
    END IF;
    FOR v_name IN EXECUTE format('SELECT unnest(%I.dblink_get_connections())', v_schema) LOOP
        EXECUTE format('SELECT %I.dblink_disconnect($1)', v_schema) USING v_name;
    END LOOP;
    BEGIN
        -- the unnamed connection is not listed: closing it fails when there is none
        EXECUTE format('SELECT %I.dblink_disconnect()', v_schema);
    EXCEPTION WHEN connection_does_not_exist THEN
        NULL;
    END;
END
$$;

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
    PERFORM df._close_step_links();
    IF error_state IS NULL AND p_parent IS NOT NULL THEN
        SELECT pg_catalog.to_json(l) INTO parent_row
          FROM (SELECT t.id, t.instance_id, t.node_id, t.parent_id, t.branch, t.status, t.scope,
                       t.state
                  FROM df.tasks t WHERE t.id = p_parent FOR UPDATE) l;
    END IF;
END
$$;

REVOKE ALL ON FUNCTION df._close_step_links() FROM PUBLIC;
