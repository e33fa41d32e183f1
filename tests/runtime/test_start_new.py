"""df.start(..., transaction_mode => 'new'): a start that commits on its own.

The start goes over a dblink loopback connection as the same role, so it survives the caller's
rollback and sees only committed variables. dblink is installed here by the test (an
administrator's job); dfc's schema never creates it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import psycopg
import pytest
from helpers import eventually, result, running_worker, wait
from plans import PlanBuilder, single
from psycopg import sql
from psycopg.conninfo import make_conninfo

from runtime import api
from runtime.connection import connect

ROLE = "dfc_new_plain"


@pytest.fixture
def plain_role(dsn: str) -> Iterator[str]:
    """DSN of a role without superuser, granted df usage."""
    with psycopg.connect(dsn, autocommit=True) as admin:
        if admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,)).fetchone() is None:
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(ROLE)))
        admin.execute("SELECT df.grant_usage(%s)", (ROLE,))
    yield make_conninfo(dsn, user=ROLE)


def _error(dsn: str, statement: str, params: tuple[object, ...] = ()) -> psycopg.Error:
    with connect(dsn) as conn, pytest.raises(psycopg.Error) as caught:
        conn.execute(statement, params)
    return caught.value


def test_new_survives_the_callers_rollback(linked: str) -> None:
    with connect(linked) as conn:
        conn.execute("CREATE TABLE seen (x text)")
    with running_worker(linked), connect(linked) as conn:
        with conn.transaction(force_rollback=True):
            kept = conn.execute("SELECT df.start(%s, 'kept', transaction_mode => 'new')",
                                (json.dumps(single("INSERT INTO seen VALUES ('new')")),)).fetchone()
            lost = conn.execute("SELECT df.start(%s, 'lost', transaction_mode => 'caller')",
                                (json.dumps(single("INSERT INTO seen VALUES ('caller')")),)).fetchone()
        assert kept is not None and lost is not None
        assert wait(linked, kept[0]) == "completed"
        assert conn.execute("SELECT id, label FROM df.instances").fetchall() == [(kept[0], "kept")]
        assert conn.execute("SELECT x FROM seen").fetchall() == [("new",)]


def test_mode_is_compared_case_insensitively(linked: str) -> None:
    with connect(linked) as conn:
        with conn.transaction(force_rollback=True):
            conn.execute("SELECT df.start('SELECT 1', transaction_mode => 'NEW')")
            conn.execute("SELECT df.start('SELECT 2', transaction_mode => 'Caller')")
        texts = conn.execute("SELECT p.plan #>> '{nodes,0,sql}' FROM df.instances i "
                             "JOIN df.plans p ON p.id = i.plan_id").fetchall()
    assert texts == [("SELECT 1",)]


def test_invalid_mode_is_refused(dsn: str) -> None:
    error = _error(dsn, "SELECT df.start('SELECT 1', transaction_mode => 'later')")
    assert error.diag.message_primary == (
        "invalid transaction_mode \"later\" for df.start(): expected 'caller' or 'new'")
    assert error.diag.sqlstate == "22023"


def test_variables_snapshot_sees_only_committed_values(linked: str) -> None:
    builder = PlanBuilder("vars")
    plan = builder.build(builder.sql("SELECT '{who}' AS who"))
    with connect(linked) as conn:
        conn.execute("SELECT df.setvar('who', 'committed')")
    with running_worker(linked), connect(linked) as conn:
        with conn.transaction(force_rollback=True):
            conn.execute("SELECT df.setvar('who', 'uncommitted')")
            row = conn.execute("SELECT df.start(%s, transaction_mode => 'new')",
                               (json.dumps(plan),)).fetchone()
        assert row is not None
        assert wait(linked, row[0]) == "completed"
    assert result(linked, row[0]) == {"rows": [{"who": "committed"}], "row_count": 1}


def test_installed_plan_by_name_and_label(linked: str) -> None:
    with connect(linked) as conn:
        conn.execute("SELECT df.install_plan(%s)", (json.dumps(single("SELECT 7 AS v", "seven")),))
        conn.execute("SET search_path = public, links")
    with running_worker(linked), connect(linked) as conn:
        conn.execute("SET search_path = links, public")
        with conn.transaction(force_rollback=True):
            row = conn.execute("SELECT df.start('seven', 'lbl', transaction_mode => 'new')").fetchone()
        assert row is not None
        assert wait(linked, row[0]) == "completed"
        info = conn.execute("SELECT label, search_path, submitted_by::text FROM df.instances WHERE id = %s",
                            (row[0],)).fetchone()
        user = conn.execute("SELECT current_user::text").fetchone()
    assert result(linked, row[0]) == {"rows": [{"v": 7}], "row_count": 1}
    assert user is not None and info == ("lbl", "links, public", user[0])


def test_remote_errors_pass_through(linked: str) -> None:
    with connect(linked) as conn:
        conn.autocommit = True
        with pytest.raises(psycopg.errors.InvalidParameterValue) as bad_plan:
            conn.execute("SELECT df.start('{oops', transaction_mode => 'new')")
        with pytest.raises(psycopg.errors.InvalidCatalogName) as bad_database:
            conn.execute("SELECT df.start('SELECT 1', database => 'nowhere', transaction_mode => 'new')")
        # the failed calls left no loopback connection open in the session
        assert conn.execute("SELECT links.dblink_get_connections()").fetchone() == (None,)
    assert bad_plan.value.diag.message_primary == (
        "Invalid durable function: the argument starts with { but is not valid JSON")
    assert bad_database.value.diag.message_primary == 'database "nowhere" does not exist'


def test_a_start_that_would_wait_for_the_callers_locks_is_refused(linked: str) -> None:
    with connect(linked) as conn:
        with conn.transaction(force_rollback=True):
            conn.execute("SET LOCAL lock_timeout = '20s'")  # only if the wait went unnoticed
            conn.execute("SELECT df.start('SELECT 1')")  # stores the plan 'sql' in this transaction
            with pytest.raises(psycopg.errors.LockNotAvailable) as caught:
                conn.execute("SELECT df.start('SELECT 2', transaction_mode => 'new')")
        assert conn.execute("SELECT count(*) FROM df.instances").fetchone() == (0,)
        assert conn.execute("SELECT links.dblink_get_connections()").fetchone() == (None,)
    assert caught.value.diag.message_primary == (
        "df.start() with transaction_mode => 'new' would wait for a lock this transaction holds")
    assert "Commit first" in str(caught.value.diag.message_hint)


def test_a_wait_for_the_caller_behind_another_session_is_refused(linked: str) -> None:
    # another session holds the lock the new transaction needs (df._store_plan's lock on the
    # plan name 'sql') and itself waits for this transaction
    with connect(linked) as conn, connect(linked) as other:
        conn.autocommit = other.autocommit = False
        conn.execute("SELECT pg_advisory_xact_lock(42)")
        other.execute("SELECT pg_advisory_xact_lock(1147489351, hashtext('sql'))")
        other_pid = other.info.backend_pid
        waiter = threading.Thread(target=lambda: other.execute("SELECT pg_advisory_xact_lock(42)"))
        waiter.start()
        try:
            eventually(lambda: conn.execute(
                "SELECT pg_backend_pid() = ANY (pg_blocking_pids(%s))", (other_pid,)).fetchone() == (True,))
            with pytest.raises(psycopg.errors.LockNotAvailable) as caught:
                conn.execute("SELECT df.start('SELECT 1', transaction_mode => 'new')")
        finally:
            conn.rollback()
            waiter.join(30)
            other.rollback()
    assert caught.value.diag.message_primary == (
        "df.start() with transaction_mode => 'new' would wait for a lock this transaction holds")


def test_without_dblink(dsn: str) -> None:
    error = _error(dsn, "SELECT df.start('SELECT 1', transaction_mode => 'new')")
    assert error.diag.message_primary is not None
    assert error.diag.message_primary.startswith(
        "df.start() with transaction_mode => 'new' needs the dblink extension, which is not installed")
    assert error.diag.message_hint is not None
    assert "CREATE EXTENSION dblink" in error.diag.message_hint


def test_non_superuser_without_a_mapping(linked: str, plain_role: str) -> None:
    error = _error(plain_role, "SELECT df.start('SELECT 1', transaction_mode => 'new')")
    assert error.diag.message_primary == (
        f"df.start() with transaction_mode => 'new' needs the dblink extension, which role \"{ROLE}\" "
        "may not use")
    assert f"GRANT USAGE ON SCHEMA links TO {ROLE};" in str(error.diag.message_hint)
    with psycopg.connect(linked, autocommit=True) as admin:
        admin.execute(sql.SQL("GRANT USAGE ON SCHEMA links TO {}").format(sql.Identifier(ROLE)))
    error = _error(plain_role, "SELECT df.start('SELECT 1', transaction_mode => 'new')")
    assert error.diag.message_primary == (
        "df.start() with transaction_mode => 'new' needs the foreign server df_loopback and a "
        f'user mapping for role "{ROLE}"')
    hint = str(error.diag.message_hint)
    assert "CREATE SERVER df_loopback FOREIGN DATA WRAPPER dblink_fdw" in hint
    assert f"CREATE USER MAPPING FOR {ROLE} SERVER df_loopback OPTIONS (user '{ROLE}'" in hint
    with psycopg.connect(linked, autocommit=True) as admin:
        admin.execute("CREATE SERVER df_loopback FOREIGN DATA WRAPPER dblink_fdw")
    error = _error(plain_role, "SELECT df.start('SELECT 1', transaction_mode => 'new')")
    assert error.diag.message_primary == (
        "df.start() with transaction_mode => 'new' needs a user mapping for role "
        f'"{ROLE}" on the foreign server df_loopback')
    assert "CREATE SERVER" not in str(error.diag.message_hint)
    assert f"CREATE USER MAPPING FOR {ROLE}" in str(error.diag.message_hint)


def test_refused_inside_a_workflow(linked: str) -> None:
    plan = single("SELECT df.start('SELECT 1', transaction_mode => 'new')", "nested")
    with running_worker(linked):
        with connect(linked) as conn:
            row = conn.execute("SELECT df.start(%s)", (json.dumps(plan),)).fetchone()
        assert row is not None
        assert wait(linked, row[0]) == "failed"
    with connect(linked) as conn:
        output = conn.execute("SELECT output FROM df.instances WHERE id = %s", (row[0],)).fetchone()
        count = conn.execute("SELECT count(*) FROM df.instances").fetchone()
    assert output is not None
    assert ("df.start() with transaction_mode => 'new' cannot be called inside a workflow"
            in str(output[0]))
    assert count == (1,)


def test_a_role_name_that_needs_quoting(linked: str) -> None:
    odd = "dfc new 'odd'\\role"
    with psycopg.connect(linked, autocommit=True) as admin:
        if admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (odd,)).fetchone() is None:
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN SUPERUSER").format(sql.Identifier(odd)))
    with running_worker(linked), connect(linked) as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(odd)))
        with conn.transaction(force_rollback=True):
            row = conn.execute("SELECT df.start('SELECT current_user::text AS who', "
                               "transaction_mode => 'new')").fetchone()
        assert row is not None
        assert wait(linked, row[0]) == "completed"
        owner = conn.execute("SELECT submitted_by::text FROM df.instances WHERE id = %s", (row[0],)).fetchone()
    assert owner == (sql.Identifier(odd).as_string(None),)
    assert result(linked, row[0]) == {"rows": [{"who": odd}], "row_count": 1}


def test_a_connection_left_by_a_cancelled_call_is_replaced(linked: str) -> None:
    with connect(linked) as conn:
        conn.autocommit = True
        conn.execute("SELECT links.dblink_connect('df_start_new', format('host=%s port=%s dbname=%s user=%s', "
                     "split_part(current_setting('unix_socket_directories'), ',', 1), "
                     "current_setting('port'), current_database(), current_user))")
        row = conn.execute("SELECT df.start('SELECT 1', transaction_mode => 'new')").fetchone()
        assert conn.execute("SELECT links.dblink_get_connections()").fetchone() == (None,)
        assert row is not None
        assert conn.execute("SELECT count(*) FROM df.instances WHERE id = %s", (row[0],)).fetchone() == (1,)


def test_a_role_without_login(linked: str) -> None:
    with psycopg.connect(linked, autocommit=True) as admin:
        if admin.execute("SELECT 1 FROM pg_roles WHERE rolname = 'dfc_new_nologin'").fetchone() is None:
            admin.execute("CREATE ROLE dfc_new_nologin NOLOGIN")
        admin.execute("SELECT df.grant_usage('dfc_new_nologin')")
    with connect(linked) as conn:
        conn.execute("SET ROLE dfc_new_nologin")
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
            conn.execute("SELECT df.start('SELECT 1', transaction_mode => 'new')")
    assert caught.value.diag.message_primary == (
        "current_user \"dfc_new_nologin\" does not have LOGIN privilege. df.start() with "
        "transaction_mode => 'new' connects back to the database as this role")
    assert "ALTER ROLE dfc_new_nologin LOGIN" in str(caught.value.diag.message_hint)


def test_python_api_passes_the_mode(linked: str) -> None:
    with connect(linked) as conn:
        with conn.transaction(force_rollback=True):
            kept = api.start(conn, single("SELECT 1"), "kept", transaction_mode="new")
            lost = api.start(conn, single("SELECT 2"), "lost")
        assert api.status(conn, kept) == "pending"
        assert api.status(conn, lost) is None


def _start_held_up(linked: str) -> tuple[psycopg.Connection[object], threading.Thread, list[object]]:
    """A 'new' start in flight in a thread of its own, its new transaction waiting for a lock on
    df.instances that the returned connection holds; the thread's outcome goes to the list."""
    holder = connect(linked)
    holder.autocommit = False
    holder.execute("LOCK TABLE df.instances IN SHARE MODE")
    starter = connect(linked)
    outcome: list[object] = [starter.info.backend_pid]

    def run() -> None:
        try:
            outcome.append(starter.execute(
                "SELECT df.start('SELECT 1', transaction_mode => 'new')").fetchone())
        except psycopg.Error as error:
            outcome.append(error)
        outcome.append(starter.execute(
            "SELECT links.dblink_get_connections(), (SELECT count(*) FROM pg_locks l"
            " WHERE l.pid = pg_backend_pid() AND l.locktype = 'advisory')").fetchone())
        starter.close()

    thread = threading.Thread(target=run)
    thread.start()
    with connect(linked) as watcher:  # in autocommit: a transaction sees activity once
        eventually(lambda: watcher.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dfc df.start'"
            " AND wait_event_type = 'Lock'").fetchone() == (1,))
    return holder, thread, outcome


def test_new_starts_beyond_the_cap_wait_then_give_up(linked: str) -> None:
    holder, thread, outcome = _start_held_up(linked)
    try:
        with connect(linked) as conn:
            conn.execute("SET df.max_new_transaction_starts = 1")
            conn.execute("SET df.new_transaction_start_timeout = '0.3'")
            with pytest.raises(psycopg.errors.TooManyConnections) as caught:
                conn.execute("SELECT df.start('SELECT 2', transaction_mode => 'new')")
            # it opened no connection of its own, and holds nothing
            assert conn.execute("SELECT links.dblink_get_connections()").fetchone() == (None,)
            assert conn.execute("SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid()"
                                " AND locktype = 'advisory'").fetchone() == (0,)
            # with a second slot (and the lock given up) it goes ahead
            conn.execute("SET df.max_new_transaction_starts = 2")
            holder.commit()
            second = conn.execute("SELECT df.start('SELECT 2', transaction_mode => 'new')").fetchone()
    finally:
        holder.rollback()
        thread.join(30)
        holder.close()
    error = caught.value
    assert error.diag.message_primary == (
        "df.start() with transaction_mode => 'new' waited 0.3 s for a connection:"
        " df.max_new_transaction_starts allows 1 at a time, and all were in use")
    assert "ALTER DATABASE" in str(error.diag.message_hint)
    first, after = outcome[1], outcome[2]
    assert isinstance(first, tuple) and second is not None
    assert after == (None, 0)  # the first start let its slot and connection go too
    with connect(linked) as conn:
        assert conn.execute("SELECT count(*) FROM df.instances").fetchone() == (2,)


def test_a_cancelled_new_start_cancels_its_start_and_frees_its_slot(linked: str) -> None:
    holder, thread, outcome = _start_held_up(linked)
    try:
        with connect(linked) as conn:
            conn.execute("SELECT pg_cancel_backend(%s)", (outcome[0],))
        thread.join(30)
    finally:
        holder.rollback()
        holder.close()
    assert isinstance(outcome[1], psycopg.errors.QueryCanceled)
    assert outcome[2] == (None, 0)
    with connect(linked) as conn:
        # the start that was cancelled did not happen, and the slot serves the next call
        assert conn.execute("SELECT count(*) FROM df.instances").fetchone() == (0,)
        conn.execute("SET df.max_new_transaction_starts = 1")
        conn.execute("SET df.new_transaction_start_timeout = 0")
        assert conn.execute("SELECT df.start('SELECT 1', transaction_mode => 'new')").fetchone()


@pytest.mark.parametrize(("setting", "value", "message"), [
    ("df.max_new_transaction_starts", "0",
     'df.max_new_transaction_starts must be a whole number of at least 1, not "0"'),
    ("df.max_new_transaction_starts", "many",
     'df.max_new_transaction_starts must be a whole number of at least 1, not "many"'),
    ("df.new_transaction_start_timeout", "-1",
     'df.new_transaction_start_timeout must be a number of seconds, not "-1"'),
])
def test_cap_settings_are_checked(linked: str, setting: str, value: str, message: str) -> None:
    with connect(linked) as conn:
        conn.execute(sql.SQL("SET {} = {}").format(sql.Identifier(*setting.split(".")),
                                                   sql.Literal(value)))
        with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
            conn.execute("SELECT df.start('SELECT 1', transaction_mode => 'new')")
    assert caught.value.diag.message_primary == message
