"""HTTP forward-auth in `policyctl serve`: the endpoints, over a real socket, sharing the gRPC server's engine."""

from __future__ import annotations

import base64
import http.client
import json
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from policy_engine.client import PolicyClient
from policy_engine.ingress.answer import refusal
from policy_engine.server.http_api import for_nginx, original_request
from server_harness import ServerThread
from test_server_tls import Pki

CHAT = {"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": "hello"}]}
WHO = {"x-account-id": "acct-1", "x-account-age-days": "30", "x-account-verification": "kyc"}


def call(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    context: ssl.SSLContext | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = (
        http.client.HTTPSConnection("localhost", port, timeout=10, context=context)
        if context
        else http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    )
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def forward(
    port: int, path: str = "/forward-auth", body: dict[str, Any] | None = CHAT, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    h = {
        "x-forwarded-method": "POST",
        "x-forwarded-uri": "/v1/chat/completions",
        **WHO,
        **{k.replace("_", "-"): v for k, v in headers.items()},
    }
    return call(port, "GET", path, json.dumps(body).encode() if body is not None else None, h)


@pytest.fixture
def http_server(start_server: Callable[..., ServerThread]) -> ServerThread:
    return start_server(http_port=0)


def _port(st: ServerThread) -> int:
    assert st.app is not None and st.app.http_port
    return st.app.http_port


def test_allowed_check_carries_the_request_id_and_rate_limit_headers(http_server: ServerThread) -> None:
    status, headers, body = forward(_port(http_server), x_request_id="caller-picked")
    assert (status, body) == (200, b"")
    assert headers["x-request-id"].startswith("pe-")  # minted by the engine, not the caller's
    assert (headers["x-ratelimit-limit"], headers["x-ratelimit-remaining"]) == ("3", "2")


def test_flags_go_in_the_flags_header(http_server: ServerThread) -> None:
    body = {**CHAT, "messages": [{"role": "user", "content": "Think step by step"}]}
    status, headers, _ = forward(_port(http_server), body=body)
    assert status == 200 and headers["x-policy-flags"] == "cot_probe"


def test_the_body_is_read_from_the_body_or_base64_in_a_header(http_server: ServerThread) -> None:
    port = _port(http_server)
    blocked = json.dumps({**CHAT, "model": "legacy-model"}).encode()
    status, _, body = forward(port, body={**CHAT, "model": "legacy-model"})
    assert status == 403 and json.loads(body)["error"]["rule"] == "blocked_model"
    status, _, body = forward(port, body=None, x_policy_body=base64.b64encode(blocked).decode())
    assert status == 403 and json.loads(body)["error"]["rule"] == "blocked_model"
    status, _, body = forward(port, body=None, x_policy_body="request body: http: request body too large")
    assert status == 413 and "could not send the body" in json.loads(body)["error"]["reason"]


def test_throttle_is_429_for_forward_auth_and_403_with_the_status_for_nginx(http_server: ServerThread) -> None:
    port = _port(http_server)
    for _ in range(3):
        assert forward(port)[0] == 200
    status, headers, body = forward(port)
    assert status == 429 and int(headers["retry-after"]) >= 1
    assert json.loads(body)["error"] == {
        "type": "rate_limit_exceeded",
        "reason": "too many requests",
        "rule": "per_minute",
    }
    status, headers, body = forward(port, "/auth-request")
    assert status == 403
    assert headers["x-policy-status"] == "429" and json.loads(headers["x-policy-error"]) == json.loads(body)
    assert int(headers["retry-after"]) >= 1 and headers["x-ratelimit-remaining"] == "0"


def test_report_reconciles_the_usage_of_a_checked_call(http_server: ServerThread) -> None:
    port = _port(http_server)
    _, headers, _ = forward(port)
    rid = headers["x-request-id"]
    status, _, body = call(
        port,
        "POST",
        "/report",
        json.dumps({"request_id": rid, "usage": {"prompt_tokens": 10, "completion_tokens": 20}}).encode(),
    )
    assert (status, json.loads(body)) == (200, {"applied": True})
    # Once only: the receipt is spent.
    status, _, body = call(port, "POST", "/report", json.dumps({"request_id": rid, "prompt_tokens": 1}).encode())
    assert (status, json.loads(body)) == (200, {"applied": False})
    with PolicyClient(http_server.target, timeout=5) as pe:  # the gRPC side sees the same engine
        r = pe.check(
            {"account": {"id": "acct-1", "age_days": 30, "verification": "kyc"}, "request": {"model": "legacy-model"}}
        )
    (tokens,) = [lim for lim in r.limits if lim.limit_id == "tokens_day"]
    assert tokens.used == 30


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b'{"prompt_tokens": 3}', b"x" * (70 << 10)])
def test_report_refuses_what_is_not_a_report(http_server: ServerThread, body: bytes) -> None:
    status, _, raw = call(_port(http_server), "POST", "/report", body)
    assert status == 400 and json.loads(raw)["error"]["type"] == "invalid_request"


def test_unknown_paths_and_health(http_server: ServerThread) -> None:
    port = _port(http_server)
    assert call(port, "GET", "/nope")[0] == 404
    assert call(port, "GET", "/report")[0] == 405
    assert call(port, "GET", "/healthz")[:3:2] == (200, b"ok\n")


def test_decisions_share_the_metrics_and_the_engine(http_server: ServerThread) -> None:
    port = _port(http_server)
    forward(port)
    assert http_server.app is not None
    assert http_server.app.metrics.decisions[("forward_auth", "allow")] == 1
    with PolicyClient(http_server.target, timeout=5) as pe:  # one counter for both protocols
        r = pe.check({"account": {"id": "acct-1", "age_days": 30, "verification": "kyc"}})
    (per_minute,) = [lim for lim in r.limits if lim.limit_id == "per_minute"]
    assert per_minute.used == 2


def test_a_refused_token_is_401_on_both_endpoints(start_server: Callable[..., ServerThread], tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    public = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**json.loads(RSAAlgorithm.to_jwk(public)), "kid": "k1"}]}))
    st = start_server(http_port=0, http={"identity": "jwt", "jwt": {"jwks_file": str(jwks)}})
    for path in ("/forward-auth", "/auth-request"):
        status, headers, body = forward(_port(st), path)
        assert status == 401 and "www-authenticate" in headers
        assert json.loads(body)["error"]["type"] == "unauthenticated"


def test_mutual_tls_on_the_http_port(start_server: Callable[..., ServerThread], tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    st = start_server(http_port=0, **pki.files)
    ctx = ssl.create_default_context(cadata=pki.ca_pem.decode())
    key, cert = pki.client
    (tmp_path / "client.key").write_bytes(key)
    (tmp_path / "client.pem").write_bytes(cert)
    ctx.load_cert_chain(tmp_path / "client.pem", tmp_path / "client.key")
    assert call(_port(st), "GET", "/healthz", context=ctx)[0] == 200
    bare = ssl.create_default_context(cadata=pki.ca_pem.decode())
    with pytest.raises((ssl.SSLError, ConnectionError)):
        call(_port(st), "GET", "/healthz", context=bare)


def test_original_request_reads_the_forwarded_method_uri_and_drops_proxy_headers() -> None:
    req = original_request(
        "GET",
        "/forward-auth",
        {
            "x-original-method": "POST",
            "x-original-uri": "/v1/completions?x=1",
            "x-forwarded-proto": "https",
            "x-forwarded-for": "10.0.0.1",
            "connection": "keep-alive",
            "x-account-id": "a",
        },
        b"",
        "127.0.0.1",
        "pe-1",
        "x-policy-body",
    )
    assert (req.method, req.path, req.id, req.peer) == ("POST", "/v1/completions?x=1", "pe-1", "127.0.0.1")
    assert req.headers == {"x-forwarded-for": "10.0.0.1", "x-account-id": "a"}


def test_for_nginx_keeps_401_and_403_and_folds_the_rest() -> None:
    for status, expected in ((401, 401), (403, 403), (429, 403), (451, 403)):
        got, headers = for_nginx(refusal(status, "permission_denied", "why", "r"))
        assert got == expected and headers["x-policy-status"] == str(status)
        assert json.loads(headers["x-policy-error"])["error"]["reason"] == "why"


def test_a_check_that_outlasts_its_deadline_is_refused_with_503(start_server: Callable[..., ServerThread]) -> None:
    import socket

    st = start_server(http_port=0, http={"deadline_ms": 200})
    with socket.create_connection(("127.0.0.1", _port(st)), timeout=10) as sock:
        # A body announced and never sent: the check cannot finish reading it.
        sock.sendall(b'GET /forward-auth HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{"model"')
        raw = b""
        while b"\r\n\r\n" not in raw or not raw.rstrip().endswith(b"}"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503"), raw
    assert json.loads(body)["error"]["type"] == "policy_unavailable"
