-- Named queries of the dfc runtime. Each starts with a `-- name: <name>` header and is loaded
-- once by runtime.queries; Python code refers to them by name and never builds SQL text.
-- Every object is schema-qualified: the worker's session must not resolve names through a
-- search_path a workflow step could have touched.

-- name: schema_installed
SELECT pg_catalog.to_regclass('df.schema_version') IS NOT NULL AS installed;

-- name: applied_versions
SELECT version FROM df.schema_version ORDER BY version;

-- name: record_version
INSERT INTO df.schema_version (version, name) VALUES (%(version)s, %(name)s)
ON CONFLICT (version) DO NOTHING;

-- name: install_lock
SELECT pg_catalog.pg_advisory_xact_lock(1147489349);

-- name: install_plan
SELECT df.install_plan(%(plan)s::jsonb) AS version;

-- name: grant_usage
SELECT df.grant_usage(%(role)s);

-- name: start
SELECT df.start(%(fut)s, %(label)s, transaction_mode => %(transaction_mode)s) AS id;

-- name: status
SELECT df.status(%(id)s) AS status;

-- name: result
SELECT df.result(%(id)s) AS result;

-- name: cancel
SELECT df.cancel(%(id)s, %(reason)s) AS message;

-- name: signal
SELECT df.signal(%(id)s, %(name)s, %(data)s) AS message;

-- name: explain
SELECT df.explain(%(input)s) AS text;

-- name: instance_info
SELECT * FROM df.instance_info(%(id)s);

-- name: instance_nodes
SELECT * FROM df.instance_nodes(%(id)s);

-- name: list_instances
SELECT * FROM df.list_instances(%(status)s, %(limit)s, %(label)s, %(cursor)s);

-- name: instance_output
SELECT i.status, i.output FROM df.instances i WHERE i.id = %(id)s;

-- name: listen
LISTEN df_work;

-- name: notify
SELECT pg_catalog.pg_notify('df_work', %(payload)s);

-- name: notify_tasks
-- One notification per task made ready for other executors (each wakes one, runtime/worker.py),
-- with distinct payloads: PostgreSQL folds identical notifications of a transaction into one.
SELECT pg_catalog.pg_notify('df_work', %(payload)s || ':' || g::text)
  FROM pg_catalog.generate_series(1, %(count)s::integer) g;

-- name: claim_task
-- The one statement that hands out work: the oldest due task of a live instance, locked for
-- the rest of the step's transaction (the lock is the lease), skipping tasks other workers hold
-- (df._claim_task takes it, walking the ready index in its order).
-- "Due" is decided by the worker's clock (runtime/clock.py): timers are stored as timestamps
-- computed from it; tasks stamped by the server itself (df.start, signals) are due at once.
SELECT t.id, t.instance_id, t.node_id, t.parent_id, t.branch, t.status, t.scope, t.state,
       i.label, i.plan_id, i.status AS instance_status, i.submitted_by::oid AS role_oid,
       i.search_path, i.vars, i.root_node
  FROM (SELECT df._claim_task(%(now)s::timestamptz) AS id) claimed
  JOIN df.tasks t ON t.id = claimed.id
  JOIN df.instances i ON i.id = t.instance_id;

-- name: claim_instance_task
-- More work of the same instance inside the current transaction (after a step that ran no SQL).
SELECT t.id, t.instance_id, t.node_id, t.parent_id, t.branch, t.status, t.scope, t.state,
       i.label, i.plan_id, i.status AS instance_status, i.submitted_by::oid AS role_oid,
       i.search_path, i.vars, i.root_node
  FROM df.tasks t
  JOIN df.instances i ON i.id = t.instance_id
 WHERE t.instance_id = %(instance_id)s
   AND t.status = 'ready'
   AND t.run_at <= GREATEST(%(now)s::timestamptz, pg_catalog.clock_timestamp())
   AND i.status OPERATOR(pg_catalog.=) ANY ('{pending,running}'::text[])
 ORDER BY t.run_at, t.id
 LIMIT 1
   FOR UPDATE OF t SKIP LOCKED;

-- name: lock_instance_cancel
-- Before a failed step's task is claimed to record the failure: a df.cancel of its instance
-- that is under way (it may be what interrupted the step) commits first, and the claim then
-- finds the instance cancelled; one that comes later waits for this transaction.
SELECT pg_catalog.pg_advisory_xact_lock_shared(1147489355, pg_catalog.hashtext(t.instance_id))
  FROM df.tasks t
 WHERE t.id = %(id)s;

-- name: claim_task_by_id
SELECT t.id, t.instance_id, t.node_id, t.parent_id, t.branch, t.status, t.scope, t.state,
       i.label, i.plan_id, i.status AS instance_status, i.submitted_by::oid AS role_oid,
       i.search_path, i.vars, i.root_node
  FROM df.tasks t
  JOIN df.instances i ON i.id = t.instance_id
 WHERE t.id = %(id)s
   AND i.status OPERATOR(pg_catalog.=) ANY ('{pending,running}'::text[])
   FOR UPDATE OF t SKIP LOCKED;

-- name: next_due
-- Seconds until the earliest future timer is due (no row: no timers). Tasks due now are not
-- counted: they are being executed by someone (else the claim would have returned them), and
-- new work arrives with a notification.
SELECT EXTRACT(EPOCH FROM (t.run_at - GREATEST(%(now)s::timestamptz, pg_catalog.clock_timestamp())))::float8 AS seconds
  FROM df.tasks t
  JOIN df.instances i ON i.id = t.instance_id
 WHERE t.status = 'ready'
   AND t.run_at > GREATEST(%(now)s::timestamptz, pg_catalog.clock_timestamp())
   AND i.status OPERATOR(pg_catalog.=) ANY ('{pending,running}'::text[])
 ORDER BY t.run_at
 LIMIT 1;

-- name: load_plan
SELECT p.id, p.name, p.version, p.plan FROM df.plans p WHERE p.id = %(plan_id)s;

-- name: mark_instance_running
UPDATE df.instances SET status = 'running'
 WHERE id = %(id)s AND status = 'pending';

-- name: lock_task
SELECT t.id, t.instance_id, t.node_id, t.parent_id, t.branch, t.status, t.scope, t.state
  FROM df.tasks t WHERE t.id = %(id)s FOR UPDATE;

-- name: insert_task
INSERT INTO df.tasks (instance_id, node_id, parent_id, branch, status, run_at, scope, state)
VALUES (%(instance_id)s, %(node_id)s, %(parent_id)s, %(branch)s, %(status)s,
        coalesce(%(run_at)s::timestamptz, pg_catalog.clock_timestamp()), %(scope)s, %(state)s)
RETURNING id;

-- name: update_task_state
UPDATE df.tasks SET state = %(state)s WHERE id = %(id)s;

-- name: delete_task
DELETE FROM df.tasks WHERE id = %(id)s;

-- name: delete_subtrees
-- Cancel the given activations and everything below them. Tasks another worker is executing
-- right now are skipped: when they finish they find no parent and are discarded.
WITH RECURSIVE sub AS (
    SELECT t.id FROM df.tasks t WHERE t.id = ANY (%(ids)s::bigint[])
    UNION ALL
    SELECT t.id FROM df.tasks t JOIN sub ON t.parent_id = sub.id
)
DELETE FROM df.tasks d
 WHERE d.id IN (SELECT t.id FROM df.tasks t WHERE t.id IN (SELECT id FROM sub)
                FOR UPDATE SKIP LOCKED);

-- name: node_started
UPDATE df.nodes
   SET status = 'running', result = NULL, runs = runs + 1, attempts = 1, last_error = NULL,
       started_at = pg_catalog.clock_timestamp(), updated_at = pg_catalog.clock_timestamp()
 WHERE instance_id = %(instance_id)s AND id = %(node_id)s;

-- name: node_finished
UPDATE df.nodes
   SET status = %(status)s, result = %(result)s, updated_at = pg_catalog.clock_timestamp()
 WHERE instance_id = %(instance_id)s AND id = %(node_id)s;

-- name: drop_instance_tasks
-- A finished instance keeps no work (tasks being executed elsewhere are discarded when done).
DELETE FROM df.tasks d
 WHERE d.id IN (SELECT t.id FROM df.tasks t WHERE t.instance_id = %(id)s FOR UPDATE SKIP LOCKED);

-- name: finish_instance
UPDATE df.instances
   SET status = %(status)s, output = %(output)s,
       completed_at = CASE WHEN %(status)s = 'completed' THEN pg_catalog.clock_timestamp() END
 WHERE id = %(id)s AND status OPERATOR(pg_catalog.=) ANY ('{pending,running}'::text[]);

-- name: run_step
-- A SQL step (df._run_step_task): `lock` takes the task first (a step the worker goes on with
-- without claiming it); a failing step is reported in error_message/error_state, its task still
-- locked; `parent` is locked after a successful step (its outcome goes there next);
-- `prepared` is the number of the session's prepared statements (NULL: counted there).
SELECT s.got, s.task_state, s.result_rows, s.error_message, s.error_state, s.parent_row
  FROM df._run_step_task(%(task)s::bigint, %(lock)s::boolean, %(now)s::timestamptz,
                         %(role)s::oid::regrole, %(sql)s::text, %(returns_rows)s::boolean,
                         %(search_path)s::text, %(parent)s::bigint, %(prepared)s::bigint) s;

-- name: run_chained_step
-- One step of a chain (df._run_chained_step), sent with the rest of the chain in one message;
-- raises when the step does not complete.
SELECT df._run_chained_step(%(task)s::bigint, %(instance_id)s::text, %(node_id)s::text,
                            %(now)s::timestamptz, %(role)s::oid::regrole, %(sql)s::text,
                            %(returns_rows)s::boolean, %(search_path)s::text, %(parent)s::bigint,
                            %(prepared)s::bigint, %(ops)s::json);

-- name: run_chained_step_moving
-- One step of a chain whose bookkeeping is its task moving on to the next step
-- (df._run_chained_step_moving), sent with the rest of the chain in one message; raises when
-- the step does not complete.
SELECT df._run_chained_step_moving(%(task)s::bigint, %(instance_id)s::text, %(node_id)s::text,
                                   %(now)s::timestamptz, %(role)s::oid::regrole, %(sql)s::text,
                                   %(returns_rows)s::boolean, %(search_path)s::text,
                                   %(parent)s::bigint, %(prepared)s::bigint, %(next)s::bigint,
                                   %(next_node)s::text, %(next_branch)s::integer,
                                   %(next_run_at)s::timestamptz, %(next_scope)s::json,
                                   %(next_state)s::json);

-- name: existing_tasks
-- Which of these tasks exist (after a chain of steps stopped: the one that does is where).
SELECT t.id FROM df.tasks t WHERE t.id = ANY(%(ids)s::bigint[]);

-- name: apply
-- A step's held-back writes in one call (runtime/connection.py, WorkerConnection).
SELECT df._apply(%(ops)s::json);

-- name: reserve_task_ids
-- Ids for the steps a worker goes on with: known before the task is inserted, so the message
-- that commits a step can also run the next one (runtime/connection.py).
SELECT pg_catalog.nextval(pg_catalog.pg_get_serial_sequence('df.tasks', 'id')) AS id
  FROM pg_catalog.generate_series(1, %(count)s);

-- name: task_exists
SELECT EXISTS (SELECT 1 FROM df.tasks t WHERE t.id = %(id)s) AS found;

-- name: reset_session
-- After a failed step. Settings and temporary objects went with the rolled-back transaction;
-- session-level advisory locks and dblink connections did not. (A successful step is cleaned up
-- by df._run_step_task.)
SELECT pg_catalog.pg_advisory_unlock_all(), df._close_step_links();

-- name: consume_signal
DELETE FROM df.signals
 WHERE id = (SELECT s.id FROM df.signals s
              WHERE s.instance_id = %(instance_id)s AND s.name = %(name)s
              ORDER BY s.id LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING payload;

-- name: database_exists
SELECT 1 AS found FROM pg_catalog.pg_database WHERE datname = %(name)s;

-- name: create_database
CREATE DATABASE {name};

-- name: node_progress
SELECT n.node_id, n.inferred_status, d.started_at, d.updated_at, d.runs,
       pg_catalog.clock_timestamp() AS now
  FROM df.instance_nodes(%(id)s) n
  JOIN df.nodes d ON d.instance_id = %(id)s AND d.id = n.node_id;

-- name: await_instance
SELECT df.await_instance(%(id)s, %(timeout)s) AS status;

-- name: relock_task
-- The task of a non-transactional step, after its statement ran: wait for anyone holding it.
SELECT t.id, t.instance_id, t.node_id, t.parent_id, t.branch, t.status, t.scope, t.state,
       i.label, i.plan_id, i.status AS instance_status, i.submitted_by::oid AS role_oid,
       i.search_path, i.vars, i.root_node
  FROM df.tasks t
  JOIN df.instances i ON i.id = t.instance_id
 WHERE t.id = %(id)s
   AND i.status OPERATOR(pg_catalog.=) ANY ('{pending,running}'::text[])
   FOR UPDATE OF t;

-- name: try_lock_task
-- Held (session-level) while the work of this task that runs outside any transaction (a
-- statement that cannot run in a transaction block, an HTTP request) is under way.
-- Task ids are bigint, the key is their low 31 bits: two live tasks whose ids are 2^31 apart
-- share a lock, which can only put one of them off for a while.
SELECT pg_catalog.pg_try_advisory_lock(1147489352, (%(id)s::bigint & 2147483647)::integer) AS locked;

-- name: unlock_task
SELECT pg_catalog.pg_advisory_unlock(1147489352, (%(id)s::bigint & 2147483647)::integer);

-- name: postpone_task
UPDATE df.tasks SET run_at = %(run_at)s WHERE id = %(id)s;

-- name: become_role
SELECT pg_catalog.set_config('role', r.rolname, false),
       pg_catalog.set_config('search_path', %(search_path)s, false)
  FROM pg_catalog.pg_roles r WHERE r.oid = %(role)s;

-- name: reset_role
RESET ROLE;

-- name: reset_all
RESET ALL;

-- name: register_worker
INSERT INTO df.workers (id, hostname, pid, concurrency)
VALUES (%(id)s, %(hostname)s, %(pid)s, %(concurrency)s);

-- name: heartbeat
UPDATE df.workers SET last_seen_at = pg_catalog.clock_timestamp(), steps = %(steps)s
 WHERE id = %(id)s;

-- name: unregister_worker
DELETE FROM df.workers WHERE id = %(id)s;

-- name: forget_dead_workers
-- Workers silent for a minute are gone (killed, or their machine is).
DELETE FROM df.workers
 WHERE last_seen_at < pg_catalog.clock_timestamp() - interval '1 minute';

-- name: cancel_subtrees
-- Cancel the given activations and everything below them: delete the tasks (those another
-- worker is executing right now are skipped), and mark the running nodes below the given ones
-- `cancelled`. `busy` lists the tasks whose work may be running somewhere, to be interrupted:
-- the locked ones, and the ready ones, since an HTTP request runs with no lock on its task.
WITH RECURSIVE sub AS (
    SELECT t.id, t.node_id, t.status, true AS top FROM df.tasks t
     WHERE t.id = ANY (%(ids)s::bigint[])
    UNION ALL
    SELECT t.id, t.node_id, t.status, false FROM df.tasks t JOIN sub ON t.parent_id = sub.id
), marked AS (
    UPDATE df.nodes n SET status = 'cancelled', updated_at = pg_catalog.clock_timestamp()
      FROM sub
     WHERE NOT sub.top AND n.instance_id = %(instance_id)s AND n.id = sub.node_id
       AND n.status = 'running'
    RETURNING n.id
), free AS (
    SELECT t.id FROM df.tasks t WHERE t.id IN (SELECT sub.id FROM sub) FOR UPDATE SKIP LOCKED
), deleted AS (
    DELETE FROM df.tasks d WHERE d.id IN (SELECT free.id FROM free) RETURNING d.id
)
SELECT (SELECT count(*) FROM marked) AS marked,
       ARRAY(SELECT sub.id FROM sub
              WHERE sub.status = 'ready' OR sub.id NOT IN (SELECT deleted.id FROM deleted)) AS busy;

-- name: notify_cancel
-- Payload `<instance>` (all of its statements) or `<instance>:<task id>,<task id>,…`.
SELECT pg_catalog.pg_notify('df_cancel', %(payload)s);

-- name: listen_cancel
LISTEN df_cancel;

-- name: schedule_task
UPDATE df.tasks SET status = 'ready', run_at = %(run_at)s, state = %(state)s WHERE id = %(id)s;

-- name: wait_task
UPDATE df.tasks SET status = 'waiting', state = %(state)s WHERE id = %(id)s;

-- name: delete_orphan_task
-- A task whose statement was interrupted: drop it when its instance finished or its parent was
-- cancelled meanwhile (the interrupted step has nothing left to report to).
DELETE FROM df.tasks t
 WHERE t.id = %(id)s
   AND (EXISTS (SELECT 1 FROM df.instances i
                 WHERE i.id = t.instance_id
                   AND i.status OPERATOR(pg_catalog.=) ANY ('{completed,failed,cancelled}'::text[]))
        OR (t.parent_id IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM df.tasks p WHERE p.id = t.parent_id)));

-- name: node_attempt
UPDATE df.nodes
   SET attempts = %(attempts)s, last_error = coalesce(%(error)s, last_error),
       updated_at = pg_catalog.clock_timestamp()
 WHERE instance_id = %(instance_id)s AND id = %(node_id)s;

-- name: may_use_http
-- df.grant_usage(role, include_http => true) grants EXECUTE on this marker function.
SELECT pg_catalog.has_function_privilege(%(role)s::oid, 'df._http_gate()', 'EXECUTE') AS allowed,
       %(role)s::oid::regrole::text AS role;

-- name: push_compensation
INSERT INTO df.compensations (instance_id, node_id, undo_node, scope)
VALUES (%(instance_id)s, %(node_id)s, %(undo_node)s, %(scope)s);

-- name: next_compensation
UPDATE df.compensations c SET status = 'running'
 WHERE c.id = (SELECT max(x.id) FROM df.compensations x
                WHERE x.instance_id = %(instance_id)s AND x.status = 'pending')
RETURNING c.id, c.undo_node, c.scope;

-- name: finish_running_compensation
UPDATE df.compensations SET status = %(status)s
 WHERE instance_id = %(instance_id)s AND status = 'running';

-- name: set_instance_failure
UPDATE df.instances SET failure = coalesce(failure, %(failure)s) WHERE id = %(id)s;

-- name: compensation_summary
SELECT i.failure,
       count(c.id) FILTER (WHERE c.status OPERATOR(pg_catalog.=) ANY ('{completed,failed}'::text[])) AS ran,
       count(c.id) FILTER (WHERE c.status = 'failed') AS failed
  FROM df.instances i
  LEFT JOIN df.compensations c ON c.instance_id = i.id
 WHERE i.id = %(instance_id)s
 GROUP BY i.failure;

-- name: vacuum_tasks
-- Tasks are inserted and deleted all the time; the claim walks the ready index in order, over
-- the entries of deleted rows until a vacuum removes them.
VACUUM (SKIP_LOCKED) df.tasks;

-- name: prune
SELECT df.prune(pg_catalog.make_interval(secs => %(seconds)s), %(batch)s) AS pruned;

-- name: cancelled_step_cleanup
WITH inst AS (
    SELECT i.id FROM df.instances i WHERE i.id = %(instance_id)s AND i.status = 'cancelled'
), marked AS (
    UPDATE df.nodes n SET status = 'cancelled', updated_at = pg_catalog.clock_timestamp()
      FROM inst
     WHERE n.instance_id = inst.id AND n.id = %(node_id)s
       AND n.status OPERATOR(pg_catalog.=) ANY ('{pending,running}'::text[])
    RETURNING n.id
)
DELETE FROM df.tasks d
 WHERE d.id IN (SELECT t.id FROM df.tasks t JOIN inst ON t.instance_id = inst.id
                FOR UPDATE OF t SKIP LOCKED);

-- name: lock_signal
-- Taken before a wait looks for its signal; df.signal's trigger takes it too (no lost wake-up).
SELECT pg_catalog.pg_advisory_xact_lock(1147489353,
                                        pg_catalog.hashtext(%(instance_id)s || '/' || %(name)s));
