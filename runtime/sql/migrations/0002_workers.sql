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

CREATE OR REPLACE FUNCTION df.version() RETURNS text
LANGUAGE sql IMMUTABLE
AS $$ SELECT '0.1.0 (dfc runtime, schema 2)' $$;
