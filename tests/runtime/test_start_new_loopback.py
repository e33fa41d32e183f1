"""transaction_mode => 'new' through the foreign server df_loopback and a user mapping.

A role without superuser may use dblink only with a password of its own: the test gives a role a
password, makes the server ask for it (pg_hba.conf lines for that role only, on the embedded
server of the tests) and maps the role on df_loopback, the way an administrator sets it up.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from helpers import eventually, result, running_worker, wait
from psycopg import sql
from psycopg.conninfo import make_conninfo

from runtime.connection import connect

ROLE = "dfc_new_pw"
SUPERUSER = "dfc_new_pw_su"
PASSWORD = "dfc-new-pw-secret"
MARK = f"# dfc test: transaction_mode new, process {os.getpid()}"


def _server_options(admin: psycopg.Connection[tuple[object, ...]]) -> dict[str, str]:
    row = admin.execute("SELECT current_setting('unix_socket_directories'), current_setting('port'), "
                        "current_database()").fetchone()
    assert row is not None
    host = str(row[0]).split(",")[0].strip().strip('"') or "localhost"
    return {"host": host, "port": str(row[1]), "dbname": str(row[2])}


def _create_server(admin: psycopg.Connection[tuple[object, ...]], **override: str) -> None:
    options = {**_server_options(admin), **override}
    admin.execute(sql.SQL("CREATE SERVER df_loopback FOREIGN DATA WRAPPER dblink_fdw OPTIONS ({})").format(
        sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(k), sql.Literal(v))
                           for k, v in options.items())))


def _set_hba(admin: psycopg.Connection[tuple[object, ...]], lines: list[str]) -> None:
    """Replace this module's lines at the top of pg_hba.conf and reload."""
    row = admin.execute("SELECT current_setting('hba_file')").fetchone()
    assert row is not None
    path = Path(str(row[0]))
    kept = [line for line in path.read_text().splitlines() if not line.endswith(MARK)]
    path.write_text("\n".join([f"{line} {MARK}" for line in lines] + kept) + "\n")
    admin.execute("SELECT pg_reload_conf()")


@pytest.fixture
def linked(dsn: str) -> str:
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("CREATE EXTENSION dblink")
    return dsn


@contextmanager
def _password_login(dsn: str, role: str, *, superuser: bool = False) -> Iterator[str]:
    """Make ``role`` log in with its password (it gets df usage); yields its DSN."""
    if os.environ.get("DFC_TEST_DSN"):
        pytest.skip("needs password logins for a test role: configured only on the embedded server")
    with psycopg.connect(dsn, autocommit=True) as admin:
        row = admin.execute("SELECT current_setting('hba_file')").fetchone()
        if row is None or not os.access(str(row[0]), os.W_OK):
            pytest.skip("pg_hba.conf of the test server is not writable from here")
        exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        admin.execute(sql.SQL(verb + " ROLE {} LOGIN {} PASSWORD {}").format(
            sql.Identifier(role), sql.SQL("SUPERUSER" if superuser else "NOSUPERUSER"),
            sql.Literal(PASSWORD)))
        admin.execute("SELECT df.grant_usage(%s)", (role,))
        _set_hba(admin, [f"local all {role} scram-sha-256",
                         f"host all {role} 127.0.0.1/32 scram-sha-256",
                         f"host all {role} ::1/128 scram-sha-256"])
        without_password = make_conninfo(dsn, user=role)

        def asks_for_password() -> bool:
            try:
                psycopg.connect(without_password).close()
            except psycopg.OperationalError:
                return True
            return False

        try:
            eventually(asks_for_password)
            yield make_conninfo(dsn, user=role, password=PASSWORD)
        finally:
            _set_hba(admin, [])


@pytest.fixture
def password_role(linked: str) -> Iterator[str]:
    """DSN of a role without superuser that must log in with its password."""
    with _password_login(linked, ROLE) as role_dsn:
        yield role_dsn


def test_a_superuser_the_server_asks_for_a_password(linked: str) -> None:
    with _password_login(linked, SUPERUSER, superuser=True) as su_dsn, connect(su_dsn) as conn:
        with pytest.raises(psycopg.errors.SqlclientUnableToEstablishSqlconnection) as caught:
            conn.execute("SELECT df.start('SELECT 1', transaction_mode => 'new')")
        assert "no password supplied" in str(caught.value.diag.message_primary)
        hint = str(caught.value.diag.message_hint)
        assert hint.startswith("Allow this login in pg_hba.conf, or have an administrator set up a "
                               "password login: CREATE SERVER df_loopback")
        with psycopg.connect(linked, autocommit=True) as admin:
            _create_server(admin)
            admin.execute(sql.SQL("CREATE USER MAPPING FOR {} SERVER df_loopback OPTIONS (user {}, password {})")
                          .format(sql.Identifier(SUPERUSER), sql.Literal(SUPERUSER), sql.Literal(PASSWORD)))
        row = conn.execute("SELECT df.start('SELECT 1', transaction_mode => 'new')").fetchone()
        assert row is not None
        assert conn.execute("SELECT submitted_by::text FROM df.instances WHERE id = %s",
                            (row[0],)).fetchone() == (SUPERUSER,)


def test_a_mapped_role_starts_through_df_loopback(linked: str, password_role: str) -> None:
    with psycopg.connect(linked, autocommit=True) as admin:
        _create_server(admin)
        admin.execute(sql.SQL("GRANT USAGE ON FOREIGN SERVER df_loopback TO {}").format(sql.Identifier(ROLE)))
        admin.execute(sql.SQL("CREATE USER MAPPING FOR {} SERVER df_loopback OPTIONS (user {}, password {})")
                      .format(sql.Identifier(ROLE), sql.Literal(ROLE), sql.Literal(PASSWORD)))
    with running_worker(linked), connect(password_role) as conn:
        with conn.transaction(force_rollback=True):
            row = conn.execute("SELECT df.start('SELECT current_user::text AS who', 'mapped', "
                               "transaction_mode => 'new')").fetchone()
        assert row is not None
        assert wait(password_role, row[0]) == "completed"
        info = conn.execute("SELECT label, submitted_by::text FROM df.instances WHERE id = %s",
                            (row[0],)).fetchone()
    assert info == ("mapped", ROLE)
    assert result(linked, row[0]) == {"rows": [{"who": ROLE}], "row_count": 1}


def test_scram_passthrough_needs_no_stored_password(linked: str, password_role: str) -> None:
    with psycopg.connect(linked, autocommit=True) as admin:
        if admin.info.server_version < 180000:
            pytest.skip("use_scram_passthrough is new in PostgreSQL 18")
        _create_server(admin, use_scram_passthrough="true")
        admin.execute(sql.SQL("GRANT USAGE ON FOREIGN SERVER df_loopback TO {}").format(sql.Identifier(ROLE)))
        admin.execute(sql.SQL("CREATE USER MAPPING FOR {} SERVER df_loopback OPTIONS (user {})")
                      .format(sql.Identifier(ROLE), sql.Literal(ROLE)))
    with connect(password_role) as conn:
        row = conn.execute("SELECT df.start('SELECT 1', transaction_mode => 'new')").fetchone()
        assert row is not None
        assert conn.execute("SELECT submitted_by::text FROM df.instances WHERE id = %s",
                            (row[0],)).fetchone() == (ROLE,)


def test_a_wrong_password_is_a_connection_error(linked: str, password_role: str) -> None:
    with psycopg.connect(linked, autocommit=True) as admin:
        _create_server(admin)
        admin.execute(sql.SQL("GRANT USAGE ON FOREIGN SERVER df_loopback TO {}").format(sql.Identifier(ROLE)))
        admin.execute(sql.SQL("CREATE USER MAPPING FOR {} SERVER df_loopback OPTIONS (user {}, password 'wrong')")
                      .format(sql.Identifier(ROLE), sql.Literal(ROLE)))
    with connect(password_role) as conn, pytest.raises(psycopg.errors.SqlclientUnableToEstablishSqlconnection) as caught:
        conn.execute("SELECT df.start('SELECT 1', transaction_mode => 'new')")
    message = str(caught.value.diag.message_primary)
    database = psycopg.conninfo.conninfo_to_dict(linked)["dbname"]
    assert message.startswith(
        f"df.start() with transaction_mode => 'new' could not connect back to database \"{database}\" "
        f'as role "{ROLE}": could not establish connection')
    assert "password authentication failed" in message
    assert "user mapping for" in str(caught.value.diag.message_hint)


def test_a_mapping_without_a_password_is_refused(linked: str, password_role: str) -> None:
    with psycopg.connect(linked, autocommit=True) as admin:
        _create_server(admin)
        admin.execute(sql.SQL("GRANT USAGE ON FOREIGN SERVER df_loopback TO {}").format(sql.Identifier(ROLE)))
        admin.execute(sql.SQL("CREATE USER MAPPING FOR {} SERVER df_loopback OPTIONS (user {})")
                      .format(sql.Identifier(ROLE), sql.Literal(ROLE)))
    with connect(password_role) as conn, pytest.raises(psycopg.errors.SqlclientUnableToEstablishSqlconnection) as caught:
        conn.execute("SELECT df.start('SELECT 1', transaction_mode => 'new')")
    assert "password" in str(caught.value.diag.message_primary)


def test_a_mapping_without_server_usage(linked: str, password_role: str) -> None:
    with psycopg.connect(linked, autocommit=True) as admin:
        _create_server(admin)
        admin.execute(sql.SQL("CREATE USER MAPPING FOR {} SERVER df_loopback OPTIONS (user {}, password {})")
                      .format(sql.Identifier(ROLE), sql.Literal(ROLE), sql.Literal(PASSWORD)))
    with connect(password_role) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
        conn.execute("SELECT df.start('SELECT 1', transaction_mode => 'new')")
    assert caught.value.diag.message_primary == (
        "df.start() with transaction_mode => 'new' connects through the foreign server df_loopback, "
        f'which role "{ROLE}" may not use')
    assert caught.value.diag.message_hint == f"An administrator runs GRANT USAGE ON FOREIGN SERVER df_loopback TO {ROLE};"


def test_a_mapping_for_another_role_is_refused(linked: str) -> None:
    with psycopg.connect(linked, autocommit=True) as admin:
        if admin.execute("SELECT 1 FROM pg_roles WHERE rolname = 'dfc_new_other'").fetchone() is None:
            admin.execute("CREATE ROLE dfc_new_other LOGIN")
        _create_server(admin)
        admin.execute("CREATE USER MAPPING FOR CURRENT_USER SERVER df_loopback OPTIONS (user 'dfc_new_other')")
    with connect(linked) as conn, pytest.raises(psycopg.errors.InvalidAuthorizationSpecification) as caught:
        conn.execute("SELECT df.start('SELECT 1', transaction_mode => 'new')")
    assert str(caught.value.diag.message_primary).startswith(
        "df.start() with transaction_mode => 'new' connected back as role \"dfc_new_other\"")
    assert "user mapping" in str(caught.value.diag.message_hint)


def test_an_unreachable_server_is_a_connection_error(linked: str) -> None:
    with psycopg.connect(linked, autocommit=True) as admin:
        _create_server(admin, port="1")
        admin.execute("CREATE USER MAPPING FOR CURRENT_USER SERVER df_loopback")
    with connect(linked) as conn, pytest.raises(psycopg.errors.SqlclientUnableToEstablishSqlconnection) as caught:
        conn.execute("SELECT df.start('SELECT 1', transaction_mode => 'new')")
    assert "could not establish connection" in str(caught.value.diag.message_primary)
    assert "Check the options of the foreign server df_loopback" in str(caught.value.diag.message_hint)
