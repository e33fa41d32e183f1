-- Three changes to starting workflows.
--
-- df.start chose a new instance's id in an exception block, to roll again on a collision. A
-- block is a subtransaction, and the instance's insert gave it a transaction id of its own: a
-- caller's transaction that started more than 64 instances overflowed its backend's cache of
-- subtransactions, and until it ended every snapshot taken in the database (on standbys too)
-- had to look transactions up in pg_subtrans. The insert now skips a taken id with ON CONFLICT
-- DO NOTHING and rolls again, with no subtransaction.
--
-- transaction_mode => 'new' opened one more connection per call, with no bound: a row trigger
-- starting workflows could use up max_connections. As pg_durable does, at most
-- df.max_new_transaction_starts (default 2) of those connections exist at a time in the
-- database; other callers wait up to df.new_transaction_start_timeout seconds (default 5), then
-- fail without opening theirs. A call cancelled meanwhile (statement_timeout too) now cancels its
-- start and closes its connection instead of leaving it to the session's next call.
--
-- A superuser's first df.start made it a runner that the worker's role may call: a worker's role
-- without superuser could then run any statement as a superuser. df._ensure_runner now makes a
-- superuser's runner only where df.enable_superuser_instances is on, or where the worker's role
-- is a superuser itself. A runner made before stays until dropped.

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
    -- The worker's role may call every runner. A superuser's would let a worker's role without
    -- superuser run any statement as a superuser: it is made only where that is allowed on
    -- purpose (pg_durable refuses superusers' instances unless allowed, too).
    IF (SELECT r.rolsuper FROM pg_roles r WHERE r.oid = me)
       AND NOT (SELECT r.rolsuper FROM pg_roles r WHERE r.oid = df._owner_role())
       AND lower(btrim(coalesce(current_setting('df.enable_superuser_instances', true), '')))
           NOT IN ('on', 'true', 'yes', '1') THEN
        RAISE EXCEPTION 'role "%" is a superuser, and its workflows would let the worker''s role "%" run any statement as a superuser',
            pg_get_userbyid(me), pg_get_userbyid(df._owner_role()) USING ERRCODE = 'insufficient_privilege',
            HINT = format('Start workflows as a role without superuser, or, to accept that, have an administrator run ALTER DATABASE %I SET df.enable_superuser_instances = on.', current_database());
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

CREATE OR REPLACE FUNCTION df.start(fut text, label text DEFAULT NULL,
                                    database text DEFAULT NULL,
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
    v_slots text;
    v_patience text;
    v_slot integer;
    v_deadline timestamptz;
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
        -- As pg_durable caps them: at most df.max_new_transaction_starts of these extra
        -- connections at a time in this database (default 2), each holding a session lock on a
        -- slot from its connection to its close; other callers wait for a slot up to
        -- df.new_transaction_start_timeout seconds (default 5), without opening theirs.
        v_slots := coalesce(nullif(btrim(current_setting('df.max_new_transaction_starts', true)), ''), '2');
        v_patience := coalesce(nullif(btrim(current_setting('df.new_transaction_start_timeout', true)), ''), '5');
        IF v_slots !~ '^[0-9]{1,6}$' OR v_slots::integer < 1 THEN
            RAISE EXCEPTION 'df.max_new_transaction_starts must be a whole number of at least 1, not "%"', v_slots
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF v_patience !~ '^[0-9]{1,6}(\.[0-9]*)?$' THEN
            RAISE EXCEPTION 'df.new_transaction_start_timeout must be a number of seconds, not "%"', v_patience
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v_deadline := clock_timestamp() + make_interval(secs => v_patience::float8);
        LOOP
            FOR v_try IN 1 .. v_slots::integer LOOP
                IF pg_try_advisory_lock(1147489356, v_try) THEN
                    v_slot := v_try;
                    EXIT;
                END IF;
            END LOOP;
            EXIT WHEN v_slot IS NOT NULL;
            IF clock_timestamp() >= v_deadline THEN
                RAISE EXCEPTION '% waited % s for a connection: df.max_new_transaction_starts allows % at a time, and all were in use',
                    v_new, v_patience, v_slots USING ERRCODE = 'too_many_connections',
                    HINT = format('Start fewer at once, raise the limit for this database (ALTER DATABASE %I SET df.max_new_transaction_starts = …) or the wait (df.new_transaction_start_timeout), or call df.start with transaction_mode => ''caller''.', current_database());
            END IF;
            PERFORM pg_sleep(0.005);
        END LOOP;
        BEGIN
            -- a connection an earlier call of this session left behind
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
        EXCEPTION WHEN OTHERS OR query_canceled THEN
            -- a cancelled call (statement_timeout too) leaves neither its start running nor its
            -- connection and slot taken
            EXECUTE format('SELECT %L = ANY (%I.dblink_get_connections())', v_link, v_dblink) INTO v_leftover;
            IF v_leftover THEN
                EXECUTE format('SELECT %I.dblink_cancel_query($1)', v_dblink) USING v_link;
                EXECUTE format('SELECT %I.dblink_disconnect($1)', v_dblink) USING v_link;
            END IF;
            PERFORM pg_advisory_unlock(1147489356, v_slot);
            RAISE;
        END;
        PERFORM pg_advisory_unlock(1147489356, v_slot);
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
    -- an id taken already (by any role) rolls again. Not an exception block: that is a
    -- subtransaction, and a caller's transaction starting more than 64 instances would overflow
    -- its backend's cache of them, which slows every snapshot taken in the database meanwhile.
    LOOP
        v_id := right(replace(gen_random_uuid()::text, '-', ''), 8);
        INSERT INTO df.instances (id, label, plan_id, root_node, database, search_path, vars)
        VALUES (v_id, coalesce(label, v_plan ->> 'label'), v_plan_id, v_plan ->> 'root',
                current_database(), v_search_path, v_vars)
        ON CONFLICT (id) DO NOTHING;
        EXIT WHEN FOUND;
    END LOOP;
    RETURN v_id;
END
$$;
