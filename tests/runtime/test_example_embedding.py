"""The embedding example runs end to end: its service, pgvector, retries of the service's 503s."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

from helpers import result, start, wait
from rich.console import Console
from timehelpers import scalar, worker_on

from runtime import api
from runtime.connection import connect
from runtime.sources import compile_file

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "embedding"


def _service_module() -> object:
    spec = importlib.util.spec_from_file_location("embedding_service", EXAMPLE / "service.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_embedding_pipeline(dsn: str) -> None:
    service = _service_module()
    server = service.serve("127.0.0.1", 8765, service.hashing_embedder(64),  # type: ignore[attr-defined]
                           "hashing-64", 4)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        (plan,) = compile_file(str(EXAMPLE / "embed.dsql"), Console(quiet=True))
        with connect(dsn) as conn:
            api.install(conn, plan)
        with worker_on(dsn):
            instance = start(dsn, plan["name"])
            assert wait(dsn, instance, 60) == "completed"
    finally:
        server.shutdown()
        server.server_close()
    rows = result(dsn, instance)["rows"]
    assert len(rows) == 3
    assert rows[0]["title"] == "Signals"  # "wait for a signal" is nearest to the question
    assert scalar(dsn, "SELECT count(*) FROM doc_chunks WHERE embedding IS NULL") == 0
    assert scalar(dsn, "SELECT vector_dims(embedding) FROM doc_chunks LIMIT 1") == 64
    # every fourth request was refused with 503 and retried with the same key
    assert scalar(dsn, "SELECT max(attempts) FROM df.nodes WHERE instance_id = %s",
                  (instance,)) >= 2
