-- A role's step runner is called through df._runner_call, which holds a static call (planned
-- once per session) for each role with a runner, instead of a call built and planned for every
-- step; df._runner_gate_check writes it again whenever it accepts a runner.

-- The call of a role's step runner, for df._run_step_task. A runner's name depends on its role,
-- so a call built per step is planned anew every time; df._runner_call holds a static call
-- (planned once per worker session) for each role with a runner, up to 50 roles, and returns
-- NULL for others (df._run_step_task then builds the call). Written again by
-- df._write_runner_call whenever a runner is accepted (df._runner_gate_check). Runs as its
-- caller, the worker, which checked the runner before calling.
CREATE FUNCTION df._write_runner_call() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_branches text;
BEGIN
    -- one writer at a time (a concurrent CREATE OR REPLACE of the same function fails)
    PERFORM pg_advisory_xact_lock(1147489354, 0);
    SELECT string_agg(format(E'    IF p_role OPERATOR(pg_catalog.=) %s::oid THEN\n'
                             || E'        RETURN (SELECT coalesce(pg_catalog.json_agg(r), ''[]'')\n'
                             || E'                  FROM df_exec.%I(p_sql, p_returns_rows, p_search_path) r);\n'
                             || E'    END IF;\n', o.role, df._runner_name(o.role::regrole)),
                      '' ORDER BY o.role)
      INTO v_branches
      FROM (SELECT p.proowner AS role FROM pg_proc p
             WHERE p.pronamespace = 'df_exec'::regnamespace AND p.prosecdef
               AND p.proname = df._runner_name(p.proowner::regrole)
             ORDER BY p.proowner LIMIT 50) o;
    EXECUTE format('CREATE OR REPLACE FUNCTION df._runner_call(p_role oid, p_sql text, '
                   'p_returns_rows boolean, p_search_path text) RETURNS json '
                   'LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS %L',
                   E'\nBEGIN\n' || coalesce(v_branches, '') || E'    RETURN NULL;\nEND\n');
    REVOKE ALL ON FUNCTION df._runner_call(oid, text, boolean, text) FROM PUBLIC;
END
$$;
SELECT df._write_runner_call();

REVOKE ALL ON FUNCTION df._write_runner_call() FROM PUBLIC;

CREATE OR REPLACE FUNCTION df._runner_gate_check() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT df._runner_ok(NEW.role) THEN
        RAISE EXCEPTION 'refusing the step runner of role %: it is not the canonical runner', NEW.role
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = 'df_exec'::regnamespace)
       OR EXISTS (SELECT 1 FROM pg_type t WHERE t.typnamespace = 'df_exec'::regnamespace)
       OR EXISTS (SELECT 1 FROM pg_operator o WHERE o.oprnamespace = 'df_exec'::regnamespace) THEN
        RAISE EXCEPTION 'schema df_exec may only contain step runners'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    EXECUTE format('REVOKE USAGE, CREATE ON SCHEMA df_exec FROM %s', NEW.role::text);
    DELETE FROM df.runner_gate g WHERE g.role = NEW.role;
    PERFORM df._write_runner_call();  -- the new runner gets its static call
    RETURN NULL;
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
    IF (SELECT pg_catalog.count(*) OPERATOR(pg_catalog.<>) v_prepared
               OR coalesce(pg_catalog.bool_or(s.prepare_time
                                              OPERATOR(pg_catalog.>=) pg_catalog.statement_timestamp()),
                           false)
          FROM pg_catalog.pg_prepared_statements s) THEN
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
