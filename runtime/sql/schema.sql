-- The dfc runtime schema: tables, row-level security, the pg_durable-compatible SQL API and the
-- per-role step runners. This file is the whole schema at the newest version; the numbered files
-- in migrations/ produce exactly the same catalog when applied in order (a test checks it).
--
-- Roles: the role that installs the schema owns everything in `df` and runs the worker (table
-- owners bypass row-level security). Users get access with df.grant_usage(role). A workflow step
-- runs inside df_exec.run_<role oid>, a SECURITY DEFINER function owned by the submitting role:
-- PostgreSQL refuses to change `role` or the session authorization inside such a function, so a
-- step cannot leave the submitter's identity whatever it executes.

CREATE SCHEMA df;
CREATE SCHEMA df_exec;
REVOKE ALL ON SCHEMA df_exec FROM PUBLIC;

CREATE TABLE df.schema_version (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- The role of the current user, also for names that need quoting ("labUser").
CREATE FUNCTION df._my_role() RETURNS regrole
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT pg_catalog.to_regrole(pg_catalog.quote_ident(current_user::text)) $$;

-- The role that owns the df schema (and runs the worker).
CREATE FUNCTION df._owner_role() RETURNS regrole
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT nspowner::regrole FROM pg_catalog.pg_namespace WHERE nspname = 'df' $$;

------------------------------------------------------------------------------------------------
-- Tables
------------------------------------------------------------------------------------------------

-- Compiled plans, versioned per (owner, name). Installed plans can be started by name; plans
-- passed to df.start as JSON are kept too (installed = false) so instances keep their plan.
CREATE TABLE df.plans (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner regrole NOT NULL DEFAULT df._my_role(),
    name text NOT NULL,
    version integer NOT NULL,
    hash text NOT NULL,
    installed boolean NOT NULL,
    plan jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner, installed, name, version)
);
CREATE INDEX plans_hash_idx ON df.plans (owner, hash);

CREATE TABLE df.instances (
    id text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{8}$'),
    label text,
    plan_id bigint NOT NULL REFERENCES df.plans (id),
    root_node text NOT NULL,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    submitted_by regrole NOT NULL DEFAULT df._my_role(),
    database text,
    search_path text NOT NULL DEFAULT pg_catalog.current_setting('search_path'),
    vars jsonb NOT NULL DEFAULT '{}',
    output text,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    completed_at timestamptz,
    failure text
);
CREATE INDEX instances_owner_created_idx ON df.instances (submitted_by, created_at DESC, id);
CREATE INDEX instances_created_idx ON df.instances (created_at DESC, id);

-- One row per plan node and instance: the latest status and result of that node.
CREATE TABLE df.nodes (
    instance_id text NOT NULL REFERENCES df.instances (id) ON DELETE CASCADE,
    id text NOT NULL,
    node_type text NOT NULL,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    result jsonb,
    runs integer NOT NULL DEFAULT 0,
    submitted_by regrole NOT NULL,
    started_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    PRIMARY KEY (instance_id, id)
);

-- Activations: a node being executed. `ready` rows are work for the worker (claimed with
-- FOR UPDATE SKIP LOCKED once run_at has passed); `waiting` rows are compound nodes waiting
-- for their children. The row lock of a claimed task is its lease: a worker that dies releases it.
CREATE TABLE df.tasks (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id text NOT NULL REFERENCES df.instances (id) ON DELETE CASCADE,
    node_id text NOT NULL,
    parent_id bigint,
    branch integer NOT NULL DEFAULT 0,
    status text NOT NULL CHECK (status IN ('ready', 'waiting')),
    run_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    -- json, not jsonb: row objects must keep their column order ("first column" of $name)
    scope json NOT NULL DEFAULT '{}',
    state json NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);
CREATE INDEX tasks_ready_idx ON df.tasks (run_at, id) WHERE status = 'ready';
CREATE INDEX tasks_parent_idx ON df.tasks (parent_id);
CREATE INDEX tasks_instance_idx ON df.tasks (instance_id);

CREATE TABLE df.vars (
    name text NOT NULL,
    value text NOT NULL,
    owner regrole NOT NULL DEFAULT df._my_role(),
    PRIMARY KEY (owner, name)
);

-- Signals are buffered here until a wait consumes them (FIFO per instance and name).
CREATE TABLE df.signals (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id text NOT NULL REFERENCES df.instances (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (name <> ''),
    payload jsonb NOT NULL,
    sent_by regrole NOT NULL DEFAULT df._my_role(),
    created_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);
CREATE INDEX signals_instance_idx ON df.signals (instance_id, name, id);

-- Worker registry: every running worker process and its heartbeat (for monitoring; claiming
-- does not depend on it, row locks are the leases).
CREATE TABLE df.workers (
    id text PRIMARY KEY,
    hostname text NOT NULL,
    pid integer NOT NULL,
    concurrency integer NOT NULL,
    started_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    last_seen_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    steps bigint NOT NULL DEFAULT 0
);

-- Completed forward steps of `undo` nodes (df.with_undo): when the instance fails, their undo
-- steps run newest first, each exactly once.
CREATE TABLE df.compensations (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id text NOT NULL REFERENCES df.instances (id) ON DELETE CASCADE,
    node_id text NOT NULL,
    undo_node text NOT NULL,
    scope json NOT NULL DEFAULT '{}',
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    created_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);
CREATE INDEX compensations_instance_idx ON df.compensations (instance_id, id);

-- Roles whose step runner is being created in the current transaction (see df._ensure_runner).
CREATE TABLE df.runner_gate (
    role regrole PRIMARY KEY
);

------------------------------------------------------------------------------------------------
-- Row-level security: every role sees and changes only its own rows. The owner (the worker)
-- bypasses it.
------------------------------------------------------------------------------------------------

ALTER TABLE df.plans ENABLE ROW LEVEL SECURITY;
ALTER TABLE df.instances ENABLE ROW LEVEL SECURITY;
ALTER TABLE df.nodes ENABLE ROW LEVEL SECURITY;
ALTER TABLE df.vars ENABLE ROW LEVEL SECURITY;
ALTER TABLE df.signals ENABLE ROW LEVEL SECURITY;
ALTER TABLE df.tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE df.runner_gate ENABLE ROW LEVEL SECURITY;

CREATE POLICY plans_own ON df.plans
    USING (owner = df._my_role()) WITH CHECK (owner = df._my_role());
CREATE POLICY instances_own ON df.instances
    USING (submitted_by = df._my_role()) WITH CHECK (submitted_by = df._my_role());
CREATE POLICY nodes_own ON df.nodes
    USING (submitted_by = df._my_role());
CREATE POLICY vars_own ON df.vars
    USING (owner = df._my_role()) WITH CHECK (owner = df._my_role());
CREATE POLICY signals_own ON df.signals
    USING (sent_by = df._my_role())
    WITH CHECK (sent_by = df._my_role()
                AND EXISTS (SELECT 1 FROM df.instances i WHERE i.id = instance_id));

------------------------------------------------------------------------------------------------
-- Triggers guarding what users may write
------------------------------------------------------------------------------------------------

-- Users insert instances (df.start runs with the caller's privileges, inside the caller's
-- transaction); everything but the start arguments is decided here.
CREATE FUNCTION df._instance_before_insert() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    NEW.status := 'pending';
    NEW.submitted_by := df._my_role();
    NEW.output := NULL;
    NEW.completed_at := NULL;
    NEW.created_at := pg_catalog.clock_timestamp();
    NEW.updated_at := NEW.created_at;
    IF NOT EXISTS (SELECT 1 FROM df.plans p WHERE p.id = NEW.plan_id AND p.owner = NEW.submitted_by) THEN
        RAISE EXCEPTION 'plan % is not visible to role %', NEW.plan_id, current_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER instance_before_insert BEFORE INSERT ON df.instances
    FOR EACH ROW EXECUTE FUNCTION df._instance_before_insert();

-- Materialise the node rows and the root activation, and wake the workers (on commit).
CREATE FUNCTION df._instance_after_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO df.nodes (instance_id, id, node_type, submitted_by)
    SELECT NEW.id, n ->> 'id', n ->> 'kind', NEW.submitted_by
      FROM df.plans p, jsonb_array_elements(p.plan -> 'nodes') n
     WHERE p.id = NEW.plan_id;
    INSERT INTO df.tasks (instance_id, node_id, status) VALUES (NEW.id, NEW.root_node, 'ready');
    PERFORM pg_notify('df_work', NEW.id);
    RETURN NULL;
END
$$;
CREATE TRIGGER instance_after_insert AFTER INSERT ON df.instances
    FOR EACH ROW EXECUTE FUNCTION df._instance_after_insert();

-- Users may only cancel (status -> cancelled) their own unfinished instances.
CREATE FUNCTION df._instance_before_update() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF df._my_role() IS DISTINCT FROM df._owner_role()
       AND NOT (NEW.status = 'cancelled' AND OLD.status IN ('pending', 'running')) THEN
        RAISE EXCEPTION 'instances can only be cancelled through df.cancel()'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    NEW.updated_at := pg_catalog.clock_timestamp();
    RETURN NEW;
END
$$;
CREATE TRIGGER instance_before_update BEFORE UPDATE ON df.instances
    FOR EACH ROW EXECUTE FUNCTION df._instance_before_update();

-- A cancelled instance leaves no work behind.
CREATE FUNCTION df._instance_after_cancel() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- tasks being executed right now are skipped: their workers interrupt them (df_cancel)
    DELETE FROM df.tasks d
     WHERE d.id IN (SELECT t.id FROM df.tasks t WHERE t.instance_id = NEW.id
                    FOR UPDATE SKIP LOCKED);
    UPDATE df.nodes n SET status = 'cancelled', updated_at = clock_timestamp()
     WHERE n.instance_id = NEW.id AND n.status = 'running';
    PERFORM pg_notify('df_cancel', NEW.id);
    PERFORM pg_notify('df_work', NEW.id);
    RETURN NULL;
END
$$;
CREATE TRIGGER instance_after_cancel AFTER UPDATE OF status ON df.instances
    FOR EACH ROW WHEN (NEW.status = 'cancelled' AND OLD.status <> 'cancelled')
    EXECUTE FUNCTION df._instance_after_cancel();

CREATE FUNCTION df._plan_before_insert() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    NEW.owner := df._my_role();
    NEW.created_at := now();
    RETURN NEW;
END
$$;
CREATE TRIGGER plan_before_insert BEFORE INSERT ON df.plans
    FOR EACH ROW EXECUTE FUNCTION df._plan_before_insert();

CREATE FUNCTION df._signal_after_insert() RETURNS trigger
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
CREATE TRIGGER signal_after_insert AFTER INSERT ON df.signals
    FOR EACH ROW EXECUTE FUNCTION df._signal_after_insert();

------------------------------------------------------------------------------------------------
-- Step runners: df_exec.run_<role oid>(sql, returns_rows, search_path), SECURITY DEFINER,
-- owned by the role. Created by df.start the first time a role starts a workflow; the
-- deferred check below runs at commit, proves the runner is exactly the canonical one and takes
-- back the temporary privileges on df_exec, so the role can never alter its runner afterwards.
------------------------------------------------------------------------------------------------

CREATE FUNCTION df._runner_body() RETURNS text
LANGUAGE sql IMMUTABLE
AS $body$ SELECT $src$
DECLARE
    r record;
BEGIN
    PERFORM pg_catalog.set_config('search_path', p_search_path, true);
    PERFORM pg_catalog.set_config('standard_conforming_strings', 'on', true);
    IF p_returns_rows THEN
        FOR r IN EXECUTE p_sql LOOP
            RETURN NEXT pg_catalog.to_json(r);
        END LOOP;
    ELSE
        EXECUTE p_sql;
    END IF;
END
$src$ $body$;

CREATE FUNCTION df._runner_name(p_role regrole) RETURNS name
LANGUAGE sql IMMUTABLE
AS $$ SELECT ('run_' || p_role::oid::text)::name $$;

-- True when the role's runner exists and is exactly the canonical one.
CREATE FUNCTION df._runner_ok(p_role regrole) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(*) = 1 AND bool_and(
               p.proowner = p_role
           AND p.prosecdef
           AND p.prosrc = df._runner_body()
           AND p.proconfig IS NULL
           AND p.prokind = 'f'
           AND p.proretset
           AND p.prorettype = 'json'::regtype
           AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'plpgsql')
           AND pg_get_function_identity_arguments(p.oid)
               = 'p_sql text, p_returns_rows boolean, p_search_path text'
           AND p.proacl IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM aclexplode(p.proacl) a
                            WHERE a.privilege_type <> 'EXECUTE' OR a.is_grantable
                               OR a.grantee NOT IN (p_role::oid, df._owner_role()::oid)))
      FROM pg_proc p
     WHERE p.pronamespace = 'df_exec'::regnamespace
       AND p.proowner = p_role
$$;

-- Runs as the df owner, so it cannot find out who called it: the caller names itself. Naming
-- another role does that role no harm, the commit-time check below applies to it all the same.
CREATE FUNCTION df._runner_gate_open(p_role regrole) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_proc p WHERE p.pronamespace = 'df_exec'::regnamespace
                                        AND p.proowner = p_role) THEN
        RAISE EXCEPTION 'the step runner of role % already exists', p_role;
    END IF;
    INSERT INTO df.runner_gate (role) VALUES (p_role) ON CONFLICT DO NOTHING;
    EXECUTE format('GRANT USAGE, CREATE ON SCHEMA df_exec TO %s', p_role::text);
END
$$;

CREATE FUNCTION df._runner_gate_check() RETURNS trigger
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
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER runner_gate_check AFTER INSERT ON df.runner_gate
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION df._runner_gate_check();

CREATE FUNCTION df._ensure_runner() RETURNS void
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

------------------------------------------------------------------------------------------------
-- Starting and controlling instances (pg_durable's API)
------------------------------------------------------------------------------------------------

CREATE FUNCTION df.version() RETURNS text
LANGUAGE sql IMMUTABLE
AS $$ SELECT '0.1.0 (dfc runtime, schema 2)' $$;

-- Store a compiled plan for the caller; returns its id. A plan whose hash matches the latest
-- version under the same name is not stored again.
CREATE FUNCTION df._store_plan(p_plan jsonb, p_installed boolean) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name text := p_plan ->> 'name';
    v_hash text := p_plan ->> 'hash';
    v_latest df.plans;
BEGIN
    IF jsonb_typeof(p_plan) <> 'object' OR p_plan ->> 'format' IS DISTINCT FROM 'dfc-plan' THEN
        RAISE EXCEPTION 'Invalid durable function: not a dfc plan (expected "format": "dfc-plan")'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF (p_plan ->> 'format_version') IS DISTINCT FROM '1' THEN
        RAISE EXCEPTION 'Invalid durable function: unsupported plan format_version %',
            p_plan ->> 'format_version' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF coalesce(v_name, '') = '' OR v_hash IS NULL
       OR jsonb_typeof(p_plan -> 'nodes') <> 'array' OR p_plan ->> 'root' IS NULL THEN
        RAISE EXCEPTION 'Invalid durable function: a plan needs name, hash, root and nodes'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM jsonb_array_elements(p_plan -> 'nodes') n
                    WHERE n ->> 'id' = p_plan ->> 'root') THEN
        RAISE EXCEPTION 'Invalid durable function: root node % is not in the node table',
            p_plan ->> 'root' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(1147489351, hashtext(v_name));
    SELECT * INTO v_latest FROM df.plans p
     WHERE p.owner = df._my_role() AND p.installed = p_installed AND p.name = v_name
     ORDER BY p.version DESC LIMIT 1;
    IF FOUND AND v_latest.hash = v_hash THEN
        RETURN v_latest.id;
    END IF;
    INSERT INTO df.plans (name, version, hash, installed, plan)
    VALUES (v_name, coalesce(v_latest.version, 0) + 1, v_hash, p_installed, p_plan)
    RETURNING id INTO v_latest.id;
    RETURN v_latest.id;
END
$$;

-- Install (or re-install) a plan by name; returns the version that is now current.
CREATE FUNCTION df.install_plan(plan jsonb) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint := df._store_plan(plan, true);
BEGIN
    RETURN (SELECT p.version FROM df.plans p WHERE p.id = v_id);
END
$$;

-- The plan for a single SQL statement (pg_durable's auto-wrap of a plain string).
CREATE FUNCTION df._sql_plan(p_sql text) RETURNS jsonb
LANGUAGE sql IMMUTABLE
AS $$
    SELECT jsonb_build_object(
        'format', 'dfc-plan', 'format_version', 1, 'compiler', 'df.start',
        'name', 'sql', 'hash', 'sha256:' || encode(sha256(convert_to(p_sql, 'UTF8')), 'hex'),
        'label', NULL, 'database', NULL, 'transaction_mode', 'caller', 'root', 'n0',
        'variables', jsonb_build_object('used', '[]'::jsonb, 'defaults', '{}'::jsonb),
        'bindings', '{}'::jsonb, 'source', jsonb_build_object('file', '<df.start>'),
        'nodes', jsonb_build_array(jsonb_build_object(
            'id', 'n0', 'kind', 'sql', 'bind', NULL, 'at_least_once', false,
            'span', jsonb_build_object('line', 1, 'column', 1, 'end_line', 1, 'end_column', 1),
            'sql', p_sql, 'transactional', true, 'columns', NULL)))
$$;

-- transaction_mode => 'new' starts the workflow over a loopback connection of the dblink
-- extension, as the same role, in caller mode there: it commits at once and survives the
-- caller's rollback. The connection goes through the foreign server df_loopback when the role
-- has a user mapping on it (how a role without superuser supplies its password); a superuser
-- without one connects to this server's own socket or port.
CREATE FUNCTION df.start(fut text, label text DEFAULT NULL, database text DEFAULT NULL,
                         transaction_mode text DEFAULT 'caller')
RETURNS text
-- no SET search_path: the caller's search_path is what the steps will run with
LANGUAGE plpgsql
AS $$
DECLARE
    v_plan_id bigint;
    v_plan jsonb;
    v_text text := btrim(fut);
    v_vars jsonb;
    v_id text;
    v_search_path text := current_setting('search_path');
    v_mode text := lower(coalesce(transaction_mode, 'caller'));
    v_new text := 'df.start() with transaction_mode => ''new''';
    v_role text := current_user;
    v_dblink name;
    v_superuser boolean;
    v_mapped boolean;
    v_link text := 'df_start_new';
    v_connstr text;
    v_host text;
    v_setup text;
    v_user text;
    v_db text;
    v_message text;
    v_detail text;
    v_admin text;
    v_leftover boolean;
    v_done boolean;
    v_pid integer;
    v_functions text[] := ARRAY['dblink_connect(text, text)', 'dblink(text, text)',
                                'dblink_send_query(text, text)', 'dblink_is_busy(text)',
                                'dblink_get_result(text)', 'dblink_cancel_query(text)',
                                'dblink_disconnect(text)', 'dblink_get_connections()'];
BEGIN
    IF fut IS NULL THEN
        RAISE EXCEPTION 'Invalid durable function: fut is NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF v_mode NOT IN ('caller', 'new') THEN
        RAISE EXCEPTION 'invalid transaction_mode "%" for df.start(): expected ''caller'' or ''new''',
            transaction_mode USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_mode = 'new' THEN
        IF current_setting('df.in_workflow', true) = 'true' THEN
            RAISE EXCEPTION '% cannot be called inside a workflow - a step''s own df.start commits with the step', v_new
                USING HINT = 'Leave out transaction_mode (or pass ''caller'') in a workflow step.';
        END IF;
        SELECT r.rolsuper INTO v_superuser FROM pg_catalog.pg_roles r WHERE r.rolname = v_role;
        IF NOT (SELECT r.rolcanlogin FROM pg_catalog.pg_roles r WHERE r.rolname = v_role) THEN
            RAISE EXCEPTION 'current_user "%" does not have LOGIN privilege. % connects back to the database as this role',
                v_role, v_new USING ERRCODE = 'insufficient_privilege',
                HINT = format('An administrator runs ALTER ROLE %I LOGIN; or call df.start with transaction_mode => ''caller''.', v_role);
        END IF;
        SELECT n.nspname INTO v_dblink
          FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
         WHERE e.extname = 'dblink';
        IF v_dblink IS NULL THEN
            RAISE EXCEPTION '% needs the dblink extension, which is not installed in database "%"',
                v_new, current_database() USING ERRCODE = 'feature_not_supported',
                HINT = format('An administrator runs CREATE EXTENSION dblink; in database %I (dblink is one of PostgreSQL''s contrib modules), or call df.start with transaction_mode => ''caller'' and commit.', current_database());
        END IF;
        IF NOT has_schema_privilege(v_dblink, 'USAGE')
           OR EXISTS (SELECT 1 FROM unnest(v_functions) f
                       WHERE NOT has_function_privilege(format('%I.%s', v_dblink, f), 'EXECUTE')) THEN
            RAISE EXCEPTION '% needs the dblink extension, which role "%" may not use', v_new, v_role
                USING ERRCODE = 'insufficient_privilege',
                HINT = format('An administrator runs GRANT USAGE ON SCHEMA %I TO %I; GRANT EXECUTE ON FUNCTION %s TO %I;',
                              v_dblink, v_role,
                              (SELECT string_agg(format('%I.%s', v_dblink, f), ', ') FROM unnest(v_functions) f),
                              v_role);
        END IF;
        -- what an administrator runs to let this role in with its password
        v_admin := format('CREATE SERVER df_loopback FOREIGN DATA WRAPPER dblink_fdw OPTIONS (host %L, port %L, dbname %L); '
                          'GRANT USAGE ON FOREIGN SERVER df_loopback TO %I; '
                          'CREATE USER MAPPING FOR %I SERVER df_loopback OPTIONS (user %L, password ''…'');',
                          coalesce(host(inet_server_addr()), 'localhost'), current_setting('port'),
                          current_database(), v_role, v_role, v_role);
        SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_user_mappings m
                        WHERE m.srvname = 'df_loopback'
                          AND m.umuser IN (0, (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = v_role)))
          INTO v_mapped;
        IF v_mapped THEN
            IF NOT has_server_privilege('df_loopback', 'USAGE') THEN
                RAISE EXCEPTION '% connects through the foreign server df_loopback, which role "%" may not use',
                    v_new, v_role USING ERRCODE = 'insufficient_privilege',
                    HINT = format('An administrator runs GRANT USAGE ON FOREIGN SERVER df_loopback TO %I;', v_role);
            END IF;
            v_connstr := 'df_loopback';
        ELSIF v_superuser THEN
            -- the server's own socket (or port): the address a loopback login is sure to reach
            BEGIN
                v_host := nullif(btrim(split_part(current_setting('unix_socket_directories'), ',', 1), ' "'), '');
            EXCEPTION WHEN insufficient_privilege OR undefined_object THEN
                v_host := NULL;
            END;
            v_connstr := format('host=''%s'' port=''%s'' dbname=''%s'' user=''%s'' application_name=''dfc df.start''',
                                replace(replace(coalesce(v_host, 'localhost'), '\', '\\'), '''', '\'''),
                                replace(replace(current_setting('port'), '\', '\\'), '''', '\'''),
                                replace(replace(current_database(), '\', '\\'), '''', '\'''),
                                replace(replace(v_role, '\', '\\'), '''', '\'''));
        ELSIF EXISTS (SELECT 1 FROM pg_catalog.pg_foreign_server s WHERE s.srvname = 'df_loopback') THEN
            RAISE EXCEPTION '% needs a user mapping for role "%" on the foreign server df_loopback',
                v_new, v_role USING ERRCODE = 'insufficient_privilege',
                DETAIL = 'dblink lets a role without superuser connect only with a password of its own.',
                HINT = format('An administrator runs GRANT USAGE ON FOREIGN SERVER df_loopback TO %I; CREATE USER MAPPING FOR %I SERVER df_loopback OPTIONS (user %L, password ''…'');',
                              v_role, v_role, v_role);
        ELSE
            RAISE EXCEPTION '% needs the foreign server df_loopback and a user mapping for role "%"',
                v_new, v_role USING ERRCODE = 'insufficient_privilege',
                DETAIL = 'dblink lets a role without superuser connect only with a password of its own.',
                HINT = format('An administrator runs (with this server''s address): %s', v_admin);
        END IF;
        -- a connection left behind by a cancelled call of this session
        EXECUTE format('SELECT %L = ANY (%I.dblink_get_connections())', v_link, v_dblink) INTO v_leftover;
        IF v_leftover THEN
            EXECUTE format('SELECT %I.dblink_disconnect($1)', v_dblink) USING v_link;
        END IF;
        BEGIN
            EXECUTE format('SELECT %I.dblink_connect($1, $2)', v_dblink) USING v_link, v_connstr;
        EXCEPTION
            WHEN sqlclient_unable_to_establish_sqlconnection OR SQLSTATE '2F003'
                 OR undefined_object THEN
                GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL;
                RAISE EXCEPTION '% could not connect back to database "%" as role "%": %',
                    v_new, current_database(), v_role, concat_ws(': ', v_message, nullif(rtrim(v_detail, E'\n'), ''))
                    USING ERRCODE = 'sqlclient_unable_to_establish_sqlconnection',
                    HINT = CASE WHEN v_connstr = 'df_loopback'
                        THEN format('Check the options of the foreign server df_loopback (host, port, dbname of this server) and that the user mapping for %I has the role''s own user name and current password; pg_hba.conf must accept that login.', v_role)
                        ELSE format('Allow this login in pg_hba.conf, or have an administrator set up a password login: %s', v_admin) END;
        END;
        BEGIN
            v_setup := format(
                'SELECT current_user::text, current_database()::text, pg_catalog.pg_backend_pid() FROM (SELECT '
                'pg_catalog.set_config(''search_path'', %L, false), '
                'pg_catalog.set_config(''lock_timeout'', %L, false), '
                'pg_catalog.set_config(''statement_timeout'', %L, false), '
                'pg_catalog.set_config(''df.in_workflow'', ''false'', false)) s',
                v_search_path,
                CASE current_setting('lock_timeout') WHEN '0' THEN '30s' ELSE current_setting('lock_timeout') END,
                CASE current_setting('statement_timeout') WHEN '0' THEN '30s' ELSE current_setting('statement_timeout') END);
            EXECUTE format('SELECT u, d, p FROM %I.dblink($1, $2) AS r(u text, d text, p integer)', v_dblink)
                INTO v_user, v_db, v_pid USING v_link, v_setup;
            IF v_user IS DISTINCT FROM v_role OR v_db IS DISTINCT FROM current_database() THEN
                RAISE EXCEPTION '% connected back as role "%" to database "%", not as "%" to "%"',
                    v_new, v_user, v_db, v_role, current_database()
                    USING ERRCODE = 'invalid_authorization_specification',
                    HINT = format('The foreign server df_loopback must name this database (dbname %L) and the user mapping for %I the role itself (user %L).',
                                  current_database(), v_role, v_role);
            END IF;
            EXECUTE format('SELECT %I.dblink_send_query($1, $2)', v_dblink)
                USING v_link, format('SELECT df.start(%L, %L, %L)', fut, label, database);
            -- the new transaction may need a lock this one holds (a plan stored or a runner
            -- created here), directly or behind other sessions: neither would ever give way,
            -- and PostgreSQL cannot see that
            LOOP
                EXECUTE format('SELECT %I.dblink_is_busy($1) = 0', v_dblink) INTO v_done USING v_link;
                EXIT WHEN v_done;
                IF pg_backend_pid() IN (WITH RECURSIVE blockers(pid) AS (
                                            SELECT unnest(pg_blocking_pids(v_pid))
                                            UNION
                                            SELECT unnest(pg_blocking_pids(b.pid)) FROM blockers b)
                                        SELECT b.pid FROM blockers b) THEN
                    EXECUTE format('SELECT %I.dblink_cancel_query($1)', v_dblink) USING v_link;
                    RAISE EXCEPTION '% would wait for a lock this transaction holds', v_new
                        USING ERRCODE = 'lock_not_available',
                        HINT = 'The new transaction cannot go on before this one ends: this one stored a plan of the same name (every single-statement start is named sql) or created the role''s step runner. Commit first, or use transaction_mode => ''caller''.';
                END IF;
                PERFORM pg_sleep(0.002);
            END LOOP;
            EXECUTE format('SELECT id FROM %I.dblink_get_result($1) AS r(id text)', v_dblink)
                INTO v_id USING v_link;
        EXCEPTION WHEN OTHERS THEN
            EXECUTE format('SELECT %I.dblink_disconnect($1)', v_dblink) USING v_link;
            RAISE;
        END;
        EXECUTE format('SELECT %I.dblink_disconnect($1)', v_dblink) USING v_link;
        RETURN v_id;
    END IF;
    IF database IS NOT NULL AND database <> current_database() THEN
        IF NOT EXISTS (SELECT 1 FROM pg_database d WHERE d.datname = database) THEN
            RAISE EXCEPTION 'database "%" does not exist', database USING ERRCODE = 'invalid_catalog_name';
        END IF;
        RAISE EXCEPTION 'database "%" is not this database: the dfc runtime runs workflows in the database where df is installed (%)',
            database, current_database() USING ERRCODE = 'feature_not_supported';
    END IF;
    IF left(v_text, 1) = '{' THEN
        BEGIN
            v_plan := v_text::jsonb;
        EXCEPTION WHEN invalid_text_representation THEN
            RAISE EXCEPTION 'Invalid durable function: the argument starts with { but is not valid JSON'
                USING ERRCODE = 'invalid_parameter_value';
        END;
        v_plan_id := df._store_plan(v_plan, false);
    ELSE
        SELECT p.id INTO v_plan_id FROM df.plans p
         WHERE p.owner = df._my_role() AND p.installed AND p.name = v_text
         ORDER BY p.version DESC LIMIT 1;
        IF v_plan_id IS NULL THEN
            v_plan_id := df._store_plan(df._sql_plan(fut), false);
        END IF;
    END IF;
    SELECT p.plan INTO v_plan FROM df.plans p WHERE p.id = v_plan_id;
    PERFORM df._ensure_runner();
    SELECT coalesce(v_plan #> '{variables,defaults}', '{}'::jsonb)
           || coalesce((SELECT jsonb_object_agg(v.name, v.value) FROM df.vars v
                         WHERE v.owner = df._my_role()), '{}'::jsonb)
      INTO v_vars;
    LOOP
        v_id := right(replace(gen_random_uuid()::text, '-', ''), 8);
        BEGIN
            INSERT INTO df.instances (id, label, plan_id, root_node, database, search_path, vars)
            VALUES (v_id, coalesce(label, v_plan ->> 'label'), v_plan_id, v_plan ->> 'root',
                    current_database(), v_search_path, v_vars);
            EXIT;
        EXCEPTION WHEN unique_violation THEN
            -- id collision: roll again
        END;
    END LOOP;
    RETURN v_id;
END
$$;

CREATE FUNCTION df.status(instance_id text) RETURNS text
LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$ SELECT i.status FROM df.instances i WHERE i.id = instance_id $$;

CREATE FUNCTION df.result(instance_id text) RETURNS text
LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$
    SELECT n.result::text
      FROM df.instances i JOIN df.nodes n ON n.instance_id = i.id AND n.id = i.root_node
     WHERE i.id = result.instance_id AND i.status = 'completed' AND n.status = 'completed'
$$;

CREATE FUNCTION df.cancel(instance_id text, reason text DEFAULT 'Cancelled by user') RETURNS text
LANGUAGE plpgsql STRICT SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM df.instances i WHERE i.id = instance_id) THEN
        RAISE EXCEPTION 'Instance not found or access denied: %', instance_id
            USING ERRCODE = 'no_data_found';
    END IF;
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

CREATE FUNCTION df.signal(instance_id text, signal_name text, signal_data text DEFAULT '{}')
RETURNS text
LANGUAGE plpgsql STRICT SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_payload jsonb;
    v_status text;
BEGIN
    IF instance_id = '' THEN
        RAISE EXCEPTION 'instance_id cannot be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF signal_name = '' THEN
        RAISE EXCEPTION 'Signal name cannot be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT i.status INTO v_status FROM df.instances i WHERE i.id = instance_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Instance not found or access denied: %', instance_id
            USING ERRCODE = 'no_data_found';
    END IF;
    IF v_status NOT IN ('pending', 'running') THEN
        RAISE EXCEPTION 'Instance % is %; signals can only be sent to pending or running instances',
            instance_id, v_status
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    BEGIN
        v_payload := signal_data::jsonb;
    EXCEPTION WHEN invalid_text_representation THEN
        v_payload := to_jsonb(signal_data);
    END;
    INSERT INTO df.signals (instance_id, name, payload) VALUES (instance_id, signal_name, v_payload);
    RETURN 'OK';
END
$$;

CREATE FUNCTION df.await_instance(instance_id text, timeout_seconds integer DEFAULT 30)
RETURNS text
LANGUAGE plpgsql STRICT SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_status text;
    v_deadline timestamptz := clock_timestamp() + make_interval(secs => timeout_seconds);
BEGIN
    IF current_setting('df.in_workflow', true) = 'true' THEN
        RAISE EXCEPTION 'df.await_instance() cannot be called inside a workflow - it would block the step';
    END IF;
    IF timeout_seconds <= 0 THEN
        RAISE EXCEPTION 'timeout_seconds must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    LOOP
        SELECT i.status INTO v_status FROM df.instances i WHERE i.id = instance_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'Instance not found: %', instance_id USING ERRCODE = 'no_data_found';
        END IF;
        IF v_status IN ('completed', 'failed', 'cancelled') THEN
            RETURN v_status;
        END IF;
        IF clock_timestamp() >= v_deadline THEN
            RAISE EXCEPTION 'Timeout after %s waiting for instance % (status: %). Check if a worker is running.',
                timeout_seconds, instance_id, v_status USING ERRCODE = 'query_canceled';
        END IF;
        PERFORM pg_sleep(0.05);
    END LOOP;
END
$$;

CREATE FUNCTION df.wait_for_completion(instance_id text, timeout_seconds integer DEFAULT 30)
RETURNS text
LANGUAGE plpgsql STRICT SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE WARNING 'df.wait_for_completion() is deprecated, use df.await_instance()';
    RETURN df.await_instance(instance_id, timeout_seconds);
END
$$;

------------------------------------------------------------------------------------------------
-- Variables
------------------------------------------------------------------------------------------------

CREATE FUNCTION df._refuse_in_workflow(p_function text) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF current_setting('df.in_workflow', true) = 'true' THEN
        RAISE EXCEPTION '%() cannot be called inside a workflow - set variables before starting the workflow',
            p_function;
    END IF;
END
$$;

CREATE FUNCTION df.setvar(name text, value text) RETURNS text
LANGUAGE plpgsql STRICT SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM df._refuse_in_workflow('df.setvar');
    INSERT INTO df.vars AS v (name, value) VALUES (setvar.name, setvar.value)
        ON CONFLICT ON CONSTRAINT vars_pkey DO UPDATE SET value = EXCLUDED.value;
    RETURN 'OK';
END
$$;

CREATE FUNCTION df.getvar(name text) RETURNS text
LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$ SELECT v.value FROM df.vars v WHERE v.owner = df._my_role() AND v.name = getvar.name $$;

CREATE FUNCTION df.unsetvar(name text) RETURNS text
LANGUAGE plpgsql STRICT SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM df._refuse_in_workflow('df.unsetvar');
    DELETE FROM df.vars v WHERE v.owner = df._my_role() AND v.name = unsetvar.name;
    RETURN 'OK';
END
$$;

CREATE FUNCTION df.clearvars() RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM df._refuse_in_workflow('df.clearvars');
    DELETE FROM df.vars v WHERE v.owner = df._my_role();
    RETURN 'OK';
END
$$;

------------------------------------------------------------------------------------------------
-- Monitoring
------------------------------------------------------------------------------------------------

-- pg_durable's node type names.
CREATE FUNCTION df._node_type(p_kind text) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
    SELECT CASE p_kind
        WHEN 'sql' THEN 'SQL' WHEN 'seq' THEN 'THEN' WHEN 'join' THEN 'JOIN' WHEN 'race' THEN 'RACE'
        WHEN 'if' THEN 'IF' WHEN 'if_rows' THEN 'IF' WHEN 'loop' THEN 'LOOP' WHEN 'break' THEN 'BREAK'
        WHEN 'sleep' THEN 'SLEEP' WHEN 'wait_schedule' THEN 'WAIT_SCHEDULE' WHEN 'wait_signal' THEN 'SIGNAL'
        WHEN 'http' THEN 'HTTP' WHEN 'http_multipart' THEN 'HTTP_MULTIPART'
        ELSE upper(p_kind) END
$$;

CREATE FUNCTION df.list_instances(status_filter text DEFAULT NULL, limit_count integer DEFAULT 100)
RETURNS TABLE (instance_id text, label text, function_name text, status text,
               execution_count bigint, output text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    IF limit_count < 1 THEN
        RAISE EXCEPTION 'limit_count must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF limit_count > 1000 THEN
        RAISE EXCEPTION 'limit_count must be at most 1000' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    SELECT i.id, i.label, p.name, i.status, 1::bigint, i.output
      FROM df.instances i JOIN df.plans p ON p.id = i.plan_id
     WHERE status_filter IS NULL OR i.status = status_filter
     ORDER BY i.created_at DESC, i.id
     LIMIT limit_count;
END
$$;

CREATE FUNCTION df.list_instances(status_filter text, limit_count integer, label_filter text,
                                  after_cursor text DEFAULT NULL)
RETURNS TABLE (instance_id text, label text, function_name text, status text,
               execution_count bigint, output text, created_at timestamptz,
               completed_at timestamptz, next_cursor text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_after_ts timestamptz;
    v_after_id text;
    v_parts text[];
    v_last record;
    v_count integer;
    v_next text;
BEGIN
    IF limit_count IS NULL OR limit_count < 1 THEN
        RAISE EXCEPTION 'limit_count must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF limit_count > 1000 THEN
        RAISE EXCEPTION 'limit_count must be at most 1000' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF after_cursor IS NOT NULL THEN
        BEGIN
            IF length(after_cursor) > 512 THEN
                RAISE EXCEPTION 'too long';
            END IF;
            v_parts := string_to_array(convert_from(decode(after_cursor, 'hex'), 'UTF8'), '|');
            IF array_length(v_parts, 1) <> 3 OR v_parts[1] <> 'v1' THEN
                RAISE EXCEPTION 'bad cursor';
            END IF;
            v_after_ts := v_parts[2]::timestamptz;
            v_after_id := v_parts[3];
        EXCEPTION WHEN OTHERS THEN
            RAISE EXCEPTION 'df.list_instances: invalid after_cursor' USING ERRCODE = 'invalid_parameter_value';
        END;
    END IF;
    RETURN QUERY
    WITH page AS (
        SELECT i.id, i.label, p.name, i.status, i.output, i.created_at, i.completed_at
          FROM df.instances i JOIN df.plans p ON p.id = i.plan_id
         WHERE (status_filter IS NULL OR i.status = status_filter)
           AND (label_filter IS NULL OR i.label = label_filter)
           AND (v_after_ts IS NULL OR i.created_at < v_after_ts
                OR (i.created_at = v_after_ts AND i.id > v_after_id))
         ORDER BY i.created_at DESC, i.id
         LIMIT limit_count + 1
    ), numbered AS (
        SELECT page.*, row_number() OVER (ORDER BY page.created_at DESC, page.id) AS rn,
               count(*) OVER () AS total
          FROM page
    ), last_row AS (
        SELECT n.created_at, n.id FROM numbered n WHERE n.rn = limit_count AND n.total > limit_count
    )
    SELECT n.id, n.label, n.name, n.status, 1::bigint, n.output, n.created_at,
           CASE WHEN n.status = 'completed' THEN n.completed_at END,
           (SELECT encode(convert_to('v1|' || to_char(l.created_at AT TIME ZONE 'UTC',
                                                      'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00|' || l.id,
                                     'UTF8'), 'hex') FROM last_row l)
      FROM numbered n
     WHERE n.rn <= limit_count
     ORDER BY n.rn;
END
$$;

CREATE FUNCTION df.instance_info(p_instance_id text)
RETURNS TABLE (instance_id text, label text, function_name text, function_version text,
               current_execution_id bigint, status text, output text)
LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$
    SELECT i.id, i.label, p.name, p.version::text, 1::bigint, i.status, i.output
      FROM df.instances i JOIN df.plans p ON p.id = i.plan_id
     WHERE i.id = p_instance_id
$$;

-- Parent of every node of a plan (for inferred status).
CREATE FUNCTION df._plan_edges(p_plan jsonb)
RETURNS TABLE (parent text, child text, ord integer)
LANGUAGE sql IMMUTABLE
AS $$
    SELECT n ->> 'id', c.child, c.ord::integer
      FROM jsonb_array_elements(p_plan -> 'nodes') n,
           LATERAL (
               SELECT value AS child, ordinality AS ord
                 FROM jsonb_array_elements_text(coalesce(n -> 'children', '[]'::jsonb)) WITH ORDINALITY
               UNION ALL
               SELECT n ->> k.key, k.ord
                 FROM (VALUES ('condition', 1), ('then', 2), ('else', 3), ('body', 1), ('undo', 2))
                      AS k(key, ord)
                WHERE jsonb_typeof(n -> k.key) = 'string'
                  AND n ->> 'kind' NOT IN ('http', 'http_multipart')  -- their body is data
           ) c
$$;

CREATE FUNCTION df.instance_nodes(instance_id text)
RETURNS TABLE (node_id text, node_type text, query text, result_name text, left_node text,
               right_node text, status text, result text, status_details text,
               inferred_status text, inferred_status_from_ancestor_id text, updated_at timestamptz)
LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE inst AS (
        SELECT i.id, i.status AS istatus, i.root_node, p.plan
          FROM df.instances i JOIN df.plans p ON p.id = i.plan_id
         WHERE i.id = instance_nodes.instance_id
    ), spec AS (
        SELECT n ->> 'id' AS id, n FROM inst, jsonb_array_elements(inst.plan -> 'nodes') n
    ), edges AS (
        SELECT e.* FROM inst, df._plan_edges(inst.plan) e
    ), tree AS (
        -- walk from the root carrying the nearest finished ancestor
        SELECT inst.root_node AS id, NULL::text AS done_ancestor FROM inst
        UNION ALL
        SELECT e.child,
               CASE WHEN pn.status IN ('completed', 'failed', 'cancelled') THEN t.id
                    ELSE t.done_ancestor END
          FROM tree t
          JOIN edges e ON e.parent = t.id
          JOIN df.nodes pn ON pn.instance_id = instance_nodes.instance_id AND pn.id = t.id
    )
    SELECT s.id,
           df._node_type(s.n ->> 'kind'),
           CASE WHEN s.n ->> 'kind' = 'sql' THEN s.n ->> 'sql'
                WHEN s.n ->> 'kind' IN ('seq', 'join', 'race', 'loop', 'if') THEN NULL
                ELSE (s.n - 'id' - 'kind' - 'bind' - 'at_least_once' - 'span')::text END,
           s.n ->> 'bind',
           CASE WHEN s.n ->> 'kind' NOT IN ('http', 'http_multipart')
                THEN coalesce(s.n #>> '{children,0}', s.n ->> 'then', s.n ->> 'body') END,
           coalesce(s.n #>> '{children,1}', s.n ->> 'else'),
           dn.status,
           dn.result::text,
           jsonb_strip_nulls(jsonb_build_object('runs', dn.runs, 'attempts', dn.attempts,
                                                'last_error', dn.last_error))::text,
           CASE WHEN dn.status IN ('completed', 'failed', 'cancelled') THEN dn.status
                WHEN t.done_ancestor IS NOT NULL THEN 'skipped'
                WHEN inst.istatus IN ('completed', 'failed', 'cancelled') AND dn.status = 'pending'
                    THEN 'skipped'
                ELSE dn.status END,
           CASE WHEN dn.status NOT IN ('completed', 'failed', 'cancelled') THEN t.done_ancestor END,
           dn.updated_at
      FROM inst
      JOIN spec s ON true
      JOIN df.nodes dn ON dn.instance_id = inst.id AND dn.id = s.id
      LEFT JOIN tree t ON t.id = s.id
     ORDER BY (substr(s.id, 2))::integer
$$;

CREATE FUNCTION df.metrics()
RETURNS TABLE (total_instances bigint, running_instances bigint, completed_instances bigint,
               failed_instances bigint, total_executions bigint, total_events bigint)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(*),
           count(*) FILTER (WHERE i.status IN ('pending', 'running')),
           count(*) FILTER (WHERE i.status = 'completed'),
           count(*) FILTER (WHERE i.status = 'failed'),
           count(*),
           (SELECT count(*) FROM df.nodes n WHERE n.runs > 0)
      FROM df.instances i
$$;

------------------------------------------------------------------------------------------------
-- df.explain: the plan tree (pg_durable's layout, SQL never truncated) with live markers.
------------------------------------------------------------------------------------------------

CREATE FUNCTION df._explain_label(p_node jsonb) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
    SELECT CASE p_node ->> 'kind'
        WHEN 'sql' THEN 'SQL: ' || (p_node ->> 'sql')
        WHEN 'sleep' THEN 'SLEEP ' || (p_node ->> 'seconds') || 's'
        WHEN 'wait_schedule' THEN 'WAIT ''' || (p_node ->> 'cron') || ''''
        WHEN 'wait_signal' THEN 'SIGNAL ''' || (p_node ->> 'signal') || ''''
            || coalesce(' (' || (p_node ->> 'timeout_seconds') || 's)', '')
        WHEN 'http' THEN 'HTTP ' || (p_node ->> 'method') || ' ' || (p_node ->> 'url')
        WHEN 'http_multipart' THEN 'HTTP_MULTIPART ' || (p_node ->> 'method') || ' ' || (p_node ->> 'url')
        WHEN 'loop' THEN CASE WHEN jsonb_typeof(p_node -> 'condition') = 'string'
                              THEN 'LOOP (while)' ELSE 'LOOP (infinite)' END
        WHEN 'break' THEN CASE WHEN p_node ->> 'value' IS NULL THEN 'BREAK'
                               ELSE 'BREAK ''' || (p_node ->> 'value') || '''' END
        WHEN 'if' THEN 'IF'
        WHEN 'if_rows' THEN 'IF ROWS ''' || (p_node ->> 'result_name') || ''''
        WHEN 'join' THEN 'JOIN (' || jsonb_array_length(p_node -> 'children') || ')'
        WHEN 'race' THEN 'RACE'
        WHEN 'seq' THEN 'SEQUENCE'
        WHEN 'retry' THEN 'RETRY (' || (p_node ->> 'max_attempts') || ' attempts)'
        WHEN 'timeout' THEN 'TIMEOUT ' || (p_node ->> 'seconds') || 's'
        WHEN 'undo' THEN 'WITH UNDO'
        ELSE upper(p_node ->> 'kind') END
    || CASE WHEN p_node ->> 'bind' IS NOT NULL
            THEN ' |=> ''' || (p_node ->> 'bind') || '''' ELSE '' END
$$;

CREATE FUNCTION df._explain_marker(p_status text) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
    SELECT CASE p_status WHEN 'completed' THEN ' ✓' WHEN 'failed' THEN ' ✗' WHEN 'running' THEN ' ⏳'
                         WHEN 'pending' THEN ' ○' WHEN 'skipped' THEN ' ⊘'
                         WHEN 'cancelled' THEN ' ⊘' ELSE '' END
$$;

-- Lines for one node: p_prefix || p_connector || label, compound sections indented below it.
CREATE FUNCTION df._explain_lines(p_nodes jsonb, p_status jsonb, p_id text, p_prefix text,
                                  p_connector text)
RETURNS SETOF text
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v_node jsonb := p_nodes -> p_id;
    v_kind text := v_node ->> 'kind';
    v_child text;
    v_i integer := 0;
    v_n integer;
    v_sections jsonb;
    v_section jsonb;
BEGIN
    IF v_kind = 'seq' THEN
        -- a sequence is flattened: its first step takes the connector, the others an arrow
        FOR v_child IN SELECT jsonb_array_elements_text(v_node -> 'children') LOOP
            RETURN QUERY SELECT * FROM df._explain_lines(
                p_nodes, p_status, v_child,
                CASE WHEN v_i = 0 OR p_connector IN ('', '→ ') THEN p_prefix ELSE p_prefix || '  ' END,
                CASE WHEN v_i = 0 THEN p_connector ELSE '→ ' END);
            v_i := v_i + 1;
        END LOOP;
        RETURN;
    END IF;
    RETURN NEXT p_prefix || p_connector
        || replace(df._explain_label(v_node), E'\n', E'\n' || p_prefix || '  ')
        || coalesce(df._explain_marker(p_status ->> p_id), '')
        || coalesce(' (attempt ' || (p_status ->> (p_id || '#attempts')) || ')', '');
    v_sections := CASE v_kind
        WHEN 'join' THEN (SELECT jsonb_agg(jsonb_build_array('║ branch ' || o || ':', c) ORDER BY o)
                            FROM jsonb_array_elements_text(v_node -> 'children') WITH ORDINALITY AS x(c, o))
        WHEN 'race' THEN (SELECT jsonb_agg(jsonb_build_array('║ branch ' || o || ':', c) ORDER BY o)
                            FROM jsonb_array_elements_text(v_node -> 'children') WITH ORDINALITY AS x(c, o))
        WHEN 'if' THEN jsonb_build_array(jsonb_build_array('? condition:', v_node -> 'condition'),
                                         jsonb_build_array('✓ then:', v_node -> 'then'),
                                         jsonb_build_array('✗ else:', v_node -> 'else'))
        WHEN 'if_rows' THEN jsonb_build_array(jsonb_build_array('✓ then:', v_node -> 'then'),
                                              jsonb_build_array('✗ else:', v_node -> 'else'))
        WHEN 'loop' THEN jsonb_build_array(jsonb_build_array('↻ body:', v_node -> 'body'),
                                           jsonb_build_array('? while:', v_node -> 'condition'))
        WHEN 'retry' THEN jsonb_build_array(jsonb_build_array('↻ body:', v_node -> 'body'))
        WHEN 'timeout' THEN jsonb_build_array(jsonb_build_array('↻ body:', v_node -> 'body'))
        WHEN 'undo' THEN jsonb_build_array(jsonb_build_array('✓ do:', v_node -> 'body'),
                                           jsonb_build_array('✗ undo:', v_node -> 'undo'))
        ELSE '[]'::jsonb END;
    v_n := jsonb_array_length(coalesce(v_sections, '[]'::jsonb));
    FOR v_section IN SELECT value FROM jsonb_array_elements(coalesce(v_sections, '[]'::jsonb)) LOOP
        v_i := v_i + 1;
        CONTINUE WHEN jsonb_typeof(v_section -> 1) IS DISTINCT FROM 'string';
        RETURN NEXT p_prefix || '    ' || (v_section ->> 0);
        RETURN QUERY SELECT * FROM df._explain_lines(
            p_nodes, p_status, v_section ->> 1, p_prefix || '      ',
            CASE WHEN v_kind IN ('join', 'race') AND v_i < v_n THEN '├─' ELSE '└─' END);
    END LOOP;
END
$$;

CREATE FUNCTION df._explain_plan(p_plan jsonb, p_status jsonb) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
    WITH nodes AS (
        SELECT jsonb_object_agg(n ->> 'id', n) AS m FROM jsonb_array_elements(p_plan -> 'nodes') n
    ), lines AS (
        SELECT l, ordinality AS o
          FROM nodes, df._explain_lines(nodes.m, p_status, p_plan ->> 'root', '', '')
               WITH ORDINALITY AS x(l, ordinality)
    )
    SELECT string_agg(rtrim(l), E'\n' ORDER BY o) FROM lines
$$;

CREATE FUNCTION df.explain(input text) RETURNS text
LANGUAGE plpgsql STABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_inst record;
    v_status jsonb;
    v_plan jsonb;
    v_text text := btrim(input);
BEGIN
    IF v_text ~ '^[0-9a-f]{8}$' THEN
        SELECT i.id, i.label, i.status, i.output, p.plan INTO v_inst
          FROM df.instances i JOIN df.plans p ON p.id = i.plan_id WHERE i.id = v_text;
        IF NOT FOUND THEN
            RETURN format('Instance ''%s'' not found', v_text);
        END IF;
        SELECT jsonb_object_agg(n.node_id, n.inferred_status) INTO v_status
          FROM df.instance_nodes(v_text) n;
        -- nodes that needed more than one attempt: "attempt 3" or "attempt 3/5" (retry nodes)
        v_status := coalesce(v_status, '{}'::jsonb) || coalesce((
            SELECT jsonb_object_agg(d.id || '#attempts', d.attempts::text
                                    || coalesce('/' || (s.n ->> 'max_attempts'), ''))
              FROM df.nodes d
              LEFT JOIN jsonb_array_elements(v_inst.plan -> 'nodes') AS s (n) ON s.n ->> 'id' = d.id
             WHERE d.instance_id = v_text AND d.attempts > 1), '{}'::jsonb);
        RETURN format('Instance: %s (%s)', v_inst.id, coalesce(v_inst.label, ''))
            || E'\n' || format('Status:   %s %s',
                   CASE v_inst.status WHEN 'completed' THEN '✓' WHEN 'failed' THEN '✗'
                        WHEN 'cancelled' THEN '✗' WHEN 'running' THEN '⏳' ELSE '○' END, v_inst.status)
            || coalesce(E'\nOutput:   ' || v_inst.output, '')
            || E'\n\n' || df._explain_plan(v_inst.plan, v_status);
    END IF;
    IF left(v_text, 1) = '{' THEN
        BEGIN
            v_plan := v_text::jsonb;
        EXCEPTION WHEN invalid_text_representation THEN
            v_plan := NULL;
        END;
    END IF;
    IF v_plan IS NULL THEN
        SELECT p.plan INTO v_plan FROM df.plans p
         WHERE p.owner = df._my_role() AND p.installed AND p.name = v_text
         ORDER BY p.version DESC LIMIT 1;
    END IF;
    IF v_plan IS NULL AND v_text ~* '^(SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|ALTER|DROP|CALL|DO|TRUNCATE|GRANT|REVOKE|EXPLAIN|VALUES|TABLE)\s' THEN
        v_plan := df._sql_plan(input);
    END IF;
    IF v_plan IS NULL OR v_plan ->> 'format' IS DISTINCT FROM 'dfc-plan' THEN
        RETURN 'Cannot explain input: not an instance id, an installed plan name, a compiled plan or a SQL statement.'
            || E'\nHint: compile .dsql sources with dfc compile, or pass an instance id.';
    END IF;
    RETURN df._explain_plan(v_plan, '{}'::jsonb);
END
$$;

------------------------------------------------------------------------------------------------
-- Administration
------------------------------------------------------------------------------------------------

CREATE FUNCTION df._user_functions() RETURNS SETOF regprocedure
LANGUAGE sql STABLE
AS $$
    SELECT p.oid::regprocedure FROM pg_proc p
     WHERE p.pronamespace = 'df'::regnamespace
       AND p.proname IN ('start', 'status', 'result', 'cancel', 'signal', 'await_instance',
                         'wait_for_completion', 'setvar', 'getvar', 'unsetvar', 'clearvars',
                         'list_instances', 'instance_info', 'instance_nodes', 'explain',
                         'version', 'install_plan',
                         '_my_role', '_owner_role', '_store_plan', '_sql_plan', '_ensure_runner',
                         '_runner_ok', '_runner_gate_open', '_runner_body', '_runner_name',
                         '_refuse_in_workflow', '_node_type', '_plan_edges', '_explain_label',
                         '_explain_marker', '_explain_lines', '_explain_plan',
                         '_interrupt_steps')
$$;

CREATE FUNCTION df.grant_usage(p_role text, include_http boolean DEFAULT false,
                               with_grant boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_opt text := CASE WHEN with_grant THEN ' WITH GRANT OPTION' ELSE '' END;
    v_fn regprocedure;
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA df TO %I%s', p_role, v_opt);
    EXECUTE format('GRANT SELECT ON df.instances, df.nodes, df.plans, df.signals TO %I%s', p_role, v_opt);
    EXECUTE format('GRANT INSERT (id, label, plan_id, root_node, database, search_path, vars) ON df.instances TO %I%s', p_role, v_opt);
    EXECUTE format('GRANT UPDATE (status, output) ON df.instances TO %I%s', p_role, v_opt);
    EXECUTE format('GRANT INSERT (name, version, hash, installed, plan) ON df.plans TO %I%s', p_role, v_opt);
    EXECUTE format('GRANT INSERT (instance_id, name, payload) ON df.signals TO %I%s', p_role, v_opt);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON df.vars TO %I%s', p_role, v_opt);
    FOR v_fn IN SELECT * FROM df._user_functions() LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I%s', v_fn, p_role, v_opt);
    END LOOP;
    IF include_http THEN
        EXECUTE format('GRANT EXECUTE ON FUNCTION df._http_gate() TO %I%s', p_role, v_opt);
    END IF;
    IF with_grant THEN
        EXECUTE format('GRANT EXECUTE ON FUNCTION df.grant_usage(text, boolean, boolean), df.revoke_usage(text), df.metrics() TO %I WITH GRANT OPTION', p_role);
    END IF;
    RAISE NOTICE 'dfc: granted df usage privileges to "%"', p_role;
END
$$;

CREATE FUNCTION df.revoke_usage(p_role text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_fn regprocedure;
BEGIN
    EXECUTE format('REVOKE ALL ON df.instances, df.nodes, df.plans, df.signals, df.vars FROM %I CASCADE', p_role);
    FOR v_fn IN SELECT * FROM df._user_functions() LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM %I CASCADE', v_fn, p_role);
    END LOOP;
    EXECUTE format('REVOKE EXECUTE ON FUNCTION df._http_gate() FROM %I CASCADE', p_role);
    BEGIN
        EXECUTE format('REVOKE EXECUTE ON FUNCTION df.grant_usage(text, boolean, boolean), df.revoke_usage(text), df.metrics() FROM %I CASCADE', p_role);
    EXCEPTION WHEN insufficient_privilege THEN
        NULL;
    END;
    EXECUTE format('REVOKE USAGE ON SCHEMA df FROM %I CASCADE', p_role);
    RAISE NOTICE 'dfc: % revoked df usage privileges from "%"', current_user, p_role;
END
$$;

-- The privilege to run HTTP steps: df.grant_usage(role, include_http => true) grants EXECUTE on
-- this function, and the worker checks it before every request.
CREATE FUNCTION df._http_gate() RETURNS void
LANGUAGE sql IMMUTABLE
AS $$ SELECT $$;

-- Delete finished instances (with their nodes, signals and compensation records) whose age —
-- completion time, else creation time — exceeds older_than; at most batch_size per call, skipping
-- rows someone holds, so running work is never blocked. Returns how many were deleted.
CREATE FUNCTION df.prune(older_than interval DEFAULT '30 days', batch_size integer DEFAULT 1000)
RETURNS integer
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $$
    WITH doomed AS (
        SELECT i.id FROM df.instances i
         WHERE i.status IN ('completed', 'failed', 'cancelled')
           AND coalesce(i.completed_at, i.created_at) < clock_timestamp() - older_than
         ORDER BY coalesce(i.completed_at, i.created_at)
         LIMIT batch_size
           FOR UPDATE SKIP LOCKED
    ), gone AS (
        DELETE FROM df.instances i USING doomed WHERE i.id = doomed.id RETURNING i.id
    )
    SELECT count(*)::integer FROM gone
$$;

-- Cancel, on the server, the statements workers are running right now for an instance (each
-- holds the row lock of its task). Runs as the owner, which may signal the workers' backends;
-- only the instance's owner (or a member of that role) may interrupt its steps.
CREATE FUNCTION df._interrupt_steps(p_instance text) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(*) FILTER (WHERE pg_cancel_backend(l.pid))::integer
      FROM df.instances i
      JOIN df.tasks t ON t.instance_id = i.id
      JOIN pg_locks l ON l.locktype = 'transactionid' AND l.transactionid::text = t.xmax::text
                     AND l.mode = 'ExclusiveLock' AND l.granted
     WHERE i.id = p_instance
       AND t.xmax::text <> '0'
       AND pg_has_role(session_user, i.submitted_by, 'MEMBER')
       AND l.pid <> pg_backend_pid()
$$;

-- Nothing in df is usable by PUBLIC; df.grant_usage hands out what a user needs.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA df FROM PUBLIC;
