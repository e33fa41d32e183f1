-- Claims walk the ready index in its order to the first task they can lock, whatever the
-- planner's statistics say (df._claim_task; the claim_task query calls it).

-- The task a claim takes (runtime/sql/queries.sql, claim_task): the oldest due task of a live
-- instance, locked, skipping tasks other workers hold. Planned with the ready index's order
-- only: with few ready tasks, or statistics taken when there were few, the planner otherwise
-- reads every ready task, looks up each one's instance and sorts them (0.4–1.5 ms a claim with
-- a hundred ready tasks, against 0.1 ms walking the index to the first one it can lock). The
-- instance is looked up by key for each candidate (not joined): without statistics the planner
-- otherwise scans all of df.instances.
CREATE FUNCTION df._claim_task(p_now timestamptz) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off SET enable_bitmapscan = off SET enable_sort = off
AS $$
DECLARE
    v_id bigint;
BEGIN
    SELECT c.id INTO v_id
      FROM df.tasks c
     WHERE c.status = 'ready'
       AND c.run_at <= GREATEST(p_now, clock_timestamp())
       AND (SELECT x.status FROM df.instances x WHERE x.id = c.instance_id)
           OPERATOR(pg_catalog.=) ANY ('{pending,running}'::text[])
     ORDER BY c.run_at, c.id
     LIMIT 1
       FOR UPDATE OF c SKIP LOCKED;
    RETURN v_id;
END
$$;

REVOKE ALL ON FUNCTION df._claim_task(timestamptz) FROM PUBLIC;
