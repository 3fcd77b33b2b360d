"""Real nginx, Caddy and Traefik in front of a model server, asking a real engine over HTTP forward-auth.

Every proxy runs its reference configuration from deploy/ and is driven with
plain HTTP; the model server counts what reaches it, so "never reached the
model" is checked, not assumed. One engine serves all three (its HTTP port and
the three usage logs), as one engine would serve a fleet of proxies.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway_harness import FREE_PER_MINUTE, GATEWAY_RULES, EngineProc, Stack, Upstream, chat, http_request
from proxy_harness import PROXIES, ProxyProc, start_proxy

POLICY = (
    """\
policy "proxy-e2e" {
  owner "tests"
}

"""
    + GATEWAY_RULES
    + """\
# Proves which address the engine saw.
rule loopback_probe {
  deny when account.id == "ip-probe" and client.ip == "127.0.0.1"
  reason "seen from loopback"
}

rule embargo_probe {
  deny when account.id == "embargoed"
  reason "service not available in this region"
  status 451
}

rule watched {
  flag when "watch" in account.labels
  reason "account under watch"
}

# A probe that reads the budget without spending it: a denied request consumes nothing.
rule budget_probe {
  deny when request.model == "probe"
  reason "probe"
}

"""
    + FREE_PER_MINUTE
    + """# No estimate at check time (nginx's check never sees the body): the budget
# holds only what the model reported, through the proxy's access log.
limit daily_tokens {
  key account.id
  sum 0
  usage (usage.prompt_tokens ?? 0) + (usage.completion_tokens ?? 0)
  window 1d
  max 1000
  when account.tier == "budget"
  throttle
  reason "daily token budget exhausted"
}
"""
)

WAIT = 10.0  # seconds a usage line may take to be written, read and reported


@pytest.fixture(scope="module")
def usage_logs(module_stack: Stack) -> dict[str, Path]:
    return {name: module_stack.folder / f"{name}-usage.jsonl" for name in PROXIES}


@pytest.fixture(scope="module")
def engine(module_stack: Stack, usage_logs: dict[str, Path]) -> EngineProc:
    return module_stack.engine(
        POLICY, extra={"http_port": 0, "usage_logs": [str(p) for p in usage_logs.values()], "usage_log_poll_ms": 20}
    )


@pytest.fixture(scope="module", params=PROXIES)
def proxy(
    request: pytest.FixtureRequest,
    module_stack: Stack,
    engine: EngineProc,
    upstream: Upstream,
    usage_logs: dict[str, Path],
) -> ProxyProc:
    return start_proxy(module_stack, request.param, engine, upstream, usage_logs[request.param])


def ident(account: str, **extra: str) -> dict[str, str]:
    return {"x-account-id": account, "x-account-tier": "pro", **extra}


# --- allow, deny, throttle ------------------------------------------------------------------


def test_allowed_call_reaches_the_model_with_the_engines_request_id(proxy: ProxyProc, upstream: Upstream) -> None:
    before = upstream.requests
    # A caller cannot pick the request id usage is reconciled on, nor forge flags.
    r = chat(
        proxy.port,
        ident(f"acct-allow-{proxy.name}", **{"x-request-id": "mine", "x-policy-flags": "forged"}),
        max_tokens=7,
    )
    assert r.status == 200, r.body
    assert r.json()["usage"]["completion_tokens"] == 7
    assert upstream.requests == before + 1
    seen = upstream.last_headers()
    assert seen["x-account-id"] == f"acct-allow-{proxy.name}"
    assert seen["x-request-id"].startswith("pe-"), seen
    assert "x-policy-flags" not in seen


def test_denied_call_gets_403_with_the_reason_and_never_reaches_the_model(proxy: ProxyProc, upstream: Upstream) -> None:
    before = upstream.requests
    r = chat(proxy.port, ident("acct-deny", **{"x-org-id": "org-blocked"}))
    assert r.status == 403
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {
        "error": {"type": "permission_denied", "reason": "organisation suspended", "rule": "blocked_org"}
    }
    assert upstream.requests == before


def test_a_rules_own_status_reaches_the_caller(proxy: ProxyProc, upstream: Upstream) -> None:
    before = upstream.requests
    r = chat(proxy.port, ident("embargoed"))
    assert r.status == 451
    assert r.json()["error"]["reason"] == "service not available in this region"
    assert upstream.requests == before


def test_throttled_call_gets_429_with_retry_after(proxy: ProxyProc, upstream: Upstream) -> None:
    # nginx's auth_request takes only 2xx/401/403: the engine answers 403 with the real
    # status in x-policy-status, and the reference config turns it back into 429.
    free = {"x-account-id": f"acct-free-{proxy.name}", "x-account-tier": "free"}
    first, second = chat(proxy.port, free), chat(proxy.port, free)
    assert (first.status, second.status) == (200, 200)
    if proxy.name != "traefik":  # Traefik copies a check's headers to the upstream only
        assert (first.headers["x-ratelimit-limit"], first.headers["x-ratelimit-remaining"]) == ("2", "1")
    before = upstream.requests
    r = chat(proxy.port, free)
    assert r.status == 429, r.body
    assert r.json()["error"] == {
        "type": "rate_limit_exceeded",
        "reason": "free tier: 2 requests per minute",
        "rule": "free_per_minute",
    }
    assert 0 < int(r.headers["retry-after"]) <= 120
    assert r.headers["x-ratelimit-limit"] == "2" and r.headers["x-ratelimit-remaining"] == "0"
    assert "x-policy-status" not in r.headers or proxy.name == "nginx"
    assert upstream.requests == before


# --- identity, flags, the body ---------------------------------------------------------------


def test_identity_from_headers_and_flags_to_the_upstream(proxy: ProxyProc, upstream: Upstream) -> None:
    assert chat(proxy.port, ident("acct-org", **{"x-org-id": "org-fine"})).status == 200
    r = chat(proxy.port, ident("acct-watched", **{"x-account-labels": "watch"}))
    assert r.status == 200
    assert upstream.last_headers()["x-policy-flags"] == "watched"
    assert "x-policy-flags" not in r.headers  # flags say which detections fired: never to the caller


@pytest.mark.parametrize("name", ["caddy", "traefik"])
def test_the_body_reaches_the_check(
    name: str, module_stack: Stack, engine: EngineProc, upstream: Upstream, usage_logs: dict[str, Path]
) -> None:
    # Caddy sends it base64 in x-policy-body, Traefik as the body (forwardBody).
    # nginx's auth_request cannot: its check runs before nginx reads the body.
    proxy = start_proxy(module_stack, name, engine, upstream, usage_logs[name])
    before = upstream.requests
    r = chat(proxy.port, ident("acct-body"), model="forbidden-model", prompt="é" * 3000)
    assert r.status == 403 and r.json()["error"]["rule"] == "forbidden_model"
    assert upstream.requests == before
    assert chat(proxy.port, ident("acct-body"), prompt="é" * 3000).status == 200
    assert upstream.requests == before + 1


# --- client IP -------------------------------------------------------------------------------


def test_client_ip_only_from_trusted_hops(proxy: ProxyProc) -> None:
    # The engine sees the proxy's peer; a caller's own X-Forwarded-For is not trusted.
    r = chat(proxy.port, ident("ip-probe"))
    assert r.status == 403 and r.json()["error"]["reason"] == "seen from loopback"
    r = chat(proxy.port, ident("ip-probe", **{"x-forwarded-for": "198.51.100.7"}))
    assert r.status == 403 and r.json()["error"]["reason"] == "seen from loopback"
    assert chat(proxy.port, ident("acct-xff", **{"x-forwarded-for": "203.0.113.9"})).status == 200


# --- a token budget from the usage the proxy logs --------------------------------------------


def _budget_used(engine: EngineProc, account: str) -> float:
    """The budget's counter, read with a request a rule denies (which spends nothing)."""
    with engine.client() as pe:
        r = pe.check({"account": {"id": account, "tier": "budget"}, "request": {"model": "probe"}})
    (state,) = [lim for lim in r.limits if lim.limit_id == "daily_tokens"]
    return state.used


def _wait_used(engine: EngineProc, account: str, expected: float) -> float:
    deadline = time.monotonic() + WAIT
    used = _budget_used(engine, account)
    while used != expected and time.monotonic() < deadline:
        time.sleep(0.05)
        used = _budget_used(engine, account)
    return used


def test_token_budget_runs_out_from_reported_usage(proxy: ProxyProc, engine: EngineProc) -> None:
    account = f"acct-budget-{proxy.name}"
    headers = {"x-account-id": account, "x-account-tier": "budget"}
    real_total, admitted = 0, 0
    last: Any = None
    for _ in range(20):  # bounded: 1000 tokens last 4 calls of ~307
        last = chat(proxy.port, headers, prompt="Summarise the history of tea", max_tokens=300)
        if last.status != 200:
            break
        admitted += 1
        real_total += last.json()["usage"]["total_tokens"]
        # The counter holds what the model reported, read from the proxy's access log.
        assert _wait_used(engine, account, real_total) == real_total, f"after call {admitted}"
    assert last is not None and last.status == 429, last.body
    assert last.json()["error"]["reason"] == "daily token budget exhausted"
    assert admitted == 4 and real_total > 1000
    lines = proxy.usage_log.read_text().splitlines()
    assert lines, "the proxy wrote no usage log"


# --- the engine down: fail closed -------------------------------------------------------------


@pytest.fixture
def lone_engine(stack: Stack) -> Iterator[EngineProc]:
    yield stack.engine(POLICY, extra={"http_port": 0})


@pytest.mark.parametrize("name", PROXIES)
def test_engine_down_fails_closed(name: str, stack: Stack, lone_engine: EngineProc, upstream: Upstream) -> None:
    proxy = start_proxy(stack, name, lone_engine, upstream)
    assert chat(proxy.port, ident("acct-down")).status == 200
    lone_engine.proc.stop()
    before = upstream.requests
    r = chat(proxy.port, ident("acct-down"))
    # What each proxy answers when its check fails (docs/gateways.md); the model is not called.
    assert r.status == {"nginx": 503, "caddy": 502, "traefik": 500}[name], (r.status, r.body)
    assert upstream.requests == before
    if name == "nginx":  # the reference config answers its own failed check with a JSON body
        assert r.json()["error"]["type"] == "policy_unavailable"


def test_engine_health_endpoint(engine: EngineProc) -> None:
    assert engine.http_port is not None
    r = http_request(engine.http_port, "GET", "/healthz")
    assert r.status == 200 and r.body == b"ok\n"


# --- the standard rate-limit headers a policy asks for ------------------------------------

STANDARD = """\
policy "standard-headers" {
  rate_limit_headers "x-ratelimit openai ietf"
}

limit rpm {
  key account.id
  count
  window 1m
  max 1
  throttle
  reason "one call a minute"
}

limit tpd {
  key account.id
  sum request.max_tokens ?? 0
  window 1d
  max 1000
  throttle
  reason "daily tokens"
}
"""

OPENAI_AND_IETF = (
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "ratelimit-policy",
    "ratelimit",
)


@pytest.mark.parametrize("name", PROXIES)
def test_openai_and_ietf_headers_reach_the_caller(name: str, stack: Stack, upstream: Upstream) -> None:
    engine = stack.engine(STANDARD, extra={"http_port": 0})
    proxy = start_proxy(stack, name, engine, upstream)
    ok = chat(proxy.port, {"x-account-id": "acct-std"}, max_tokens=16)
    assert ok.status == 200, ok.body
    if name != "traefik":  # Traefik copies a check's headers to the upstream only
        assert ok.headers["x-ratelimit-limit-requests"] == "1" and ok.headers["x-ratelimit-remaining-requests"] == "0"
        tokens = "x-ratelimit-remaining-tokens"
        # Caddy sees the body (16 tokens estimated); nginx's check never does (0).
        assert ok.headers[tokens] == ("1000" if name == "nginx" else "984")
        assert ok.headers["ratelimit-policy"].startswith('"rpm";q=1;w=60, "tpd";q=1000;w=86400')
    refused = chat(proxy.port, {"x-account-id": "acct-std"})
    assert refused.status == 429
    assert all(h in refused.headers for h in OPENAI_AND_IETF), refused.headers
    assert refused.headers["ratelimit"].startswith('"rpm";r=0;t=')
