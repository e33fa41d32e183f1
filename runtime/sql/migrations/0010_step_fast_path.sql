-- The step fast path (docs/runtime.md, Performance).
--
-- The worker keeps prepared statements in its session (psycopg's, and dfc_<query> for the
-- writes it sends in batches). A step runs in that session, so df._run_step now refuses a step
-- that prepared or deallocated any: replacing one of the worker's would let the worker run the
-- replacement as the schema owner. RESET ALL and DISCARD TEMP are plain statements (planned
-- once per session instead of on every step).
CREATE OR REPLACE FUNCTION df._run_step(p_role regrole, p_sql text, p_returns_rows boolean,
                                        p_search_path text)
RETURNS SETOF json
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_prepared text := (SELECT string_agg(s.name || ' ' || s.prepare_time, ',' ORDER BY s.name)
                          FROM pg_prepared_statements s);
BEGIN
    -- the full canonical check ran when the runner was created (df._runner_gate_check) and its
    -- owner cannot change it since; what the step's identity rests on is checked every time
    IF NOT EXISTS (SELECT 1 FROM pg_proc p
                    WHERE p.pronamespace = 'df_exec'::regnamespace
                      AND p.proname = df._runner_name(p_role)
                      AND p.proowner = p_role AND p.prosecdef) THEN
        RAISE EXCEPTION 'role % has no valid step runner (start a workflow as that role to create it)',
            p_role USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN QUERY EXECUTE format('SELECT * FROM df_exec.%I($1, $2, $3)', df._runner_name(p_role))
        USING p_sql, p_returns_rows, p_search_path;
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
END
$$;
