"""HTTP steps end to end: envelopes, default retries with one idempotency key, grants, guard."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from helpers import output, result, start, wait
from httpserver import TestServer
from plans import PlanBuilder
from timehelpers import drive, make_clock, scalar, worker_on

from runtime.http_client import HttpSettings


@pytest.fixture(scope="module")
def server() -> Iterator[TestServer]:
    srv = TestServer().start()
    yield srv
    srv.stop()


def http(b: PlanBuilder, url: str, method: str = "GET", body: str | None = None,
         headers: dict[str, str] | None = None, bind: str | None = None,
         timeout: int = 30) -> str:
    return b._add("http", bind, url=url, method=method, body=body, headers=headers,
                  timeout_seconds=timeout)


def test_get_and_use_the_envelope(dsn: str, server: TestServer) -> None:
    b = PlanBuilder()
    plan = b.build(b.seq(http(b, f"{server.base}/json", bind="r"),
                         b.sql("SELECT $r.status AS status, $r.ok AS ok, "
                               "($r.body)::jsonb ->> 'hello' AS hello")))
    with worker_on(dsn):
        instance = start(dsn, plan)
        assert wait(dsn, instance, 30) == "completed"
    assert result(dsn, instance)["rows"] == [{"status": 200, "ok": True, "hello": "world"}]


def test_post_with_variables_and_results(dsn: str, server: TestServer) -> None:
    b = PlanBuilder()
    b.defaults["token"] = "t0k"
    plan = b.build(b.seq(
        b.sql("SELECT 'O''Brien \"Jr\"' AS name", bind="who"),
        http(b, f"{server.base}/echo", "POST", '{"name": "$who.name", "id": "{sys_instance_id}"}',
             {"Authorization": "Bearer {token}"}),
    ))
    with worker_on(dsn):
        instance = start(dsn, plan)
        assert wait(dsn, instance, 30) == "completed", output(dsn, instance)
    seen = json.loads(result(dsn, instance)["body"])
    assert json.loads(seen["body"]) == {"name": "O'Brien \"Jr\"", "id": instance}
    assert seen["headers"]["authorization"] == "Bearer t0k"
    assert seen["headers"]["idempotency-key"].startswith(f"dfc-{instance}-")


def test_4xx_is_a_result(dsn: str, server: TestServer) -> None:
    b = PlanBuilder()
    plan = b.build(http(b, f"{server.base}/status/404"))
    with worker_on(dsn):
        instance = start(dsn, plan)
        assert wait(dsn, instance, 30) == "completed"
    envelope = result(dsn, instance)
    assert (envelope["status"], envelope["ok"]) == (404, False)


def test_5xx_is_retried_with_one_key_and_succeeds_on_the_third_attempt(
        dsn: str, server: TestServer) -> None:
    clock = make_clock()
    b = PlanBuilder()
    node = http(b, f"{server.base}/flaky/default3?fail=2")
    plan = b.build(node)
    with worker_on(dsn, clock):
        instance = start(dsn, plan)
        assert drive(dsn, clock, instance, step=5) == "completed"
    assert result(dsn, instance)["body"] == "done after 3"
    keys = server.keys["default3"]
    assert len(keys) == 3 and len(set(keys)) == 1
    attempts = scalar(dsn, "SELECT attempts FROM df.nodes WHERE instance_id = %s AND id = %s",
                      (instance, node))
    assert attempts == 3


def test_5xx_fails_after_three_attempts(dsn: str, server: TestServer) -> None:
    clock = make_clock()
    b = PlanBuilder()
    plan = b.build(http(b, f"{server.base}/flaky/always?fail=99"))
    with worker_on(dsn, clock):
        instance = start(dsn, plan)
        assert drive(dsn, clock, instance, step=5) == "failed"
    assert len(server.keys["always"]) == 3
    assert output(dsn, instance) == (
        f"HTTP GET {server.base}/flaky/always?fail=99 returned 503: try again (3)")


def test_retry_node_overrides_the_attempts(dsn: str, server: TestServer) -> None:
    clock = make_clock()
    b = PlanBuilder()
    inner = http(b, f"{server.base}/flaky/five?fail=4")
    plan = b.build(b._add("retry", None, body=inner, max_attempts=5, initial_delay_seconds=1,
                          backoff_factor=2, max_delay_seconds=60))
    with worker_on(dsn, clock):
        instance = start(dsn, plan)
        assert drive(dsn, clock, instance, step=10) == "completed"
    keys = server.keys["five"]
    assert len(keys) == 5 and len(set(keys)) == 1


def test_loopback_refused_without_allow_list(dsn: str, server: TestServer) -> None:
    b = PlanBuilder()
    plan = b.build(http(b, f"{server.base}/echo"))
    before = len(server.requests)
    with worker_on(dsn, http=HttpSettings()):
        instance = start(dsn, plan)
        assert wait(dsn, instance, 30) == "failed"
    assert (output(dsn, instance) or "").startswith("Blocked: 127.0.0.1 is a loopback address")
    assert len(server.requests) == before


def test_http_needs_the_grant(dsn: str, server: TestServer) -> None:
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("DROP ROLE IF EXISTS web_user; DROP ROLE IF EXISTS sql_user")
        admin.execute("CREATE ROLE web_user LOGIN; CREATE ROLE sql_user LOGIN")
        admin.execute("SELECT df.grant_usage('web_user', include_http => true)")
        admin.execute("SELECT df.grant_usage('sql_user')")
    b = PlanBuilder()
    plan = json.dumps(b.build(http(b, f"{server.base}/json")))
    outcomes: dict[str, Any] = {}
    try:
        with worker_on(dsn):
            for role in ("web_user", "sql_user"):
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(f"SET ROLE {role}")
                    row = conn.execute("SELECT df.start(%s)", (plan,)).fetchone()
                    assert row is not None
                    outcomes[role] = row[0]
            for role, instance in outcomes.items():
                outcomes[role] = (wait(dsn, instance, 30), output(dsn, instance))
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            for role in ("web_user", "sql_user"):
                admin.execute(f"SELECT df.revoke_usage('{role}')")
    assert outcomes["web_user"][0] == "completed"
    assert outcomes["sql_user"][0] == "failed"
    assert outcomes["sql_user"][1].startswith("Blocked: role 'sql_user' may not make HTTP requests")
