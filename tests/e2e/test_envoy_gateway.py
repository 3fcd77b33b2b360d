"""A real Envoy in front of a model server, asking a real engine on every call.

Everything goes through plain HTTP to Envoy's listener; the model server
counts what reaches it, so "never reached the model" is checked, not assumed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway_harness import (
    FREE_PER_MINUTE,
    GATEWAY_RULES,
    ROOT,
    EngineProc,
    EnvoyOptions,
    EnvoyProc,
    Stack,
    Upstream,
    chat,
    start_upstream,
)

POLICY = (
    """\
policy "gateway-e2e" {
  owner "tests"
}

"""
    + GATEWAY_RULES
    + """\
# Proves which address the engine saw when the caller does not forward one.
rule loopback_probe {
  deny when account.id == "ip-probe" and client.ip == "127.0.0.1"
  reason "seen from loopback"
}

# A probe that reads the budget without spending it: a denied request consumes nothing.
rule budget_probe {
  deny when request.model == "probe"
  reason "probe"
}

"""
    + FREE_PER_MINUTE
    + """# The estimate is the prompt alone; the real cost (prompt + completion) arrives
# after the call, through Envoy's access log.
limit daily_tokens {
  key account.id
  sum request.prompt_tokens ?? 0
  usage (usage.prompt_tokens ?? 0) + (usage.completion_tokens ?? 0)
  window 1d
  max 1000
  when account.tier == "budget"
  throttle
  reason "daily token budget exhausted"
}
"""
)

# What the usage reports said of the token classes and the serving model, in one number.
CLASSES = """
limit classes {
  key account.id
  sum 0
  usage (usage.cached_input_tokens ?? 0) * 1000000 + (usage.reasoning_tokens ?? 0) * 1000
    + (if usage.model == "served-model" then 1 else 0)
  window 1d
  max 1000000000000
  when account.tier == "classes"
  reason "never reached"
}
"""

WAIT = 10.0  # seconds a usage report may take to arrive (access-log flush is 50 ms)


@pytest.fixture(scope="module")
def engine(module_stack: Stack) -> EngineProc:
    return module_stack.engine(POLICY + CLASSES)


@pytest.fixture(scope="module")
def gateway(module_stack: Stack, engine: EngineProc, upstream: Upstream) -> EnvoyProc:
    return module_stack.envoy(engine, upstream)


def ident(account: str, **extra: str) -> dict[str, str]:
    return {"x-account-id": account, "x-account-tier": "pro", **extra}


# --- allow, deny, throttle ------------------------------------------------------------------


def test_allowed_call_reaches_the_model(gateway: EnvoyProc, upstream: Upstream) -> None:
    before = upstream.requests
    r = chat(gateway.port, ident("acct-allow"), max_tokens=7)
    assert r.status == 200, r.body
    assert r.json()["usage"]["completion_tokens"] == 7
    assert upstream.requests == before + 1
    seen = upstream.last_headers()
    assert seen["x-account-id"] == "acct-allow"
    assert seen["x-request-id"] == r.headers["x-request-id"]  # the id usage is reconciled on
    assert "x-policy-flags" not in seen
    assert "x-envoy-auth-failure-mode-allowed" not in seen


def test_denied_call_gets_403_with_the_reason_and_never_reaches_the_model(
    gateway: EnvoyProc, upstream: Upstream
) -> None:
    before = upstream.requests
    r = chat(gateway.port, ident("acct-deny"), model="forbidden-model")
    assert r.status == 403
    assert r.json() == {
        "error": {"type": "permission_denied", "reason": "model not offered", "rule": "forbidden_model"}
    }
    assert upstream.requests == before


def test_throttled_call_gets_429_with_retry_after(gateway: EnvoyProc, upstream: Upstream) -> None:
    free = {"x-account-id": "acct-free", "x-account-tier": "free"}
    first, second = chat(gateway.port, free), chat(gateway.port, free)
    assert (first.status, second.status) == (200, 200)
    # Admitted calls carry the limit's state back to the caller.
    assert (first.headers["x-ratelimit-limit"], first.headers["x-ratelimit-remaining"]) == ("2", "1")
    before = upstream.requests
    r = chat(gateway.port, free)
    assert r.status == 429
    assert r.json()["error"] == {
        "type": "rate_limit_exceeded",
        "reason": "free tier: 2 requests per minute",
        "rule": "free_per_minute",
    }
    # A sliding window: the oldest counted call leaves it within two window lengths.
    assert 0 < int(r.headers["retry-after"]) <= 120
    assert r.headers["x-ratelimit-limit"] == "2" and r.headers["x-ratelimit-remaining"] == "0"
    assert upstream.requests == before
    # The limit is per account: another free account still gets through.
    assert chat(gateway.port, {"x-account-id": "acct-free-2", "x-account-tier": "free"}).status == 200


# --- identity from headers ---------------------------------------------------------------------


def test_identity_from_headers(gateway: EnvoyProc, upstream: Upstream) -> None:
    before = upstream.requests
    r = chat(gateway.port, ident("acct-org", **{"x-org-id": "org-blocked"}))
    assert r.status == 403 and r.json()["error"]["reason"] == "organisation suspended"
    assert upstream.requests == before
    assert chat(gateway.port, ident("acct-org", **{"x-org-id": "org-fine"})).status == 200


# --- client IP ---------------------------------------------------------------------------------


def test_client_ip_from_the_connection(gateway: EnvoyProc) -> None:
    # No forwarding header: the engine sees the TCP peer of Envoy's listener.
    r = chat(gateway.port, ident("ip-probe"))
    assert r.status == 403 and r.json()["error"]["reason"] == "seen from loopback"


def test_untrusted_x_forwarded_for_is_ignored(gateway: EnvoyProc) -> None:
    # xff_num_trusted_hops 0: a caller cannot pretend to come from elsewhere.
    assert chat(gateway.port, ident("acct-xff", **{"x-forwarded-for": "203.0.113.9"})).status == 200
    r = chat(gateway.port, ident("ip-probe", **{"x-forwarded-for": "198.51.100.7"}))
    assert r.json()["error"]["reason"] == "seen from loopback"


def test_client_ip_from_a_trusted_x_forwarded_for(module_stack: Stack, engine: EngineProc, upstream: Upstream) -> None:
    # Behind one trusted load balancer, the entry it appended is the client.
    behind_lb = module_stack.envoy(engine, upstream, EnvoyOptions(xff_trusted_hops=1))
    before = upstream.requests
    r = chat(behind_lb.port, ident("acct-lb", **{"x-forwarded-for": "203.0.113.9"}))
    assert r.status == 403 and r.json()["error"]["reason"] == "network blocked"
    assert upstream.requests == before
    # A spoofed entry further left is not trusted: only the last hop counts.
    assert chat(behind_lb.port, ident("acct-lb", **{"x-forwarded-for": "203.0.113.9, 198.51.100.7"})).status == 200


# --- token budget reconciled with the model's real usage ----------------------------------------


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


@pytest.fixture(scope="module")
def body_only_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    """A model server like most: usage only in the JSON body, no x-usage-* headers."""
    up = start_upstream(tmp_path_factory.mktemp("body-only"), "--no-usage-headers")
    try:
        yield up
    finally:
        up.proc.stop()


@pytest.mark.parametrize("usage_in", ["headers", "body"])
def test_token_budget_runs_out_after_the_real_usage_adds_up(
    request: pytest.FixtureRequest, module_stack: Stack, gateway: EnvoyProc, engine: EngineProc, usage_in: str
) -> None:
    if usage_in == "body":  # the reference config's Lua filter copies the body's usage into headers
        gateway = module_stack.envoy(engine, request.getfixturevalue("body_only_upstream"))
    account, prompt, max_tokens = f"acct-budget-{usage_in}", "Summarise the history of tea", 300
    headers = {"x-account-id": account, "x-account-tier": "budget"}
    real_total = 0
    admitted = 0
    last: Any = None
    for _ in range(20):  # bounded: the budget of 1000 tokens lasts 4 calls of ~307
        before_call = real_total
        last = chat(gateway.port, headers, prompt=prompt, max_tokens=max_tokens)
        if last.status != 200:
            break
        admitted += 1
        usage = last.json()["usage"]
        assert usage["completion_tokens"] == max_tokens
        assert last.headers["x-usage-completion-tokens"] == str(max_tokens)
        real_total += usage["total_tokens"]
        # The counter holds the model's real usage, not the prompt-only estimate.
        assert _wait_used(engine, account, real_total) == real_total, f"after call {admitted}"
        assert before_call + usage["prompt_tokens"] <= 1000  # it was admitted because it fitted
    assert last is not None and last.status == 429, last.body if last else None
    assert last.json()["error"]["reason"] == "daily token budget exhausted"
    assert int(last.headers["retry-after"]) > 0
    # Refused only once the real usage passed the budget; the estimates alone (a few
    # tokens each) would have let every one of the 20 calls through.
    assert admitted == 4 and real_total > 1000
    assert _budget_used(engine, account) == real_total  # the refused call spent nothing


@pytest.mark.parametrize("usage_in", ["headers", "body"])
def test_token_classes_and_the_serving_model_reach_the_engine(
    request: pytest.FixtureRequest, module_stack: Stack, gateway: EnvoyProc, engine: EngineProc, usage_in: str
) -> None:
    if usage_in == "body":  # the Lua filter copies the *_details and the model into headers
        gateway = module_stack.envoy(engine, request.getfixturevalue("body_only_upstream"))
    account = f"acct-classes-{usage_in}"
    r = chat(gateway.port, {"x-account-id": account, "x-account-tier": "classes"}, model="served-model", max_tokens=40)
    assert r.status == 200, r.body
    usage = r.json()["usage"]
    cached, reasoning = (
        usage["prompt_tokens_details"]["cached_tokens"],
        usage["completion_tokens_details"]["reasoning_tokens"],
    )
    assert cached > 0 and reasoning == 10
    want = cached * 1_000_000 + reasoning * 1000 + 1
    deadline, used = time.monotonic() + WAIT, 0.0
    while used != want and time.monotonic() < deadline:
        with engine.client() as pe:
            check = pe.check({"account": {"id": account, "tier": "classes"}, "request": {"model": "probe"}})
        used = next(lim.used for lim in check.limits if lim.limit_id == "classes")
        time.sleep(0.05)
    assert used == want


# --- identity from a JWT ------------------------------------------------------------------------


def _rsa_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwks(key: Any, kid: str) -> dict[str, Any]:
    from jwt.algorithms import RSAAlgorithm

    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    return {"keys": [{**jwk, "kid": kid, "alg": "RS256", "use": "sig"}]}


def _token(key: Any, kid: str, **claims: Any) -> str:
    import jwt

    now = int(time.time())
    body = {"iss": "https://issuer.test", "aud": "model-api", "iat": now, "exp": now + 300, **claims}
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": kid})


def test_identity_from_a_jwt(stack: Stack, upstream: Upstream, tmp_path: Path) -> None:
    key, other = _rsa_key(), _rsa_key()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(_jwks(key, "k1")))
    engine = stack.engine(
        POLICY,
        {"identity": "jwt", "jwt": {"jwks_file": str(jwks), "issuer": "https://issuer.test", "audience": "model-api"}},
    )
    gw = stack.envoy(engine, upstream)
    bearer = lambda token: {"authorization": f"Bearer {token}"}  # noqa: E731

    before = upstream.requests
    ok = chat(gw.port, bearer(_token(key, "k1", sub="acct-jwt", org="org-fine", tier="pro")))
    assert ok.status == 200, ok.body
    assert upstream.last_headers()["authorization"].startswith("Bearer ")

    # Claims are the identity: the org claim is what the rule sees ...
    r = chat(gw.port, bearer(_token(key, "k1", sub="acct-jwt", org="org-blocked")))
    assert r.status == 403 and r.json()["error"]["reason"] == "organisation suspended"
    # ... and identity headers are ignored, so a caller cannot override them.
    r = chat(gw.port, {**bearer(_token(key, "k1", sub="acct-jwt", org="org-blocked")), "x-org-id": "org-fine"})
    assert r.status == 403

    # No token, a token signed by another key, an expired token: 401.
    for headers in (
        {},
        bearer(_token(other, "k1", sub="acct-jwt")),
        bearer(_token(key, "k1", sub="acct-jwt", exp=int(time.time()) - 3600)),
    ):
        r = chat(gw.port, headers)
        assert r.status == 401, (headers, r.body)
        assert r.json()["error"]["type"] == "unauthenticated"
        assert "www-authenticate" in r.headers
    assert upstream.requests == before + 1


# --- the engine stops mid-run -----------------------------------------------------------------


def test_engine_stopped_mid_run_gives_the_configured_failure_mode(stack: Stack, upstream: Upstream) -> None:
    engine = stack.engine(POLICY)
    closed = stack.envoy(engine, upstream, EnvoyOptions(failure_mode_allow=False))
    open_ = stack.envoy(engine, upstream, EnvoyOptions(failure_mode_allow=True))
    assert chat(closed.port, ident("acct-fm")).status == 200
    assert chat(open_.port, ident("acct-fm")).status == 200
    assert chat(open_.port, ident("acct-fm"), model="forbidden-model").status == 403

    engine.proc.stop()
    before = upstream.requests
    # Fail closed: 503 (status_on_error), and the model is not called.
    r = chat(closed.port, ident("acct-fm"))
    assert r.status == 503
    assert upstream.requests == before
    # Fail open: the call goes through, and the model server is told it was not checked.
    r = chat(open_.port, ident("acct-fm"), model="forbidden-model")
    assert r.status == 200
    assert upstream.requests == before + 1
    assert upstream.last_headers()["x-envoy-auth-failure-mode-allowed"] == "true"
    assert (
        closed.stat("http.model_api.ext_authz.error") + closed.stat("http.model_api.ext_authz.failure_mode_allowed")
        >= 1
    )


# --- the shipped policy set -----------------------------------------------------------------------


def test_shipped_policies_through_envoy(stack: Stack, upstream: Upstream) -> None:
    engine = stack.engine(ROOT / "policies")
    gw = stack.envoy(engine, upstream)
    who = {
        "x-account-id": "acct-ship",
        "x-api-key-id": "key-ship",
        "x-api-key-scopes": "inference",
        "x-account-tier": "pro",
        "x-account-age-days": "400",
        "x-account-verification": "kyc",
    }
    before = upstream.requests
    r = chat(gw.port, {})
    assert r.status == 401 and r.json()["error"]["rule"] == "missing_identity"
    r = chat(gw.port, {**who, "x-api-key-scopes": "billing"})
    assert r.status == 403 and r.json()["error"]["rule"] == "key_scope"
    assert upstream.requests == before
    r = chat(gw.port, who, prompt="What is a good name for a cat?")
    assert r.status == 200, r.body
    assert upstream.requests == before + 1
