"""A small HTTP server on loopback for tests of HTTP steps.

Routes (any method):

* ``/echo`` — 200, JSON of the request: ``method``, ``path``, ``headers`` (lower-case), ``body``;
* ``/status/<code>`` — that status with a short text body;
* ``/bytes`` — 200, ``application/octet-stream`` body ``00 ff 10 80``;
* ``/utf8-untyped`` — 200 with UTF-8 text and no content type;
* ``/latin1`` — 200, ``text/plain; charset=iso-8859-1`` body ``café``;
* ``/json`` — 200 ``{"hello": "world"}``;
* ``/delay/<seconds>`` — waits, then 200;
* ``/flaky/<name>?fail=N`` — 503 for the first N requests of ``name``, then 200; each request's
  ``Idempotency-Key`` is recorded in :attr:`TestServer.keys`;
* ``/redirect`` — 302 to ``/echo``;
* ``/big/<n>`` — 200 with ``n`` bytes;

Every request is appended to :attr:`TestServer.requests`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class TestServer:
    __test__ = False

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.keys: dict[str, list[str | None]] = defaultdict(list)
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                record = {
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body.decode("utf-8", "replace"),
                    "raw_body": body,
                }
                with server._lock:
                    server.requests.append(record)
                server.route(self, record)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> TestServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def route(self, handler: BaseHTTPRequestHandler, record: dict[str, Any]) -> None:
        parts = urlsplit(record["path"])
        path = parts.path
        query = parse_qs(parts.query)
        if path == "/echo":
            data = {k: v for k, v in record.items() if k != "raw_body"}
            self.reply(handler, 200, json.dumps(data).encode(), "application/json")
        elif path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            self.reply(handler, code, f"status {code}".encode(), "text/plain")
        elif path == "/bytes":
            self.reply(handler, 200, bytes([0, 255, 16, 128]), "application/octet-stream")
        elif path == "/utf8-untyped":
            self.reply(handler, 200, "héllo".encode(), None)
        elif path == "/latin1":
            self.reply(handler, 200, "café".encode("latin-1"), "text/plain; charset=iso-8859-1")
        elif path == "/json":
            self.reply(handler, 200, b'{"hello": "world"}', "application/json")
        elif path.startswith("/delay/"):
            time.sleep(float(path.rsplit("/", 1)[1]))
            self.reply(handler, 200, b"late", "text/plain")
        elif path.startswith("/flaky/"):
            name = path.rsplit("/", 1)[1]
            fail = int(query.get("fail", ["2"])[0])
            with self._lock:
                self.keys[name].append(record["headers"].get("idempotency-key"))
                count = len(self.keys[name])
            if count <= fail:
                self.reply(handler, 503, f"try again ({count})".encode(), "text/plain")
            else:
                self.reply(handler, 200, f"done after {count}".encode(), "text/plain")
        elif path == "/redirect":
            self.reply(handler, 302, b"", "text/plain", {"Location": "/echo"})
        elif path.startswith("/big/"):
            self.reply(handler, 200, b"x" * int(path.rsplit("/", 1)[1]), "text/plain")
        else:
            self.reply(handler, 404, b"not found", "text/plain")

    @staticmethod
    def reply(handler: BaseHTTPRequestHandler, status: int, body: bytes,
              content_type: str | None, extra: dict[str, str] | None = None) -> None:
        handler.send_response(status)
        if content_type is not None:
            handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("X-Test", "yes")
        for name, value in (extra or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)
