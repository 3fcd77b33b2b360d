"""One policy that reads a declared header and a declared numeric attribute, served by one
real engine and asked through every interface: our gRPC Check, Envoy's ext_authz (a real
Envoy), HTTP forward-auth (the engine's HTTP port, and nginx's auth_request in front) and
the ASGI middleware. Each request gets the same decision wherever it comes in."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from dsl.load import load
from gateway_harness import (
    ROOT,
    EngineProc,
    EnvoyOptions,
    EnvoyProc,
    Stack,
    Upstream,
    chat,
    http_request,
    write_policy,
)
from policy_engine.gateway.asgi import PolicyGateway
from proxy_harness import PROXIES, ProxyProc, start_proxy
from test_asgi_gateway import ModelApp, call

POLICY = """\
attribute account.risk_score: float {
  header "x-risk-score"
  envoy_metadata "fraud" "risk_score"
  asgi "state.risk_score"
}

attribute request.team: string {
  header "x-team"
  context_extension "team"
}

rule risky_account {
  deny when account.risk_score > 0.8
  reason "account under review"
}

rule red_team_watch {
  throttle when request.team == "red" and account.risk_score > 0.5
  reason "red team under watch"
  retry_after 30s
}
"""

# (risk score as the gateway sends it, team) -> (effect, HTTP status, reason)
CASES = [
    ("0.93", "blue", ("deny", 403, "account under review")),
    ("0.6", "red", ("throttle", 429, "red team under watch")),
    ("0.6", "blue", ("allow", 200, "")),
    ("high", "red", ("allow", 200, "")),  # not a number: null, so neither rule fires
]
IDS = [f"{risk}-{team}" for risk, team, _ in CASES]
WHO = {"x-account-id": "acct-attr", "x-account-tier": "pro"}


@pytest.fixture(scope="module")
def engine(module_stack: Stack) -> EngineProc:
    return module_stack.engine(POLICY, extra={"http_port": 0})


def assert_answer(status: int, body: bytes, expected: tuple[str, int, str]) -> None:
    """The caller got the expected status and, when refused, the rule's reason."""
    assert status == expected[1]
    if status != 200:
        assert json.loads(body)["error"]["reason"] == expected[2]


def test_the_policy_is_the_one_docs_gateways_md_shows() -> None:
    assert f"```policy\n{POLICY}```" in (ROOT / "docs" / "gateways.md").read_text()


def test_the_policy_lints_and_a_misspelt_attribute_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "main.policy").write_text(POLICY)
    assert not [d for d in load([tmp_path])[1] if d.is_error]
    (tmp_path / "main.policy").write_text(POLICY.replace("account.risk_score > 0.8", "account.risk_scor > 0.8"))
    [d] = [d for d in load([tmp_path])[1] if d.is_error]
    assert (d.code, d.hint) == ("E0202", "did you mean `account.risk_score`?")


@pytest.mark.parametrize("risk, team, expected", CASES, ids=IDS)
def test_grpc_check(engine: EngineProc, risk: str, team: str, expected: tuple[str, int, str]) -> None:
    ctx = {"account": {"id": "acct-attr"}, "attributes": {"account.risk_score": risk, "request.team": team}}
    with engine.client() as c:
        r = c.check(ctx)
    assert (r.effect, r.http_status, r.reason) == expected
    assert r.notes == (["attribute account.risk_score: ignored 'high': expected a number"] if risk == "high" else [])


def test_get_policy_lists_the_declarations(engine: EngineProc) -> None:
    with engine.client() as c:
        info = c.get_policy()
    by_path = {f.path: f for f in info.attributes}
    risk, team = by_path["account.risk_score"], by_path["request.team"]
    assert (str(risk.type), risk.header, risk.metadata, risk.asgi) == (
        "float",
        "x-risk-score",
        ("fraud", "risk_score"),
        "state.risk_score",
    )
    assert (str(team.type), team.header, team.context_extension) == ("string", "x-team", "team")


@pytest.mark.parametrize("risk, team, expected", CASES, ids=IDS)
def test_http_forward_auth(engine: EngineProc, risk: str, team: str, expected: tuple[str, int, str]) -> None:
    assert engine.http_port is not None
    headers = {"x-forwarded-method": "POST", "x-forwarded-uri": "/v1/chat/completions", **WHO}
    r = http_request(engine.http_port, "GET", "/forward-auth", None, {**headers, "x-risk-score": risk, "x-team": team})
    assert_answer(r.status, r.body, expected)


# --- Envoy ext_authz: headers, dynamic metadata and a per-route context extension -----------


def _envoy_sources(config: dict[str, Any]) -> None:
    """What a deployment adds to the reference config to feed the other two sources: a
    header_to_metadata filter that puts its fraud score into dynamic metadata (namespace
    `fraud`), ext_authz forwarding that namespace, and a route that sets `team` per route."""
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    filters = hcm["http_filters"]
    authz = next(f for f in filters if f["name"] == "envoy.filters.http.ext_authz")
    authz["typed_config"]["metadata_context_namespaces"] = ["fraud"]
    filters.insert(
        filters.index(authz),
        {
            "name": "envoy.filters.http.header_to_metadata",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.header_to_metadata.v3.Config",
                "request_rules": [
                    {
                        "header": "x-fraud-score",
                        "on_header_present": {"metadata_namespace": "fraud", "key": "risk_score", "type": "NUMBER"},
                        "remove": True,
                    }
                ],
            },
        },
    )
    host = hcm["route_config"]["virtual_hosts"][0]
    red = {
        "match": {"prefix": "/v1/", "headers": [{"name": "x-route", "string_match": {"exact": "red-pool"}}]},
        "route": dict(host["routes"][0]["route"]),
        "typed_per_filter_config": {
            "envoy.filters.http.ext_authz": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute",
                "check_settings": {"context_extensions": {"team": "red"}},
            }
        },
    }
    host["routes"].insert(0, red)


@pytest.fixture(scope="module")
def envoy(module_stack: Stack, engine: EngineProc, upstream: Upstream) -> EnvoyProc:
    return module_stack.envoy(engine, upstream, EnvoyOptions(patch=_envoy_sources))


@pytest.mark.parametrize("risk, team, expected", CASES, ids=IDS)
def test_envoy_ext_authz_headers(envoy: EnvoyProc, risk: str, team: str, expected: tuple[str, int, str]) -> None:
    r = chat(envoy.port, {**WHO, "x-risk-score": risk, "x-team": team})
    assert_answer(r.status, r.body, expected)


@pytest.mark.parametrize("risk, team, expected", CASES[:3], ids=IDS[:3])
def test_envoy_ext_authz_metadata_and_context_extension(
    envoy: EnvoyProc, upstream: Upstream, risk: str, team: str, expected: tuple[str, int, str]
) -> None:
    # The score only as Envoy dynamic metadata, the team only from the route.
    headers = {**WHO, "x-fraud-score": risk}
    if team == "red":
        headers["x-route"] = "red-pool"
    r = chat(envoy.port, headers)
    assert_answer(r.status, r.body, expected)
    if r.status == 200:
        assert "x-fraud-score" not in upstream.last_headers()  # the filter removed it


# --- nginx auth_request, Caddy forward_auth, Traefik forwardAuth in front of the endpoint ------


@pytest.fixture(scope="module", params=PROXIES)
def proxy(request: pytest.FixtureRequest, module_stack: Stack, engine: EngineProc, upstream: Upstream) -> ProxyProc:
    return start_proxy(module_stack, request.param, engine, upstream)


@pytest.mark.parametrize("risk, team, expected", CASES, ids=IDS)
def test_proxy_forward_auth(proxy: ProxyProc, risk: str, team: str, expected: tuple[str, int, str]) -> None:
    r = chat(proxy.port, {**WHO, "x-risk-score": risk, "x-team": team})
    assert_answer(r.status, r.body, expected)


# --- the ASGI middleware: the header, and the score an inner middleware put in the scope -------


class FraudScore:
    """Stands for a provider's own middleware: it scores the caller and leaves the score in
    the scope (`scope["state"]["risk_score"]`), as Starlette's request state does."""

    def __init__(self, app: Any, score: Any) -> None:
        self.app, self.score = app, score

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        scope = {**scope, "state": {"risk_score": self.score}}
        await self.app(scope, receive, send)


@pytest.mark.parametrize("risk, team, expected", CASES, ids=IDS)
def test_asgi_gateway(engine: EngineProc, risk: str, team: str, expected: tuple[str, int, str]) -> None:
    async def run() -> tuple[Any, Any]:
        model = ModelApp()
        gateway = PolicyGateway(model, target=engine.target, timeout=5.0)
        try:
            by_scope = await call(FraudScore(gateway, risk), {**WHO, "x-team": team})
            by_header = await call(gateway, {**WHO, "x-team": team, "x-risk-score": risk})
        finally:
            await gateway.aclose()
        return by_scope, by_header

    for r in asyncio.run(run()):
        assert_answer(r.status, r.body, expected)


# --- reloads and the decision log ---------------------------------------------------------------

PLAIN = 'rule blocked {\n  deny when account.id == "blocked"\n  reason "blocked"\n}\n'


def test_a_reload_that_declares_an_attribute_reaches_the_asgi_gateway(stack: Stack, tmp_path: Path) -> None:
    folder = write_policy(tmp_path / "policy", PLAIN)
    log = tmp_path / "decisions.jsonl"
    engine = stack.engine(folder, extra={"reload": True, "reload_debounce_ms": 50, "decision_log": str(log)})
    headers = {**WHO, "x-risk-score": "0.93", "x-team": "blue"}
    ctx = {"account": {"id": "acct-attr"}, "attributes": {"account.risk_score": "0.93"}}

    async def run() -> list[int]:
        gateway = PolicyGateway(ModelApp(), target=engine.target, timeout=5.0)
        statuses = [(await call(gateway, headers)).status]  # nothing declared: nothing collected
        with engine.client() as c:
            v1 = c.get_policy().version
            assert c.check(ctx).notes == ["attribute 'account.risk_score' is not declared by the policy: ignored"]
            (folder / "main.policy").write_text(POLICY)
            deadline = time.monotonic() + 20
            while c.get_policy().version == v1:
                assert time.monotonic() < deadline, "the policy was not reloaded"
                await asyncio.sleep(0.05)
        # The first Check after the reload answers from the new version: the gateway asks
        # GetPolicy again before the next one, which then carries the header's value.
        statuses.append((await call(gateway, headers)).status)
        statuses.append((await call(gateway, headers)).status)
        await gateway.aclose()
        return statuses

    assert asyncio.run(run()) == [200, 200, 403]
    with engine.client() as c:
        assert c.check(ctx).effect == "deny"
        c.check({**ctx, "attributes": {"account.risk_score": "high"}})
    deadline = time.monotonic() + 10
    while '"notes"' not in (log.read_text() if log.exists() else "") or log.read_text().count("\n") < 6:
        assert time.monotonic() < deadline, "the decision log was not written"
        time.sleep(0.05)
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert lines[1]["notes"] == ["attribute 'account.risk_score' is not declared by the policy: ignored"]
    assert lines[-1]["notes"] == ["attribute account.risk_score: ignored 'high': expected a number"]
    assert "notes" not in lines[-2]
