-- df.start with a plan (or a single statement) no longer waits for other callers' commits:
-- df._store_plan looks for the plan's latest version before it takes the name's lock, which it
-- needs only to add a version.

-- Store a compiled plan for the caller; returns its id. A plan whose hash matches the latest
-- version under the same name is not stored again. That is looked up first without a lock: the
-- name's lock is held until the caller commits, and taken on every call it made concurrent
-- df.start calls of one plan (or of single statements, all named sql) wait for each other's
-- commits.
CREATE OR REPLACE FUNCTION df._store_plan(p_plan jsonb, p_installed boolean) RETURNS bigint
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
    SELECT * INTO v_latest FROM df.plans p
     WHERE p.owner = df._my_role() AND p.installed = p_installed AND p.name = v_name
     ORDER BY p.version DESC LIMIT 1;
    IF FOUND AND v_latest.hash = v_hash THEN
        RETURN v_latest.id;
    END IF;
    -- a new version: one at a time per name (and again what the latest is, once it is ours)
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
