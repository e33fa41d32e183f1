"""Table and column completion from a real PostgreSQL database (the shared test server)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest
import pytest_lsp
from lsp_e2e import open_doc
from lsp_helpers import with_cursor
from lsprotocol import types as lsp
from psycopg.conninfo import make_conninfo
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from lsp.completion import complete
from lsp.schema import SchemaCache

TABLES = """
CREATE TABLE customers (id integer PRIMARY KEY, email text NOT NULL, created_at timestamptz);
CREATE SCHEMA sales;
CREATE TABLE sales.invoices (invoice_no integer, customer_id integer, amount numeric);
"""


@pytest.fixture(scope="module")
def app_dsn(pg_server: str) -> Iterator[str]:
    name = f"dfc_lsp_{os.getpid()}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    dsn = make_conninfo(pg_server, dbname=name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(TABLES)
    yield dsn
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def labels(marked: str, cache: SchemaCache) -> list[str]:
    state, pos = with_cursor(marked)
    return [i.label for i in complete(state, pos, schema=cache.schema).items]


def test_schema_is_read_and_completes_tables_and_columns(app_dsn: str) -> None:
    cache = SchemaCache()
    status = cache.refresh(app_dsn)
    assert "read 2 tables" in status, status
    found = labels("SELECT df.start('SELECT * FROM │', 'w');", cache)
    assert "customers" in found and "sales.invoices" in found
    mentioned = labels("SELECT df.start('SELECT em│ FROM customers', 'w');", cache)
    assert "email" in mentioned
    dotted = labels("SELECT df.start('SELECT sales.invoices.│', 'w');", cache)
    assert dotted == ["invoice_no", "customer_id", "amount"]


def test_star_results_take_columns_from_the_table(app_dsn: str) -> None:
    cache = SchemaCache()
    cache.refresh(app_dsn)
    found = labels(
        "SELECT df.start('SELECT * FROM customers' |=> 'c' ~> 'SELECT $c.│', 'w');", cache
    )
    assert found == ["id", "email", "created_at"]


def test_an_unreachable_database_is_a_message_not_a_crash() -> None:
    cache = SchemaCache()
    status = cache.refresh("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")
    assert status.startswith("dfc: cannot read the database schema")
    assert cache.schema is None


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=[sys.executable, "-m", "dfc", "lsp"]),
    params=[("visual-studio-code", "initializationOptions"), ("neovim", "configuration")],
    ids=["vscode-init-options", "neovim-configuration"],
    scope="module",
)
async def db_client(
    lsp_client: LanguageClient, request: pytest.FixtureRequest, app_dsn: str
) -> AsyncIterator[None]:
    """A server told the DSN by initializationOptions, or asked for it by workspace/configuration."""
    client_name, channel = request.param
    options: dict[str, object] = {"debounceMs": 0}
    if channel == "initializationOptions":
        options["dsn"] = app_dsn
    else:
        lsp_client.set_configuration({"dsn": app_dsn}, section="dfc")
    params = lsp.InitializeParams(
        capabilities=client_capabilities(client_name), initialization_options=options
    )
    await lsp_client.initialize_session(params)
    yield
    await lsp_client.shutdown_session()


@pytest.mark.asyncio(loop_scope="module")
async def test_database_completion_over_stdio(db_client: LanguageClient) -> None:
    # The server reads the schema in the background as soon as it knows the DSN.
    for _ in range(600):
        if any("read 2 tables" in m.message for m in db_client.log_messages):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError([m.message for m in db_client.log_messages])
    status = await db_client.workspace_execute_command_async(
        lsp.ExecuteCommandParams(command="dfc.refreshSchema")
    )
    assert "read 2 tables" in str(status)
    doc = await open_doc(db_client, "SELECT df.start('SELECT * FROM cu', 'w');")
    result = await db_client.text_document_completion_async(
        lsp.CompletionParams(text_document=doc.ident(), position=doc.pos("cu'", 2))
    )
    assert isinstance(result, lsp.CompletionList)
    assert "customers" in [i.label for i in result.items]
