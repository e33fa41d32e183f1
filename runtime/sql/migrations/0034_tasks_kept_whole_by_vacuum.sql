-- VACUUM leaves df.tasks at its size instead of truncating its empty end.
--
-- Every step deletes (or moves) a task row, so df.tasks is a few dozen pages of mostly dead rows
-- that fill again at once. A vacuum that finds empty pages at its end wants an ACCESS EXCLUSIVE
-- lock to cut them off: it tries for up to five seconds (every 50 ms) while executors hold the
-- table, and when it gets the lock every executor's claim and step waits behind it. The worker's
-- listener vacuums df.tasks every 500 steps, and it was seen blocked for 5.1 s in one of these
-- waits ("stopping truncate due to conflicting lock request"), hearing no notifications
-- meanwhile. The option applies to autovacuum as well.
ALTER TABLE df.tasks SET (vacuum_truncate = false);
