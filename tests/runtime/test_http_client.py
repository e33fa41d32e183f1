"""HTTP steps' client against a real server on loopback (allow-listed for these tests)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from httpserver import TestServer

from runtime.backoff import DEFAULT_POLICY
from runtime.http_client import (
    HttpFailure,
    HttpRequest,
    HttpSettings,
    build_multipart,
    build_request,
    decode_body,
    idempotency_key,
    send,
    substitute_json,
)
from runtime.ssrf import NetworkPolicy, Refused, blocked_reason, vet

LOOPBACK = HttpSettings(network=NetworkPolicy.parse("127.0.0.0/8, ::1"))


@pytest.fixture(scope="module")
def server() -> Iterator[TestServer]:
    srv = TestServer().start()
    yield srv
    srv.stop()


def http(url: str, method: str = "GET", body: str | None = None,
         headers: dict[str, str] | None = None, timeout: int = 30) -> dict[str, Any]:
    return {"url": url, "method": method, "body": body, "headers": headers,
            "timeout_seconds": timeout}


def call(spec: dict[str, Any], settings: HttpSettings = LOOPBACK,
         variables: dict[str, str] | None = None, results: dict[str, Any] | None = None,
         key: str | None = "k-1") -> dict[str, Any]:
    return send(build_request(spec, variables or {}, results or {}, key), settings)


# --- envelopes -------------------------------------------------------------------------------


def test_json_envelope(server: TestServer) -> None:
    envelope = call(http(f"{server.base}/json"))
    assert list(envelope) == ["status", "body", "encoding", "headers", "ok", "duration_ms"]
    assert envelope["status"] == 200
    assert envelope["ok"] is True
    assert envelope["encoding"] == "text"
    assert json.loads(envelope["body"]) == {"hello": "world"}
    assert envelope["headers"]["content-type"] == "application/json"
    assert envelope["headers"]["x-test"] == "yes"
    assert all(name == name.lower() for name in envelope["headers"])
    assert isinstance(envelope["duration_ms"], int) and envelope["duration_ms"] >= 0


def test_binary_body_is_base64(server: TestServer) -> None:
    envelope = call(http(f"{server.base}/bytes"))
    assert envelope["encoding"] == "base64"
    assert base64.b64decode(envelope["body"]) == bytes([0, 255, 16, 128])


def test_untyped_utf8_is_text_and_charset_is_honoured(server: TestServer) -> None:
    assert call(http(f"{server.base}/utf8-untyped"))["body"] == "héllo"
    latin = call(http(f"{server.base}/latin1"))
    assert (latin["body"], latin["encoding"]) == ("café", "text")


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/vnd.api+json", b'{"a":1}', "text"),
        ("image/svg+xml", b"<svg/>", "text"),
        ("application/x-www-form-urlencoded", b"a=1", "text"),
        ("application/octet-stream", b"plain ascii", "text"),
        ("application/octet-stream", b"nul\x00inside", "base64"),
        (None, b"\xff\xfe", "base64"),
    ],
)
def test_encoding_rules(content_type: str | None, body: bytes, expected: str) -> None:
    assert decode_body(body, content_type)[1] == expected


def test_4xx_is_a_result(server: TestServer) -> None:
    envelope = call(http(f"{server.base}/status/404"))
    assert (envelope["status"], envelope["ok"], envelope["body"]) == (404, False, "status 404")


def test_redirects_are_not_followed(server: TestServer) -> None:
    envelope = call(http(f"{server.base}/redirect"))
    assert envelope["status"] == 302
    assert envelope["ok"] is False
    assert envelope["headers"]["location"] == "/echo"


def test_5xx_is_a_retryable_failure(server: TestServer) -> None:
    with pytest.raises(HttpFailure) as info:
        call(http(f"{server.base}/status/503"))
    assert info.value.retryable
    assert info.value.message == f"HTTP GET {server.base}/status/503 returned 503: status 503"


def test_timeout_is_a_retryable_failure(server: TestServer) -> None:
    with pytest.raises(HttpFailure) as info:
        call(http(f"{server.base}/delay/3", timeout=1))
    assert info.value.retryable
    assert info.value.message == f"HTTP timeout after 1s: {server.base}/delay/3"


def test_connection_refused_is_a_retryable_failure(server: TestServer) -> None:
    probe = TestServer()  # bind a port, then free it: nothing listens there any more
    port = probe.port
    probe.httpd.server_close()
    with pytest.raises(HttpFailure) as info:
        call(http(f"http://127.0.0.1:{port}/"))
    assert info.value.retryable
    assert info.value.message.startswith(f"HTTP connection failed: http://127.0.0.1:{port}/")


# --- requests --------------------------------------------------------------------------------


def test_request_headers_body_and_idempotency_key(server: TestServer) -> None:
    envelope = call(http(f"{server.base}/echo", "post", '{"n": 1}', {"X-Trace": "abc"}),
                    key="key-7")
    seen = json.loads(envelope["body"])
    assert seen["method"] == "POST"
    assert seen["body"] == '{"n": 1}'
    assert seen["headers"]["x-trace"] == "abc"
    assert seen["headers"]["content-type"] == "application/json"
    assert seen["headers"]["idempotency-key"] == "key-7"


def test_framing_headers_are_not_forwarded(server: TestServer) -> None:
    envelope = call(http(f"{server.base}/echo", "POST", "hello",
                         {"Host": "evil.example", "Content-Length": "999",
                          "Transfer-Encoding": "chunked", "Connection": "upgrade"}))
    seen = json.loads(envelope["body"])
    assert seen["headers"]["host"] == f"127.0.0.1:{server.port}"
    assert seen["headers"]["content-length"] == "5"
    assert "transfer-encoding" not in seen["headers"]
    assert seen["body"] == "hello"


def test_header_values_cannot_inject_lines() -> None:
    with pytest.raises(HttpFailure) as info:
        build_request(http("http://example.com/", headers={"X": "{v}"}), {"v": "a\r\nEvil: 1"},
                      {})
    assert not info.value.retryable
    assert "line break" in info.value.message


def test_substitution_in_url_headers_and_json_body(server: TestServer) -> None:
    results = {"user": {"rows": [{"name": 'Ann "the" \\ boss', "id": 7}], "row_count": 1}}
    spec = http(f"{server.base}/{{path}}?id=$user.id", "POST",
                '{"name": "$user.name", "id": $user.id, "who": {who}, "note": "{who}"}',
                {"Authorization": "Bearer {token}"})
    variables = {"path": "echo", "token": "s3cret", "who": 'x", "admin": true'}
    seen = json.loads(call(spec, variables=variables, results=results)["body"])
    assert seen["path"] == "/echo?id=7"
    assert seen["headers"]["authorization"] == "Bearer s3cret"
    assert json.loads(seen["body"]) == {
        "name": 'Ann "the" \\ boss', "id": 7, "who": 'x", "admin": true', "note": 'x", "admin": true',
    }


def test_json_substitution_of_whole_values() -> None:
    results = {
        "r": {"status": 200, "ok": True},
        "rows": {"rows": [{"a": 1}, {"a": 2}], "row_count": 2},
        "n": {"rows": [{"x": None}], "row_count": 1},
    }
    text = substitute_json('{"r": $r, "all": $rows.*, "x": $n.x?, "n": {num}, "t": {flag}}',
                           {"num": "12.5", "flag": "true"}, results)
    assert json.loads(text) == {"r": {"status": 200, "ok": True}, "all": [{"a": 1}, {"a": 2}],
                                "x": None, "n": 12.5, "t": True}


def test_unknown_references_stay_and_bad_scheme_is_refused() -> None:
    request = build_request(http("http://example.com/$nothing"), {}, {})
    assert request.url == "http://example.com/$nothing"
    with pytest.raises(HttpFailure) as info:
        build_request(http("ftp://example.com/"), {}, {})
    assert info.value.message == (
        "Blocked: unsupported URL scheme 'ftp'. Only http and https are allowed."
    )


@pytest.mark.parametrize("url, message", [
    ("http://[::1/x", "Invalid URL http://[::1/x: "),
    ("http:///path", "Blocked: the URL has no host: http:///path"),
])
def test_malformed_urls_fail_while_the_request_is_built(url: str, message: str) -> None:
    with pytest.raises(HttpFailure) as info:
        build_request(http(url), {}, {})
    assert info.value.message.startswith(message)
    assert not info.value.retryable


def test_multipart(server: TestServer) -> None:
    spec = {"url": f"{server.base}/echo", "method": "POST", "headers": None,
            "timeout_seconds": 30,
            "parts": [{"name": "meta", "data_b64": base64.b64encode(b'{"a":1}').decode(),
                       "content_type": "application/json"},
                      {"name": "file", "filename": "{fname}", "data_b64": "$blob"}]}
    results = {"blob": {"rows": [{"b64": base64.b64encode(b"\x00\x01bin").decode()}],
                        "row_count": 1}}
    request = build_multipart(spec, {"fname": "a.bin"}, results, "k")
    envelope = send(request, LOOPBACK)
    seen = json.loads(envelope["body"])
    content_type = seen["headers"]["content-type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    raw = server.requests[-1]["raw_body"]
    assert b'content-disposition: form-data; name="meta"' in raw
    assert b'name="file"; filename="a.bin"' in raw
    assert b"\x00\x01bin" in raw
    with pytest.raises(HttpFailure):
        build_multipart({**spec, "parts": [{"name": "x", "data_b64": "pre$blob"}]}, {}, results)


# --- limits ----------------------------------------------------------------------------------


def test_response_size_cap(server: TestServer) -> None:
    small = HttpSettings(network=LOOPBACK.network, max_response_bytes=1000)
    assert call(http(f"{server.base}/big/1000"), small)["body"] == "x" * 1000
    with pytest.raises(HttpFailure) as info:
        call(http(f"{server.base}/big/1001"), small)
    assert not info.value.retryable
    assert "limit of 1000" in info.value.message


def test_request_size_cap(server: TestServer) -> None:
    small = HttpSettings(network=LOOPBACK.network, max_request_bytes=10)
    with pytest.raises(HttpFailure) as info:
        call(http(f"{server.base}/echo", "POST", "x" * 11), small)
    assert not info.value.retryable


# --- retries with one idempotency key --------------------------------------------------------


def test_retries_reuse_the_idempotency_key(server: TestServer) -> None:
    key = idempotency_key("abcd1234", "n3", 0)
    assert key == idempotency_key("abcd1234", "n3", 0)
    assert key != idempotency_key("abcd1234", "n3", 1)
    assert key != idempotency_key("abcd1234", "n4", 0)
    spec = http(f"{server.base}/flaky/retry-key?fail=2")
    attempts = 0
    envelope: dict[str, Any] | None = None
    while envelope is None:
        attempts += 1
        try:
            envelope = call(spec, key=key)
        except HttpFailure as failure:
            assert failure.retryable
            assert DEFAULT_POLICY.allows_another(attempts)
    assert attempts == 3
    assert envelope["body"] == "done after 3"
    assert server.keys["retry-key"] == [key, key, key]


def test_own_idempotency_key_wins(server: TestServer) -> None:
    spec = http(f"{server.base}/flaky/own-key?fail=0", headers={"Idempotency-Key": "mine"})
    call(spec, key="generated")
    assert server.keys["own-key"] == ["mine"]


# --- SSRF guard ------------------------------------------------------------------------------


def test_loopback_is_refused_by_default(server: TestServer) -> None:
    before = len(server.requests)
    with pytest.raises(HttpFailure) as info:
        call(http(f"{server.base}/echo"), HttpSettings())
    assert not info.value.retryable
    assert info.value.message.startswith("Blocked: 127.0.0.1 is a loopback address")
    assert len(server.requests) == before  # nothing was sent


def test_hostname_resolving_to_loopback_is_refused(server: TestServer) -> None:
    with pytest.raises(HttpFailure) as info:
        call(http(f"http://localhost:{server.port}/echo"), HttpSettings())
    assert info.value.message.startswith("Blocked: localhost (")
    assert "loopback" in info.value.message


def test_connection_is_pinned_to_the_vetted_address(server: TestServer) -> None:
    resolutions: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        resolutions.append(host)
        return ["127.0.0.1"]

    settings = HttpSettings(network=LOOPBACK.network, resolver=resolver)
    seen = json.loads(call(http(f"http://api.invalid:{server.port}/echo"), settings)["body"])
    # the name exists only in our resolver: the request went to the address it vetted
    assert seen["headers"]["host"] == f"api.invalid:{server.port}"
    assert resolutions == ["api.invalid"]


def test_rebinding_name_with_one_private_address_is_refused() -> None:
    def resolver(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "10.0.0.5"]

    with pytest.raises(Refused) as info:
        vet("rebind.example", 80, NetworkPolicy(), resolver)
    assert "10.0.0.5" in str(info.value)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.1", "private"),
        ("172.16.5.4", "private"),
        ("169.254.169.254", "metadata"),
        ("169.254.1.1", "link-local"),
        ("100.100.100.200", "metadata"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fd00::1", "private"),
        ("fd00:ec2::254", "metadata"),
        ("::ffff:127.0.0.1", "loopback"),
        ("64:ff9b::a00:1", "private"),
        ("ff02::1", "multicast"),
        ("100.64.0.1", "not a public"),
    ],
)
def test_blocked_addresses(address: str, reason: str) -> None:
    import ipaddress

    found = blocked_reason(ipaddress.ip_address(address))
    assert found is not None and reason in found


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    import ipaddress

    assert blocked_reason(ipaddress.ip_address(address)) is None
    assert vet(address, 80, NetworkPolicy()) == address


def test_allow_list_parsing() -> None:
    policy = NetworkPolicy.parse(" 127.0.0.0/8, ::1 ,metadata.internal., ")
    assert len(policy.networks) == 2
    assert policy.hosts == frozenset({"metadata.internal"})
    assert vet("metadata.internal", 80, policy, lambda h, p: ["169.254.169.254"]) \
        == "169.254.169.254"
    with pytest.raises(ValueError):
        NetworkPolicy.parse("10.0.0.0/33")


def test_unresolvable_host_is_retryable() -> None:
    def resolver(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    settings = HttpSettings(resolver=resolver)
    with pytest.raises(HttpFailure) as info:
        send(HttpRequest("GET", "http://nowhere.invalid/", {}, None, 5), settings)
    assert info.value.retryable
