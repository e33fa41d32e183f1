"""A small embedding service for the embedding example: ``POST /embed`` with
``{"input": ["text", …]}`` answers ``{"embeddings": [[…], …], "model": "…", "dimensions": N}``.

By default the vectors come from feature hashing (each lower-cased word adds ±1 to one of
``--dimensions`` buckets, then the vector is normalised): deterministic, offline, and good enough
that texts sharing words land near each other. ``--model minilm`` uses the all-MiniLM-L6-v2
sentence-transformers model instead when it is installed and cached locally (384 dimensions; see
the README).

``--fail-every N`` answers every N-th request with ``503 Service Unavailable`` so that the
workflow's retries can be watched at work.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Embedder = Callable[[list[str]], list[list[float]]]
_WORD = re.compile(r"[a-z0-9]+")


def hashing_embedder(dimensions: int) -> Embedder:
    def embed(texts: list[str]) -> list[list[float]]:
        vectors = []
        for text in texts:
            vector = [0.0] * dimensions
            for word in _WORD.findall(text.lower()):
                digest = hashlib.sha256(word.encode()).digest()
                bucket = int.from_bytes(digest[:4], "big") % dimensions
                vector[bucket] += 1.0 if digest[4] & 1 else -1.0
            norm = math.sqrt(sum(x * x for x in vector)) or 1.0
            vectors.append([round(x / norm, 6) for x in vector])
        return vectors

    return embed


def minilm_embedder() -> Embedder:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")

    def embed(texts: list[str]) -> list[list[float]]:
        return [[round(float(x), 6) for x in row]
                for row in model.encode(texts, normalize_embeddings=True)]

    return embed


def serve(host: str, port: int, embed: Embedder, model: str, fail_every: int) -> ThreadingHTTPServer:
    counter = {"requests": 0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return None

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            with lock:
                counter["requests"] += 1
                number = counter["requests"]
            if self.path != "/embed":
                return self._reply(404, {"error": "not found"})
            if fail_every and number % fail_every == 0:
                return self._reply(503, {"error": f"request {number}: busy, try again"})
            try:
                texts = json.loads(body)["input"]
                if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                return self._reply(400, {"error": 'expected {"input": ["text", ...]}'})
            vectors = embed(texts)
            self._reply(200, {"model": model, "dimensions": len(vectors[0]) if vectors else 0,
                              "embeddings": vectors})

        def _reply(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return ThreadingHTTPServer((host, port), Handler)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--dimensions", type=int, default=64)
    parser.add_argument("--model", choices=["hashing", "minilm"], default="hashing")
    parser.add_argument("--fail-every", type=int, default=4, metavar="N",
                        help="answer every N-th request with 503 (0: never)")
    args = parser.parse_args()
    if args.model == "minilm":
        embed, name = minilm_embedder(), "all-MiniLM-L6-v2"
    else:
        embed, name = hashing_embedder(args.dimensions), f"hashing-{args.dimensions}"
    server = serve(args.host, args.port, embed, name, args.fail_every)
    print(f"embedding service ({name}) on http://{args.host}:{args.port}/embed", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
