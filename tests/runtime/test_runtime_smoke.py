from decimal import Decimal

from helpers import run
from plans import PlanBuilder, chain, single


def test_single_sql_step(dsn: str) -> None:
    _, status, result = run(dsn, single("SELECT 42 AS answer"))
    assert status == "completed"
    assert result == {"rows": [{"answer": 42}], "row_count": 1}


def test_chain_with_binding(dsn: str) -> None:
    b = PlanBuilder()
    root = b.seq(b.sql("SELECT 42 AS answer", bind="first"), b.sql("SELECT $first.answer + 1 AS next"))
    _, status, result = run(dsn, b.build(root))
    assert status == "completed"
    assert result == {"rows": [{"next": 43}], "row_count": 1}


def test_numeric_keeps_digits(dsn: str) -> None:
    _, status, result = run(dsn, chain("SELECT 1", "SELECT 1.50::numeric AS n"))
    assert status == "completed"
    assert result["rows"][0]["n"] == Decimal("1.50")
