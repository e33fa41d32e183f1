"""HTTP steps: build a request from an ``http``/``http_multipart`` plan node, send it, and return
pg_durable's result envelope (behaviour §5)::

    {"status": 200, "body": "…", "encoding": "text" | "base64",
     "headers": {lower-case name: value}, "ok": true, "duration_ms": 12}

Outcomes (behaviour §8, DSL.md §5): 1xx–4xx responses are results (``ok`` is true for 2xx only;
redirects are not followed); 5xx responses, timeouts and connection errors raise a *retryable*
:class:`HttpFailure`; refusals (SSRF guard, size caps, malformed input) raise a permanent one. The
caller decides about retries (:mod:`runtime.backoff`).

Safety:

* the SSRF guard (:mod:`runtime.ssrf`) vets the resolved address, and the connection is pinned to
  it (``Host`` and TLS SNI keep the name); no proxies from the environment are used;
* request and response bodies are capped (:class:`HttpSettings`);
* framing and hop-by-hop headers (``Host``, ``Content-Length``, ``Transfer-Encoding``,
  ``Connection``, …) given by the workflow are not forwarded; header values may not contain line
  breaks;
* every request carries an ``Idempotency-Key`` that is the same for every attempt of one step
  activation (:func:`idempotency_key`), unless the workflow sets its own.

Aborting: a request sent with an :class:`Abort` stops as soon as another thread calls
:meth:`Abort.abort` (the worker does when the step's task is cancelled): the connection's socket
is shut down, which wakes the blocked read or write at once, and :func:`send` raises
:class:`Aborted` rather than a failure. The socket is found through httpcore's documented
``trace`` request extension (the ``connection.connect_tcp.complete`` event carries the network
stream); a duplicate of it is kept, so the shutdown also reaches a connection that TLS has since
wrapped. A connection still being opened is not interrupted: once it is open (or its timeout
passes) the request stops.

Substitution (DSL.md §4): ``{var}`` then ``$name`` references are replaced in the URL, the body,
header values and multipart ``name``/``filename``/``data_b64``. Inside a JSON body values are
JSON-escaped: inside a JSON string a value's text is escaped, outside strings the value is
written as JSON (strings quoted), so no value can change the document's structure.
"""

from __future__ import annotations

import base64
import codecs
import hashlib
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import httpx

from runtime.jsonvalues import JSON, dumps
from runtime.ssrf import NetworkPolicy, Refused, Resolver, system_resolver, vet
from runtime.substitution import (
    SubstitutionError,
    bound_refs,
    json_value,
    substitute_text,
    substitute_vars,
    text_of,
)

METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH"})
MULTIPART_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Headers that describe the message framing or the connection: the client sets them itself.
NOT_FORWARDED = frozenset({
    "host", "content-length", "transfer-encoding", "connection", "keep-alive",
    "proxy-connection", "te", "trailer", "upgrade",
})  # fmt: skip
_TEXT_TYPES = frozenset({
    "application/json", "application/xml", "application/javascript", "application/ecmascript",
    "application/x-www-form-urlencoded", "application/graphql", "application/yaml",
    "application/x-yaml",
})  # fmt: skip
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
ERROR_BODY_BYTES = 512
_SINGLE_REFERENCE = re.compile(r"\$[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?\??|\{[A-Za-z_]\w*\}")


class HttpFailure(Exception):
    """The request failed; ``retryable`` says whether another attempt may succeed."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


class Aborted(Exception):
    """The request was stopped by :meth:`Abort.abort`: there is no outcome to record."""


class Abort:
    """Lets another thread stop one request in flight (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._aborted = False
        self._sockets: list[socket.socket] = []

    @property
    def aborted(self) -> bool:
        with self._lock:
            return self._aborted

    def abort(self) -> None:
        """Stop the request: now if it is in flight, at its start if it has not started yet."""
        with self._lock:
            if self._aborted:
                return
            self._aborted = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut_down(sock)

    def trace(self, name: str, info: Mapping[str, Any]) -> None:
        """httpcore's ``trace`` extension: keep hold of the connection once it is open."""
        if name != "connection.connect_tcp.complete":
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if not isinstance(sock, socket.socket):
            return
        try:
            # a duplicate: TLS detaches the original object, the connection stays the same
            held = sock.dup()
        except OSError:
            return
        with self._lock:
            self._sockets.append(held)
            aborted = self._aborted
        if aborted:
            _shut_down(held)

    def release(self) -> None:
        """Close the duplicates once the request is over (its own sockets are closed by then)."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            sock.close()


def _shut_down(sock: socket.socket) -> None:
    with suppress(OSError):  # already closed: the request is over anyway
        sock.shutdown(socket.SHUT_RDWR)


_CURRENT_ABORT: ContextVar[Abort | None] = ContextVar("dfc_http_abort", default=None)


@contextmanager
def abortable(abort: Abort) -> Iterator[None]:
    """Requests of a step's work run in this block stop when ``abort`` is aborted (the worker
    hands the abort of a task's work this way, the work itself does not know its worker)."""
    token = _CURRENT_ABORT.set(abort)
    try:
        yield
    finally:
        _CURRENT_ABORT.reset(token)


def current_abort() -> Abort | None:
    """The abort set by the enclosing :func:`abortable` block, if any."""
    return _CURRENT_ABORT.get()


@dataclass(frozen=True)
class HttpSettings:
    """Limits and the SSRF allow-list, set by the worker's administrator."""

    network: NetworkPolicy = field(default_factory=NetworkPolicy)
    max_request_bytes: int = 10 * 1024 * 1024
    max_response_bytes: int = 10 * 1024 * 1024
    max_timeout_seconds: float = 300.0
    user_agent: str = "dfc-worker"
    resolver: Resolver = system_resolver
    verify_tls: bool = True


@dataclass(frozen=True)
class HttpRequest:
    """A request ready to send (references substituted, headers checked)."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    timeout_seconds: float


def idempotency_key(instance_id: str, node_id: str, generation: int | str = 0) -> str:
    """The ``Idempotency-Key`` of one step activation: the same for each of its attempts.

    ``generation`` distinguishes activations of the same node (loop iterations); a retry of the
    same activation must pass the same value.
    """
    digest = hashlib.sha256(f"dfc\x00{instance_id}\x00{node_id}\x00{generation}".encode())
    return f"dfc-{instance_id}-{digest.hexdigest()[:24]}"


# --- building requests -----------------------------------------------------------------------


def build_request(spec: Mapping[str, Any], variables: Mapping[str, str],
                  results: Mapping[str, JSON], key: str | None = None) -> HttpRequest:
    """The request of an ``http`` plan node (raises :class:`HttpFailure`, never retryable)."""
    method = str(spec.get("method") or "POST").upper()
    if method not in METHODS:
        raise HttpFailure(f"Invalid HTTP method: {method}. Must be GET, POST, PUT, DELETE, or PATCH",
                          retryable=False)
    try:
        url = _url(spec["url"], variables, results)
        headers = _headers(spec.get("headers"), variables, results)
        body: bytes | None = None
        raw = spec.get("body")
        if raw is not None:
            content_type = headers.get("content-type")
            if content_type is None and raw.lstrip()[:1] in ("{", "["):
                content_type = headers["content-type"] = "application/json"
            if content_type is not None and _is_json_type(content_type):
                text = substitute_json(raw, variables, results)
            else:
                text = substitute_text(substitute_vars(raw, variables), results)
            body = text.encode()
    except SubstitutionError as exc:
        raise HttpFailure(str(exc), retryable=False) from exc
    return _finish(method, url, headers, body, spec, key)


def build_multipart(spec: Mapping[str, Any], variables: Mapping[str, str],
                    results: Mapping[str, JSON], key: str | None = None) -> HttpRequest:
    """The request of an ``http_multipart`` plan node (multipart/form-data)."""
    method = str(spec.get("method") or "POST").upper()
    if method not in MULTIPART_METHODS:
        raise HttpFailure(f"Invalid HTTP method: {method}. Must be POST, PUT, or PATCH",
                          retryable=False)
    parts = spec.get("parts")
    if not isinstance(parts, list) or not parts:
        raise HttpFailure("parts is required and must be a non-empty JSON array", retryable=False)
    try:
        url = _url(spec["url"], variables, results)
        headers = {k: v for k, v in _headers(spec.get("headers"), variables, results).items()
                   if k != "content-type"}
        boundary = "dfc-" + secrets.token_hex(16)
        chunks: list[bytes] = []
        for index, part in enumerate(parts):
            chunks.append(_part(part, index, boundary, variables, results))
        chunks.append(f"--{boundary}--\r\n".encode())
    except SubstitutionError as exc:
        raise HttpFailure(str(exc), retryable=False) from exc
    headers["content-type"] = f"multipart/form-data; boundary={boundary}"
    return _finish(method, url, headers, b"".join(chunks), spec, key)


def _finish(method: str, url: str, headers: dict[str, str], body: bytes | None,
            spec: Mapping[str, Any], key: str | None) -> HttpRequest:
    if key is not None and "idempotency-key" not in headers:
        headers["idempotency-key"] = key
    timeout = float(spec.get("timeout_seconds") or 30)
    if timeout <= 0:
        raise HttpFailure("Timeout must be positive", retryable=False)
    return HttpRequest(method, url, headers, body, timeout)


def _url(raw: str, variables: Mapping[str, str], results: Mapping[str, JSON]) -> str:
    url = substitute_text(substitute_vars(raw, variables), results).strip()
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in ("http", "https"):
        shown = scheme or url[:40]
        raise HttpFailure(
            f"Blocked: unsupported URL scheme '{shown}'. Only http and https are allowed.",
            retryable=False,
        )
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise HttpFailure(f"Invalid URL {url}: {exc}", retryable=False) from exc
    if not parsed.host:
        raise HttpFailure(f"Blocked: the URL has no host: {url}", retryable=False)
    return url


def _headers(raw: Any, variables: Mapping[str, str],
             results: Mapping[str, JSON]) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise HttpFailure("headers must be a JSON object of names to string values",
                          retryable=False)
    headers: dict[str, str] = {}
    for name, value in raw.items():
        if not name or not set(name) <= _TOKEN_CHARS:
            raise HttpFailure(f"invalid HTTP header name {name!r}", retryable=False)
        if not isinstance(value, str):
            raise HttpFailure(f"header {name!r}: the value must be a string, not {dumps(value)}",
                              retryable=False)
        text = substitute_text(substitute_vars(value, variables), results)
        if any(char in text for char in "\r\n\0"):
            raise HttpFailure(f"header {name!r}: the value contains a line break or NUL",
                              retryable=False)
        lowered = name.lower()
        if lowered not in NOT_FORWARDED:
            headers[lowered] = text
    return headers


def _part(part: Any, index: int, boundary: str, variables: Mapping[str, str],
          results: Mapping[str, JSON]) -> bytes:
    if not isinstance(part, dict) or not isinstance(part.get("name"), str) \
            or not isinstance(part.get("data_b64"), str):
        raise HttpFailure(f"part {index + 1}: needs string 'name' and 'data_b64' fields",
                          retryable=False)

    def sub(text: str) -> str:
        return substitute_text(substitute_vars(text, variables), results)

    name = sub(part["name"])
    data_text = part["data_b64"]
    stripped = data_text.strip()
    if ("$" in stripped or "{" in stripped) and not _single_reference(stripped):
        raise HttpFailure(
            f"data_b64 for part '{name}' mixes a variable reference with other text; "
            "use a single $name or {var} reference", retryable=False)
    try:
        data = base64.b64decode(sub(stripped), validate=True)
    except ValueError as exc:
        raise HttpFailure(f"data_b64 for part '{name}' is not valid base64", retryable=False) \
            from exc
    disposition = f'form-data; name="{_quoted(name)}"'
    filename = part.get("filename")
    if isinstance(filename, str):
        disposition += f'; filename="{_quoted(sub(filename))}"'
    content_type = part.get("content_type")
    head = f"--{boundary}\r\ncontent-disposition: {disposition}\r\n"
    if isinstance(content_type, str):
        if any(char in content_type for char in "\r\n"):
            raise HttpFailure(f"part '{name}': content_type contains a line break",
                              retryable=False)
        head += f"content-type: {content_type}\r\n"
    return head.encode() + b"\r\n" + data + b"\r\n"


def _single_reference(text: str) -> bool:
    return _SINGLE_REFERENCE.fullmatch(text) is not None


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def _is_json_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


# --- JSON-safe substitution ------------------------------------------------------------------


def substitute_json(text: str, variables: Mapping[str, str], results: Mapping[str, JSON]) -> str:
    """Substitute ``{var}`` then ``$name`` into JSON text without changing its structure."""
    return _json_pass(_json_pass(text, variables, None), {}, results)


def _json_pass(text: str, variables: Mapping[str, str],
               results: Mapping[str, JSON] | None) -> str:
    refs = bound_refs(text, results) if results is not None else {}
    out: list[str] = []
    in_string = False
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if in_string and char == "\\":
            out.append(text[i : i + 2])
            i += 2
            continue
        if char == '"':
            in_string = not in_string
            out.append(char)
            i += 1
            continue
        if results is None and char == "{":
            end = text.find("}", i + 1)
            name = text[i + 1 : end] if end > 0 else ""
            if name.isidentifier() and name in variables:
                out.append(_json_text(variables[name], in_string, raw_text=True))
                i = end + 1
                continue
        if results is not None and char == "$":
            ref = refs.get(i)
            if ref is not None:
                value = json_value(ref, results[ref.name])
                out.append(_json_text(value, in_string, raw_text=False))
                i = ref.end
                continue
        out.append(char)
        i += 1
    return "".join(out)


def _json_text(value: JSON, in_string: bool, *, raw_text: bool) -> str:
    """``value`` written inside a JSON string (escaped text) or as a JSON value."""
    if in_string:
        return json.dumps(text_of(value), ensure_ascii=False)[1:-1]
    if raw_text:
        # a variable is text: keep it bare when it is a JSON scalar (numbers, true, null)
        try:
            parsed = json.loads(value)
        except ValueError:
            return json.dumps(value, ensure_ascii=False)
        return value.strip() if not isinstance(parsed, dict | list | str) else \
            json.dumps(value, ensure_ascii=False)
    return dumps(value)


# --- sending ---------------------------------------------------------------------------------


def send(request: HttpRequest, settings: HttpSettings,
         abort: Abort | None = None) -> dict[str, JSON]:
    """Send ``request`` and return the result envelope (raises :class:`HttpFailure`, or
    :class:`Aborted` once ``abort`` was aborted, whatever the request came to)."""
    if abort is None:
        return _exchange(request, settings, None)
    if abort.aborted:
        raise Aborted(f"{request.method} {request.url} not sent: aborted")
    try:
        envelope = _exchange(request, settings, abort)
    except Exception as exc:
        if abort.aborted:
            raise Aborted(f"{request.method} {request.url} aborted") from exc
        raise
    finally:
        abort.release()
    if abort.aborted:  # e.g. a body that ends with the connection, cut short by the shutdown
        raise Aborted(f"{request.method} {request.url} aborted")
    return envelope


def _exchange(request: HttpRequest, settings: HttpSettings,
              abort: Abort | None) -> dict[str, JSON]:
    try:
        url = httpx.URL(request.url)
    except httpx.InvalidURL as exc:
        raise HttpFailure(f"Invalid URL {request.url}: {exc}", retryable=False) from exc
    host = url.host
    port = url.port or (443 if url.scheme == "https" else 80)
    if not host:
        raise HttpFailure(f"Blocked: the URL has no host: {request.url}", retryable=False)
    if request.body is not None and len(request.body) > settings.max_request_bytes:
        raise HttpFailure(
            f"the request body is {len(request.body)} bytes, more than the limit of "
            f"{settings.max_request_bytes}", retryable=False)
    timeout = min(request.timeout_seconds, settings.max_timeout_seconds)
    started = time.monotonic()
    try:
        address = vet(host, port, settings.network, settings.resolver)
    except Refused as exc:
        raise HttpFailure(str(exc), retryable=False) from exc
    except OSError as exc:
        raise HttpFailure(f"HTTP connection failed: {request.url} - cannot resolve {host}: "
                          f"{exc}", retryable=True) from exc
    headers = {"user-agent": settings.user_agent, "accept-encoding": "identity",
               **request.headers}
    headers["host"] = url.netloc.decode("ascii").rsplit("@", 1)[-1]
    pinned = url.copy_with(host=address)
    try:
        with httpx.Client(trust_env=False, follow_redirects=False, verify=settings.verify_tls,
                          timeout=httpx.Timeout(timeout)) as client:
            extensions: dict[str, Any] = {"sni_hostname": host}
            if abort is not None:
                extensions["trace"] = abort.trace
            outgoing = client.build_request(
                request.method, pinned, headers=headers, content=request.body,
                extensions=extensions,
            )
            response = client.send(outgoing, stream=True)
            try:
                body = _read(response, settings, started + timeout, request)
            finally:
                response.close()
    except httpx.TimeoutException as exc:
        raise HttpFailure(f"HTTP timeout after {_seconds(timeout)}s: {request.url}",
                          retryable=True) from exc
    except (httpx.TransportError, OSError) as exc:
        raise HttpFailure(f"HTTP connection failed: {request.url} - {exc or type(exc).__name__}",
                          retryable=True) from exc
    duration_ms = int((time.monotonic() - started) * 1000)
    status = response.status_code
    if status >= 500:
        snippet = body[:ERROR_BODY_BYTES].decode("utf-8", "replace")
        more = "…" if len(body) > ERROR_BODY_BYTES else ""
        raise HttpFailure(f"HTTP {request.method} {request.url} returned {status}: {snippet}{more}",
                          retryable=True)
    text, encoding = decode_body(body, response.headers.get("content-type"))
    return {
        "status": status,
        "body": text,
        "encoding": encoding,
        "headers": _response_headers(response),
        "ok": 200 <= status < 300,
        "duration_ms": duration_ms,
    }


def _read(response: httpx.Response, settings: HttpSettings, deadline: float,
          request: HttpRequest) -> bytes:
    limit = settings.max_response_bytes
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HttpFailure(f"HTTP response from {request.url} is {declared} bytes, more than the "
                          f"limit of {limit}", retryable=False)
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_raw():
        size += len(chunk)
        if size > limit:
            raise HttpFailure(f"HTTP response from {request.url} is larger than the limit of "
                              f"{limit} bytes", retryable=False)
        chunks.append(chunk)
        if time.monotonic() > deadline:
            raise httpx.ReadTimeout("the response took too long")
    return b"".join(chunks)


def _seconds(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


def _response_headers(response: httpx.Response) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in response.headers.raw:
        try:
            name = raw_name.decode("ascii").lower()
            value = raw_value.decode("utf-8")
        except UnicodeDecodeError:
            continue  # as pg_durable: values that are not UTF-8 are dropped
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def decode_body(body: bytes, content_type: str | None) -> tuple[str, str]:
    """The body as text (``"text"``) or base64 (``"base64"``), by pg_durable's rules."""
    if content_type is not None and is_text_type(content_type):
        return body.decode(_charset(content_type), "replace"), "text"
    if b"\0" not in body:
        try:
            return body.decode("utf-8"), "text"
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), "base64"


def is_text_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return (media.startswith("text/") or media in _TEXT_TYPES
            or media.endswith(("+json", "+xml", "+yaml")))


def _charset(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            name = value.strip().strip('"')
            try:
                return codecs.lookup(name).name
            except LookupError:
                break
    return "utf-8"
