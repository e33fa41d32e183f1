"""Isolation: steps run as the submitting role and cannot gain anything else.

The df schema here is owned by a role without superuser (which also runs the worker); alice and
bob are ordinary roles granted usage.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from helpers import running_worker, wait
from plans import PlanBuilder, single
from psycopg.conninfo import make_conninfo

from runtime.connection import connect
from runtime.migrate import install

ROLES = ("dfc_owner_t", "alice_t", "Bob T")


@pytest.fixture
def secured(empty_dsn: str) -> Iterator[dict[str, str]]:
    with psycopg.connect(empty_dsn, autocommit=True) as admin:
        for role in ROLES:
            exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            if exists is None:
                admin.execute(psycopg.sql.SQL("CREATE ROLE {} LOGIN").format(psycopg.sql.Identifier(role)))
        dbname = admin.info.dbname
        admin.execute(psycopg.sql.SQL("GRANT CREATE ON DATABASE {} TO dfc_owner_t").format(
            psycopg.sql.Identifier(dbname)))
        admin.execute("CREATE TABLE public.owner_secret (x int); CREATE TABLE public.bob_data (x int)")
        admin.execute('GRANT ALL ON public.bob_data TO "Bob T"; ALTER TABLE public.owner_secret OWNER TO dfc_owner_t')
        admin.execute("GRANT CREATE, USAGE ON SCHEMA public TO alice_t, \"Bob T\"")
    dsns = {role: make_conninfo(empty_dsn, user=role) for role in ROLES}
    with connect(dsns["dfc_owner_t"]) as owner:
        install(owner)
        owner.execute("SELECT df.grant_usage('alice_t')")
        owner.execute("SELECT df.grant_usage('Bob T')")
    yield {"owner": dsns["dfc_owner_t"], "alice": dsns["alice_t"], "bob": dsns["Bob T"]}


def _start(dsn: str, plan: object) -> str:
    with connect(dsn) as conn:
        row = conn.execute("SELECT df.start(%s)", (json.dumps(plan),)).fetchone()
        assert row is not None
        return str(row[0])


def _output(dsn: str, iid: str) -> str:
    with connect(dsn) as conn:
        row = conn.execute("SELECT output FROM df.instance_info(%s)", (iid,)).fetchone()
        assert row is not None
        return str(row[0])


ESCALATIONS = [
    "RESET ROLE",
    "SET ROLE dfc_owner_t",
    "SET SESSION AUTHORIZATION dfc_owner_t",
    "SELECT set_config('role', 'dfc_owner_t', false)",
    "DO $$ BEGIN EXECUTE 'SET ROLE dfc_owner_t'; END $$",
    "DO $$ BEGIN EXECUTE 'RESET ROLE'; END $$",
    "SELECT count(*) FROM df.tasks",
    "SELECT count(*) FROM public.owner_secret",
    "SELECT count(*) FROM public.bob_data",
    "ALTER FUNCTION df._run_step_task(bigint, boolean, timestamptz, regrole, text, boolean, text, bigint) SECURITY DEFINER",
]


def test_the_worker_role_is_not_a_superuser(secured: dict[str, str]) -> None:
    with connect(secured["owner"]) as conn:
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (False,)


@pytest.mark.parametrize("statement", ESCALATIONS)
def test_escalation_attempts_fail(secured: dict[str, str], statement: str) -> None:
    with running_worker(secured["owner"]):
        iid = _start(secured["alice"], single(statement))
        assert wait(secured["alice"], iid) == "failed", statement
    message = _output(secured["alice"], iid)
    assert any(text in message for text in (
        "cannot set parameter", "permission denied", "must be owner")), message


def test_steps_run_as_the_submitter(secured: dict[str, str]) -> None:
    b = PlanBuilder()
    root = b.seq(
        b.sql("SELECT set_config('search_path', 'nowhere', false)"),
        b.sql("CREATE TEMP TABLE leftovers (x int)"),
        b.sql("SELECT current_user AS cu, (SELECT count(*) FROM df.instances) AS visible"),
    )
    with connect(secured["bob"]) as conn:
        conn.execute("SELECT df.start('SELECT 1')")  # bob's instance must stay invisible
    with running_worker(secured["owner"], concurrency=1):
        iid = _start(secured["alice"], b.build(root))
        assert wait(secured["alice"], iid) == "completed", _output(secured["alice"], iid)
        # the same worker session then runs bob's step: alice's session state is gone
        bob = _start(secured["bob"], single("SELECT count(*) AS n FROM pg_temp.leftovers"))
        assert wait(secured["bob"], bob) == "failed"
    with connect(secured["alice"]) as conn:
        res = conn.execute("SELECT df.result(%s)::jsonb", (iid,)).fetchone()
    assert res is not None
    assert res[0]["rows"] == [{"cu": "alice_t", "visible": 1}]


def test_roles_cannot_see_each_other(secured: dict[str, str]) -> None:
    with running_worker(secured["owner"]):
        alice_iid = _start(secured["alice"], single("SELECT 1"))
        assert wait(secured["alice"], alice_iid) == "completed"
    with connect(secured["bob"]) as bob:
        assert bob.execute("SELECT df.status(%s)", (alice_iid,)).fetchone() == (None,)
        assert bob.execute("SELECT df.result(%s)", (alice_iid,)).fetchone() == (None,)
        assert bob.execute("SELECT count(*) FROM df.instances").fetchone() == (0,)
        assert bob.execute("SELECT count(*) FROM df.nodes").fetchone() == (0,)
        assert bob.execute("SELECT count(*) FROM df.list_instances()").fetchone() == (0,)
        assert bob.execute("SELECT count(*) FROM df.instance_nodes(%s)", (alice_iid,)).fetchone() == (0,)
        with pytest.raises(psycopg.Error, match="not found or access denied"):
            bob.execute("SELECT df.cancel(%s)", (alice_iid,))
        with pytest.raises(psycopg.Error, match="not found or access denied"):
            bob.execute("SELECT df.signal(%s, 'x')", (alice_iid,))
        bob.execute("SELECT df.setvar('k', 'bob')")
    with connect(secured["alice"]) as alice:
        alice.execute("SELECT df.setvar('k', 'alice')")
        assert alice.execute("SELECT df.getvar('k')").fetchone() == ("alice",)
    with connect(secured["bob"]) as bob:
        assert bob.execute("SELECT df.getvar('k')").fetchone() == ("bob",)


def test_runner_cannot_be_altered_or_forged(secured: dict[str, str]) -> None:
    with connect(secured["alice"]) as alice:
        alice.execute("SELECT df.start('SELECT 1')")
        oid = alice.execute("SELECT oid FROM pg_roles WHERE rolname = current_user").fetchone()
        assert oid is not None
        with pytest.raises(psycopg.Error, match="permission denied for schema df_exec"):
            alice.execute(f"ALTER FUNCTION df_exec.run_{oid[0]}(text, boolean, text) SECURITY INVOKER")
    with connect(secured["bob"]) as bob:
        # bob has no runner yet: opening the gate and creating a runner of his own making
        # is refused when his transaction commits
        with pytest.raises(psycopg.Error, match="not the canonical runner"), bob.transaction():
            bob.execute("SELECT df._runner_gate_open(df._my_role())")
            boid = bob.execute("SELECT oid FROM pg_roles WHERE rolname = current_user").fetchone()
            assert boid is not None
            bob.execute(
                f"CREATE FUNCTION df_exec.run_{boid[0]}(p_sql text, p_returns_rows boolean, "
                "p_search_path text) RETURNS SETOF json LANGUAGE sql AS $$ SELECT NULL::json $$")
        assert bob.execute("SELECT has_schema_privilege('df_exec', 'CREATE')").fetchone() == (False,)
        with pytest.raises(psycopg.Error, match="permission denied"):
            bob.execute(f"SELECT * FROM df_exec.run_{oid[0]}('SELECT 1', true, 'public')")


def test_users_cannot_forge_state(secured: dict[str, str]) -> None:
    with connect(secured["alice"]) as alice:
        iid = alice.execute("SELECT df.start('SELECT 1')").fetchone()
        assert iid is not None
        with pytest.raises(psycopg.Error):
            alice.execute("UPDATE df.instances SET status = 'completed' WHERE id = %s", (iid[0],))
        with pytest.raises(psycopg.Error):
            alice.execute("INSERT INTO df.tasks (instance_id, node_id, status) VALUES (%s, 'n0', 'ready')",
                          (iid[0],))
        with pytest.raises(psycopg.Error):
            alice.execute("UPDATE df.nodes SET status = 'completed'")


@pytest.mark.parametrize("static_call", [True, False])
def test_the_search_path_of_a_step_does_not_reach_the_workers_statements(
        secured: dict[str, str], static_call: bool) -> None:
    # the step's search_path puts alice's schema before pg_catalog: the worker's own statements
    # after the step must not resolve names there (they would run alice's code as the worker).
    # Without a static call (a role beyond the first 50 runners) the runner is called from
    # df._run_step_task itself, whose transaction keeps the path the runner set.
    with connect(secured["owner"]) as conn:  # (alice may not create schemas)
        conn.execute("CREATE SCHEMA trap")
        conn.execute("GRANT ALL ON SCHEMA trap TO alice_t")
    with connect(secured["alice"]) as conn:
        conn.execute("CREATE TABLE trap.seen (who text)")
        conn.execute("GRANT USAGE ON SCHEMA trap TO PUBLIC; GRANT INSERT ON trap.seen TO PUBLIC")
        conn.execute("""
            CREATE FUNCTION trap.mark() RETURNS boolean LANGUAGE sql
            AS $$ INSERT INTO trap.seen VALUES (current_user) RETURNING true $$""")
        conn.execute("""
            CREATE FUNCTION trap.statement_timestamp() RETURNS timestamptz LANGUAGE sql
            AS $$ SELECT pg_catalog.now() WHERE trap.mark() $$""")
        conn.execute("""
            CREATE FUNCTION trap.count(anyelement) RETURNS bigint LANGUAGE sql
            AS $$ SELECT 0::bigint WHERE trap.mark() $$""")
        conn.execute("CREATE VIEW trap.pg_prepared_statements AS "
                     "SELECT * FROM pg_catalog.pg_prepared_statements WHERE trap.mark()")
        conn.execute("CREATE TABLE trap.pg_extension (extname name)")
        conn.execute("GRANT SELECT ON trap.pg_extension, trap.pg_prepared_statements TO PUBLIC")
        conn.execute("""
            CREATE FUNCTION trap.eq(bigint, bigint) RETURNS boolean LANGUAGE sql
            AS $$ SELECT $1 OPERATOR(pg_catalog.=) $2
                      AND (current_user::text OPERATOR(pg_catalog.=) 'alice_t' OR trap.mark()) $$
            """)  # (alice's own df.start, run with her search_path, uses it too)
        conn.execute("CREATE OPERATOR trap.= (LEFTARG = bigint, RIGHTARG = bigint, "
                     "FUNCTION = trap.eq)")
    b = PlanBuilder()
    warm = b.build(b.seq(*[b.sql("SELECT 1") for _ in range(6)]))  # prepared statements
    with running_worker(secured["owner"], concurrency=1):
        first = _start(secured["alice"], warm)
        assert wait(secured["alice"], first) == "completed"
        if not static_call:  # (alice's runner, accepted by now, got one)
            with connect(secured["owner"]) as conn:
                conn.execute("CREATE OR REPLACE FUNCTION df._runner_call(p_role oid, p_sql text, "
                             "p_returns_rows boolean, p_search_path text) RETURNS json "
                             "LANGUAGE sql AS 'SELECT NULL::json'")
        with connect(secured["alice"]) as conn:
            conn.execute("SET search_path = trap, pg_catalog")
            row = conn.execute("SELECT df.start(%s)", (json.dumps(warm),)).fetchone()
            assert row is not None
        iid = str(row[0])
        assert wait(secured["alice"], iid) == "completed", _output(secured["alice"], iid)
    with connect(secured["alice"]) as conn:
        assert conn.execute("SELECT who FROM trap.seen").fetchall() == []


def test_a_runner_gets_a_static_call_and_roles_without_one_still_run(
        secured: dict[str, str]) -> None:
    step = single("SELECT current_user::text AS cu")
    with running_worker(secured["owner"], concurrency=1):
        first = _start(secured["alice"], step)
        assert wait(secured["alice"], first) == "completed"
        with connect(secured["owner"]) as conn:
            row = conn.execute("SELECT p.prosrc, 'alice_t'::regrole::oid FROM pg_proc p "
                               "WHERE p.oid = 'df._runner_call'::regproc").fetchone()
            assert row is not None and f"df_exec.run_{row[1]}(" in row[0]
            # a role the call does not know (more than 50 runners): the call is built per step
            conn.execute("CREATE OR REPLACE FUNCTION df._runner_call(p_role oid, p_sql text, "
                         "p_returns_rows boolean, p_search_path text) RETURNS json "
                         "LANGUAGE sql AS 'SELECT NULL::json'")
        second = _start(secured["alice"], step)
        assert wait(secured["alice"], second) == "completed"
    with connect(secured["alice"]) as conn:
        for iid in (first, second):
            res = conn.execute("SELECT df.result(%s)::jsonb", (iid,)).fetchone()
            assert res is not None and res[0]["rows"] == [{"cu": "alice_t"}]
        for fn in ("df._runner_call(oid, text, boolean, text)", "df._write_runner_call()"):
            allowed = conn.execute("SELECT has_function_privilege(%s, 'EXECUTE')", (fn,)).fetchone()
            assert allowed == (False,), fn


def test_many_starts_in_one_transaction_open_no_subtransaction(secured: dict[str, str]) -> None:
    # a subtransaction per start (an exception block around the insert) overflowed the backend's
    # cache of 64 after as many starts, slowing every snapshot in the database until the commit
    step = single("SELECT 1 AS one")
    with connect(secured["alice"]) as conn:
        if conn.info.server_version < 160000:
            pytest.skip("pg_stat_get_backend_subxact is new in PostgreSQL 16")
        with conn.transaction():
            ids = [row[0] for row in conn.execute(
                "SELECT df.start(%s) FROM generate_series(1, 100)", (json.dumps(step),))]
            subxacts = conn.execute(
                "SELECT s.subxact_count, s.subxact_overflowed"
                " FROM pg_stat_get_backend_idset() b, pg_stat_get_backend_subxact(b) s"
                " WHERE pg_stat_get_backend_pid(b) = pg_backend_pid()").fetchone()
        assert subxacts == (0, False)
    assert len(set(ids)) == 100
    with running_worker(secured["owner"]):
        assert {wait(secured["alice"], iid) for iid in ids} == {"completed"}


def test_a_start_whose_id_is_taken_rolls_again(secured: dict[str, str]) -> None:
    # df.start draws ids from gen_random_uuid() through the caller's search_path: alice's own
    # draws the id of bob's instance (which she cannot see) twice, then a free one
    step = single("SELECT 1 AS one")
    bobs = _start(secured["bob"], step)
    with connect(secured["alice"]) as conn:
        conn.execute("CREATE TABLE public.draws (n int PRIMARY KEY, id uuid)")
        conn.execute("CREATE FUNCTION public.gen_random_uuid() RETURNS uuid LANGUAGE sql AS"
                     " 'DELETE FROM public.draws WHERE n = (SELECT min(n) FROM public.draws)"
                     " RETURNING id'")
        taken = f"00000000-0000-0000-0000-0000{bobs}"
        conn.execute("INSERT INTO public.draws VALUES (1, %s), (2, %s),"
                     " (3, '00000000-0000-0000-0000-0000feedf00d')", (taken, taken))
        conn.execute("SET search_path = public, pg_catalog")
        row = conn.execute("SELECT df.start(%s)", (json.dumps(step),)).fetchone()
        assert conn.execute("SELECT count(*) FROM public.draws").fetchone() == (0,)
    assert row == ("feedf00d",)
    with connect(secured["owner"]) as conn:
        owners = conn.execute("SELECT id, submitted_by::text FROM df.instances ORDER BY id").fetchall()
    assert owners == sorted([(bobs, '"Bob T"'), ("feedf00d", "alice_t")])


def test_a_superuser_starts_only_where_allowed(secured: dict[str, str], empty_dsn: str) -> None:
    # the worker's role may call every runner: a superuser's would make it one. The runner is
    # made at the role's first start, and only that start is refused
    step = single("SELECT current_user::text AS cu, (SELECT rolsuper FROM pg_roles"
                  " WHERE rolname = current_user) AS su")
    with connect(empty_dsn) as admin:
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
            admin.execute("SELECT df.start(%s)", (json.dumps(step),))
        runners = admin.execute("SELECT count(*) FROM pg_proc WHERE pronamespace = 'df_exec'::regnamespace"
                                " AND proowner = current_user::regrole").fetchone()
        assert runners == (0,)  # refused before a runner was made
        admin.execute("SET df.enable_superuser_instances = on")
        row = admin.execute("SELECT df.start(%s)", (json.dumps(step),)).fetchone()
        assert row is not None
        # the runner is made now; the superuser's next starts use it, allowed or not
        admin.execute("RESET df.enable_superuser_instances")
        assert admin.execute("SELECT df.start(%s)", (json.dumps(step),)).fetchone() is not None
    with running_worker(secured["owner"]):
        assert wait(empty_dsn, row[0]) == "completed"
    with connect(empty_dsn) as admin:
        res = admin.execute("SELECT df.result(%s)::jsonb", (row[0],)).fetchone()
    assert res is not None and res[0]["rows"] == [{"cu": "postgres", "su": True}]
    error = caught.value
    assert error.diag.message_primary == (
        'role "postgres" is a superuser, and its workflows would let the worker\'s role'
        ' "dfc_owner_t" run any statement as a superuser')
    assert "SET df.enable_superuser_instances = on" in str(error.diag.message_hint)
