-- df.instance_nodes (and so df.explain and dfc's progress tree) showed a loop's body nodes of
-- the previous iteration as they ended, completed, while the next iteration ran. A node keeps
-- one row across iterations; one that finished before its loop's body last started ran in an
-- earlier iteration, so its inferred_status now reads pending (from the loop), or skipped when a
-- finished node of the current iteration decided against it or the instance has ended; and a
-- finished node of an earlier iteration no longer marks the nodes below it skipped.

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
    ), iterations AS (
        -- a loop's current iteration began when its body last started: a node below it that
        -- finished before that ran in an earlier iteration (one row per node: it is superseded)
        SELECT s.id, b.started_at
          FROM spec s
          JOIN df.nodes b ON b.instance_id = instance_nodes.instance_id AND b.id = s.n ->> 'body'
         WHERE s.n ->> 'kind' = 'loop'
    ), tree AS (
        -- walk from the root carrying the nearest finished ancestor of the current iterations,
        -- and the latest iteration start of the enclosing loops with the loop it belongs to
        SELECT inst.root_node AS id, NULL::text AS done_ancestor,
               NULL::timestamptz AS iteration_at, NULL::text AS iterating
          FROM inst
        UNION ALL
        SELECT e.child,
               CASE WHEN pn.status IN ('completed', 'failed', 'cancelled')
                         AND NOT coalesce(pn.started_at < t.iteration_at, false) THEN t.id
                    ELSE t.done_ancestor END,
               CASE WHEN l.started_at > coalesce(t.iteration_at, '-infinity') THEN l.started_at
                    ELSE t.iteration_at END,
               CASE WHEN l.started_at > coalesce(t.iteration_at, '-infinity') THEN t.id
                    ELSE t.iterating END
          FROM tree t
          JOIN edges e ON e.parent = t.id
          JOIN df.nodes pn ON pn.instance_id = instance_nodes.instance_id AND pn.id = t.id
          LEFT JOIN iterations l ON l.id = t.id
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
           CASE WHEN dn.status IN ('completed', 'failed', 'cancelled') AND NOT v.superseded
                    THEN dn.status
                WHEN t.done_ancestor IS NOT NULL THEN 'skipped'
                WHEN inst.istatus IN ('completed', 'failed', 'cancelled')
                     AND (dn.status = 'pending' OR v.superseded) THEN 'skipped'
                WHEN v.superseded THEN 'pending'
                ELSE dn.status END,
           CASE WHEN dn.status IN ('completed', 'failed', 'cancelled') AND NOT v.superseded
                    THEN NULL
                WHEN t.done_ancestor IS NOT NULL THEN t.done_ancestor
                WHEN v.superseded THEN t.iterating END,
           dn.updated_at
      FROM inst
      JOIN spec s ON true
      JOIN df.nodes dn ON dn.instance_id = inst.id AND dn.id = s.id
      LEFT JOIN tree t ON t.id = s.id
      CROSS JOIN LATERAL (
          SELECT dn.status IN ('completed', 'failed', 'cancelled')
                 AND coalesce(dn.started_at < t.iteration_at, false) AS superseded
      ) v
     ORDER BY (substr(s.id, 2))::integer
$$;
