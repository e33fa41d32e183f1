-- Chains of SQL steps: consecutive steps of a sequence whose bookkeeping does not depend on their
-- results go to the server in one message, each in its own transaction (runtime/chains.py),
-- instead of one round trip and one pass through the worker's engine per step.

-- Called by the worker (the owner) for one step of a chain: consecutive SQL steps of a sequence
-- whose bookkeeping does not depend on their results (no result name, no reference), sent in one
-- message, each as `BEGIN; <this>; COMMIT` (runtime/chains.py). It locks the step's task (as a
-- step gone on with: see df._run_step_task), runs the step as its role, locks the parent,
-- records the step's node as completed with its result and applies the step's other writes,
-- `p_ops` (see df._apply), which the worker made for its success. Anything else raises, so that the
-- message stops there with the step's transaction rolled back: SQLSTATE DFC01 when the step was
-- not taken (its task is not at `p_node`, another worker holds it, the instance no longer runs,
-- or the parent is gone), the step's own error when it failed. `p_prepared`: as for
-- df._run_step_task.
CREATE FUNCTION df._run_chained_step(p_task bigint, p_instance text, p_node text,
                                     p_now timestamptz, p_role regrole, p_sql text,
                                     p_returns_rows boolean, p_search_path text, p_parent bigint,
                                     p_prepared bigint, p_ops json)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_step record;
    v_rows json;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM df.tasks t WHERE t.id = p_task AND t.node_id = p_node) THEN
        RAISE EXCEPTION 'the step of task % was not taken', p_task USING ERRCODE = 'DFC01';
    END IF;
    SELECT * INTO v_step
      FROM df._run_step_task(p_task, true, p_now, p_role, p_sql, p_returns_rows, p_search_path,
                             p_parent, p_prepared);
    IF NOT v_step.got THEN
        RAISE EXCEPTION 'the step of task % was not taken', p_task USING ERRCODE = 'DFC01';
    END IF;
    IF v_step.error_state IS NOT NULL THEN
        RAISE EXCEPTION USING MESSAGE = v_step.error_message, ERRCODE = v_step.error_state;
    END IF;
    IF v_step.parent_row IS NULL THEN
        RAISE EXCEPTION 'the parent of task % is gone', p_task USING ERRCODE = 'DFC01';
    END IF;
    v_rows := coalesce(v_step.result_rows, '[]'::json);
    UPDATE df.nodes
       SET status = 'completed',
           result = pg_catalog.jsonb_build_object('rows', v_rows::jsonb,
                                                  'row_count', pg_catalog.json_array_length(v_rows)),
           updated_at = pg_catalog.clock_timestamp()
     WHERE instance_id = p_instance AND id = p_node;
    PERFORM df._apply(p_ops);
END
$$;

REVOKE ALL ON FUNCTION df._run_chained_step(bigint, text, text, timestamptz, regrole, text, boolean,
                                              text, bigint, bigint, json) FROM PUBLIC;
