-- Time, events and the outside world: cancelled nodes and attempts, saga compensation,
-- the HTTP privilege, signals refused by finished instances, history pruning.
ALTER TABLE df.nodes DROP CONSTRAINT nodes_status_check;
ALTER TABLE df.nodes ADD CONSTRAINT nodes_status_check
    CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled'));
ALTER TABLE df.nodes ADD COLUMN attempts integer NOT NULL DEFAULT 0;
ALTER TABLE df.nodes ADD COLUMN last_error text;
ALTER TABLE df.instances ADD COLUMN failure text;

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

-- The privilege to run HTTP steps: df.grant_usage(role, include_http => true) grants EXECUTE on
-- this function, and the worker checks it before every request.
CREATE FUNCTION df._http_gate() RETURNS void
LANGUAGE sql IMMUTABLE
AS $$ SELECT $$;
REVOKE ALL ON FUNCTION df._http_gate() FROM PUBLIC;

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
REVOKE ALL ON FUNCTION df.prune(interval, integer) FROM PUBLIC;

CREATE OR REPLACE FUNCTION df._instance_after_cancel() RETURNS trigger
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

CREATE OR REPLACE FUNCTION df.signal(instance_id text, signal_name text, signal_data text DEFAULT '{}')
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

CREATE OR REPLACE FUNCTION df.grant_usage(p_role text, include_http boolean DEFAULT false,
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

CREATE OR REPLACE FUNCTION df.revoke_usage(p_role text) RETURNS void
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

CREATE OR REPLACE FUNCTION df.instance_nodes(instance_id text)
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

CREATE OR REPLACE FUNCTION df._explain_marker(p_status text) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
    SELECT CASE p_status WHEN 'completed' THEN ' ✓' WHEN 'failed' THEN ' ✗' WHEN 'running' THEN ' ⏳'
                         WHEN 'pending' THEN ' ○' WHEN 'skipped' THEN ' ⊘'
                         WHEN 'cancelled' THEN ' ⊘' ELSE '' END
$$;

CREATE OR REPLACE FUNCTION df._explain_lines(p_nodes jsonb, p_status jsonb, p_id text, p_prefix text,
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

CREATE OR REPLACE FUNCTION df.explain(input text) RETURNS text
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

CREATE OR REPLACE FUNCTION df._plan_edges(p_plan jsonb)
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
REVOKE ALL ON FUNCTION df._interrupt_steps(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION df._user_functions() RETURNS SETOF regprocedure
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

CREATE OR REPLACE FUNCTION df.cancel(instance_id text, reason text DEFAULT 'Cancelled by user') RETURNS text
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

CREATE OR REPLACE FUNCTION df._signal_after_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- serialised with a wait that is checking for this signal right now (the worker takes the
    -- same lock): either it sees this signal, or its rescheduled task is visible below
    PERFORM pg_advisory_xact_lock(1147489353, hashtext(NEW.instance_id || '/' || NEW.name));
    -- a wait for this signal may be sleeping until its timeout: make it due now
    UPDATE df.tasks t SET run_at = clock_timestamp()
     WHERE t.instance_id = NEW.instance_id AND t.status = 'ready'
       AND (t.state ->> 'signal') IS NOT NULL;
    PERFORM pg_notify('df_work', NEW.instance_id);
    RETURN NULL;
END
$$;
