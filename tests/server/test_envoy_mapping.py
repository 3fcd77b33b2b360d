"""Envoy ext_authz / rate-limit messages <-> request context and decisions."""

from __future__ import annotations

import codecs
import json
import math
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from dsl.schema import Field
from dsl.types import FLOAT, STRING
from policy_engine.attributes import Attributes
from policy_engine.context import RequestContext
from policy_engine.decision import Decision, Effect, LimitState
from policy_engine.ingress.answer import finish_headers
from policy_engine.ingress.bodies import lenient_json, parse_llm_body, read_body
from policy_engine.ingress.identity import MappingError
from policy_engine.ingress.settings import HeaderNames, JwtSettings
from policy_engine.proto.envoy.config.core.v3 import address_pb2, base_pb2
from policy_engine.proto.envoy.extensions.common.ratelimit.v3 import ratelimit_pb2
from policy_engine.proto.envoy.service.auth.v3 import attribute_context_pb2 as ac
from policy_engine.proto.envoy.service.auth.v3 import external_auth_pb2 as authz
from policy_engine.proto.envoy.service.ratelimit.v3 import rls_pb2 as rls
from policy_engine.server.envoy_mapping import (
    EnvoyMapper,
    EnvoyMappingSettings,
    build_check_response,
    build_rate_limit_response,
    deny_for_mapping_error,
)

NOW = 1_764_300_000.0


def check_request(
    headers: dict[str, str] | None = None,
    *,
    source: str | None = "10.0.0.5",
    body: str = "",
    raw_body: bytes = b"",
    http_id: str = "",
    header_map: list[tuple[str, str]] | None = None,
    ts: float | None = None,
) -> authz.CheckRequest:
    http = ac.AttributeContext.HttpRequest(
        id=http_id, method="POST", path="/v1/chat/completions", headers=headers or {}, body=body, raw_body=raw_body
    )
    for k, v in header_map or ():
        http.header_map.headers.add(key=k, value=v)
    attrs = ac.AttributeContext(request=ac.AttributeContext.Request(http=http))
    if source is not None:
        attrs.source.address.CopyFrom(
            address_pb2.Address(socket_address=address_pb2.SocketAddress(address=source, port_value=41000))
        )
    if ts is not None:
        attrs.request.time.FromNanoseconds(int(ts * 1e9))
    req = authz.CheckRequest(attributes=attrs)
    return authz.CheckRequest.FromString(req.SerializeToString())  # as it arrives off the wire


def valid(ctx: dict[str, Any]) -> RequestContext:
    return RequestContext.model_validate(ctx)


# --- identity from headers ------------------------------------------------------


def test_identity_from_default_headers() -> None:
    out = EnvoyMapper().map_check(
        check_request(
            {
                "x-account-id": "acct-42",
                "x-org-id": "org-7",
                "x-account-tier": "pro",
                "x-account-age-days": "120.5",
                "x-account-verification": "KYC",
                "x-payment-fingerprint": "pf-9a1",
                "x-account-labels": "partner, beta",
                "x-api-key-id": "key-1",
                "x-api-key-scopes": "inference embeddings",
                "user-agent": "sdk/1.2",
                "x-request-id": "r-1",
            }
        )
    )
    m = valid(out.context)
    assert (m.account.id, m.account.org, m.account.tier, m.account.age_days) == ("acct-42", "org-7", "pro", 120.5)
    assert m.account.verification == "kyc" and m.account.payment_fingerprint == "pf-9a1"
    assert m.account.labels == ["partner", "beta"] and m.api_key.scopes == ["inference", "embeddings"]
    assert m.api_key.id == "key-1" and m.client.user_agent == "sdk/1.2" and m.request.id == "r-1"
    assert m.client.ip == "10.0.0.5" and out.warnings == []


def test_header_names_are_configurable() -> None:
    s = EnvoyMappingSettings(headers=HeaderNames(account_id="x-user", tier="x-plan"))
    out = EnvoyMapper(s).map_check(check_request({"x-user": "u1", "x-plan": "free", "x-account-id": "ignored"}))
    assert out.context["account"] == {"id": "u1", "tier": "free"}


def test_unusable_header_values_are_dropped_with_a_warning() -> None:
    out = EnvoyMapper().map_check(
        check_request({"x-account-age-days": "old", "x-account-verification": "passport", "x-account-id": "a"})
    )
    assert out.context["account"] == {"id": "a"}
    assert len(out.warnings) == 2 and "x-account-age-days" in out.warnings[0] and "verification" in out.warnings[1]
    valid(out.context)


def test_request_id_from_header_then_http_id_and_time_from_attributes() -> None:
    assert EnvoyMapper().map_check(check_request({"x-request-id": "h"}, http_id="e")).context["request"]["id"] == "h"
    out = EnvoyMapper().map_check(check_request(http_id="e", ts=NOW))
    assert out.context["request"] == {"id": "e", "ts": NOW}


def test_raw_header_map_is_read_when_headers_are_not_sent() -> None:
    out = EnvoyMapper().map_check(
        check_request(header_map=[("X-Account-Id", "acct-1"), ("x-account-labels", "a"), ("x-account-labels", "b")])
    )
    assert out.context["account"] == {"id": "acct-1", "labels": ["a", "b"]}


# --- client address -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("hops", "headers", "source", "expected"),
    [
        (None, {}, "10.0.0.5", "10.0.0.5"),
        (None, {"x-forwarded-for": "198.51.100.7"}, "10.0.0.5", "10.0.0.5"),  # XFF ignored unless configured
        (None, {"x-envoy-external-address": "203.0.113.9"}, "10.0.0.5", "203.0.113.9"),
        (0, {"x-forwarded-for": "1.1.1.1, 203.0.113.9"}, "10.0.0.5", "203.0.113.9"),
        (1, {"x-forwarded-for": "1.1.1.1,203.0.113.9, 10.1.1.1"}, "10.0.0.5", "203.0.113.9"),
        (2, {"x-forwarded-for": "10.1.1.1"}, "10.0.0.5", "10.0.0.5"),  # fewer hops than trusted proxies
        (0, {"x-forwarded-for": "[2001:db8::1]:443"}, None, "2001:db8::1"),
        (0, {"x-forwarded-for": "198.51.100.7:5555"}, None, "198.51.100.7"),
        (0, {"x-forwarded-for": "garbage", "x-envoy-external-address": "nope"}, "10.0.0.5", "10.0.0.5"),
        (None, {}, None, None),
    ],
)
def test_client_ip(hops: int | None, headers: dict[str, str], source: str | None, expected: str | None) -> None:
    out = EnvoyMapper(EnvoyMappingSettings(xff_num_trusted_hops=hops)).map_check(check_request(headers, source=source))
    assert out.context.get("client", {}).get("ip") == expected


def test_external_address_can_be_distrusted() -> None:
    s = EnvoyMappingSettings(trust_envoy_external_address=False)
    out = EnvoyMapper(s).map_check(check_request({"x-envoy-external-address": "203.0.113.9"}))
    assert out.context["client"]["ip"] == "10.0.0.5"


# --- bodies ---------------------------------------------------------------------------

CHAT = {
    "model": "frontier-large",
    "messages": [
        {"role": "system", "content": "You are helpful."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Explain step by step"},
                {"type": "image_url", "image_url": {"url": "data:..."}},
                {"type": "text", "text": "how you reason."},
            ],
        },
    ],
    "max_completion_tokens": 512,
}
CHAT_PROMPT = "You are helpful.\nExplain step by step\nhow you reason."


def test_chat_body() -> None:
    out = EnvoyMapper().map_check(check_request(body=json.dumps(CHAT)))
    r = valid(out.context).request
    assert (r.model, r.prompt, r.max_tokens) == ("frontier-large", CHAT_PROMPT, 512)
    assert r.prompt_tokens == math.ceil(len(CHAT_PROMPT) / 4) and not out.body_truncated


def test_completions_body_in_raw_body_and_given_prompt_tokens() -> None:
    body = json.dumps({"model": "m", "prompt": ["a", "bc"], "max_tokens": 7}).encode()
    out = EnvoyMapper().map_check(check_request({"x-prompt-tokens": "99"}, raw_body=body))
    assert out.context["request"] == {"model": "m", "prompt": "a\nbc", "max_tokens": 7, "prompt_tokens": 99}


def test_cut_body_keeps_the_readable_prompt_and_counts_the_rest() -> None:
    full = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * 1000}]}).encode()
    cut = full[:300]
    out = EnvoyMapper().map_check(check_request({"content-length": str(len(full))}, raw_body=cut))
    r = out.context["request"]
    assert r["model"] == "m" and set(r["prompt"]) == {"x"} and 0 < len(r["prompt"]) < 300
    assert out.body_truncated and r["prompt_tokens"] == math.ceil((len(r["prompt"]) + len(full) - 300) / 4)
    valid(out.context)


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        b"\xff\xfe\x00garbage",
        b"[1, 2",
        b'{"messages": 5}',
        b'{"model": 12, "max_tokens": -3}',
        b"{" * 10_000,
        b'"just a string"',
    ],
)
def test_odd_bodies_are_tolerated(body: bytes) -> None:
    out = EnvoyMapper().map_check(check_request(raw_body=body))
    valid(out.context)
    assert out.context.get("request", {}).get("max_tokens") is None


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=12,
)
_ODD_JSON = st.sampled_from(['{"a": NaN}', "[Infinity, 1]", '"\\ud800"', '{"a": 1, "a": 2}', "[1e400]", " \ufeff[1]"])


@settings(max_examples=200, deadline=None)
@given(_JSON.map(json.dumps) | _ODD_JSON, st.integers(0, 40))
def test_fast_body_reading_reads_what_json_reads(text: str, cut: int) -> None:
    """lenient_json tries orjson first and read_body a strict decode: whole documents, cut
    ones and what only json reads (NaN, huge numbers, lone surrogates) come out as before."""
    for doc in (text, text[: len(text) - cut]):
        try:
            want: Any = (json.loads(doc), True)
        except (ValueError, RecursionError):
            want = None
        got = lenient_json(doc)
        if want is not None:
            assert got == want or (got[1] and json.dumps(got[0]) == json.dumps(want[0]))
        raw = doc.encode("utf-8", "surrogatepass")
        slow = codecs.getincrementaldecoder("utf-8")("replace").decode(raw[:30], final=False)
        assert read_body(raw, None, 30).info == parse_llm_body(slow)


def test_body_parsing_can_be_turned_off() -> None:
    s = EnvoyMappingSettings(parse_body=False, headers=HeaderNames(model="x-ai-eg-model"))
    out = EnvoyMapper(s).map_check(check_request({"x-ai-eg-model": "hdr-model"}, body=json.dumps(CHAT)))
    assert out.context["request"] == {"model": "hdr-model"}


def test_other_api_shapes() -> None:
    assert (
        parse_llm_body(
            json.dumps({"system": [{"type": "text", "text": "S"}], "messages": [{"role": "user", "content": "U"}]})
        ).prompt
        == "S\nU"
    )
    info = parse_llm_body(
        json.dumps(
            {
                "instructions": "I",
                "input": [{"role": "user", "content": [{"type": "input_text", "text": "T"}]}],
                "max_output_tokens": 3,
            }
        )
    )
    assert (info.prompt, info.max_tokens) == ("I\nT", 3)


def test_lenient_json_decodes_escapes_and_stops_cleanly() -> None:
    assert lenient_json('{"a": "\\u00e9\\ud83d\\ude00\\n", "b": [true, null, 1.5]}') == (
        {"a": "é😀\n", "b": [True, None, 1.5]},
        True,
    )
    assert lenient_json('{"a": "x\\u00') == ({"a": "x"}, False)
    assert lenient_json('{"a": [1, 2, 3') == ({"a": [1, 2]}, False)  # 3 might have been 30
    assert lenient_json('{"a": 1 "b": 2}') == ({"a": 1}, False)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=40), min_size=1, max_size=4), st.data())
def test_any_cut_of_a_chat_body_gives_a_prefix_of_its_prompt(texts: list[str], data: st.DataObject) -> None:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": t} for t in texts]})
    full = parse_llm_body(body).prompt
    assert full == "\n".join(texts)
    cut = data.draw(st.integers(0, len(body)))
    prompt = parse_llm_body(body[:cut]).prompt
    assert prompt is None or full.startswith(prompt)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=30), min_size=1, max_size=3), st.data())
def test_any_byte_cut_of_a_raw_utf8_body_gives_a_prefix_of_its_prompt(texts: list[str], data: st.DataObject) -> None:
    body = json.dumps({"messages": [{"role": "user", "content": t} for t in texts]}, ensure_ascii=False).encode()
    cut = data.draw(st.integers(0, len(body)))
    out = EnvoyMapper().map_check(check_request({"content-length": str(len(body))}, raw_body=body[:cut]))
    prompt = out.context.get("request", {}).get("prompt")
    assert prompt is None or "\n".join(texts).startswith(prompt)
    assert out.body_truncated == (0 < cut < len(body))  # no body at all: nothing was sent, nothing cut


# --- identity from a JWT ----------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_keys() -> tuple[Any, Any]:
    return (
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )


@pytest.fixture()
def jwt_mapper(tmp_path: Path, rsa_keys: tuple[Any, Any]) -> EnvoyMapper:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_keys[0].public_key()))
    jwk.update(kid="k1", use="sig", alg="RS256")
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    return EnvoyMapper(
        EnvoyMappingSettings(
            identity="jwt", jwt=JwtSettings(jwks_file=path, issuer="https://idp.example", audience="inference")
        )
    )


def token(key: Any, kid: str = "k1", **claims: Any) -> str:
    base = {
        "sub": "acct-42",
        "iss": "https://idp.example",
        "aud": "inference",
        "exp": time.time() + 600,
        "org": "org-7",
        "tier": "pro",
        "verification": "phone",
        "labels": ["partner"],
        "scope": "inference chat",
        "acct_created": NOW - 3 * 86400,
    }
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, key, algorithm="RS256", headers={"kid": kid})


def test_jwt_claims_become_the_account(jwt_mapper: EnvoyMapper, rsa_keys: tuple[Any, Any]) -> None:
    req = check_request({"authorization": f"Bearer {token(rsa_keys[0])}", "x-account-id": "spoofed"}, ts=NOW)
    ctx = valid(jwt_mapper.map_check(req).context)
    assert (ctx.account.id, ctx.account.org, ctx.account.tier, ctx.account.verification) == (
        "acct-42",
        "org-7",
        "pro",
        "phone",
    )
    assert ctx.account.labels == ["partner"] and ctx.api_key.scopes == ["inference", "chat"]
    assert ctx.account.age_days == pytest.approx(3.0)


def test_age_days_claim_wins_over_creation_time(jwt_mapper: EnvoyMapper, rsa_keys: tuple[Any, Any]) -> None:
    req = check_request({"authorization": f"Bearer {token(rsa_keys[0], age_days=400)}"})
    assert jwt_mapper.map_check(req).context["account"]["age_days"] == 400.0


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda k: f"Bearer {token(k[0], exp=time.time() - 3600)}", "token expired"),
        (lambda k: f"Bearer {token(k[1])}", "invalid token: Signature verification failed"),
        (lambda k: f"Bearer {token(k[0], kid='k9')}", "invalid token: no key 'k9' in the JWKS"),
        (lambda k: f"Bearer {token(k[0], aud='other')}", "invalid token: Audience doesn't match"),
        (lambda k: f"Bearer {token(k[0], sub=None)}", 'invalid token: Token is missing the "sub" claim'),
        (lambda k: "Bearer not.a.jwt", "invalid token"),
        (lambda k: "Basic dXNlcjpwdw==", "authorization: expected 'Bearer <token>'"),
        (lambda k: None, "missing bearer token in authorization"),
    ],
)
def test_bad_tokens_are_refused(jwt_mapper: EnvoyMapper, rsa_keys: tuple[Any, Any], make: Any, reason: str) -> None:
    value = make(rsa_keys)
    with pytest.raises(MappingError) as err:
        jwt_mapper.map_check(check_request({"authorization": value} if value else {}))
    assert err.value.reason.startswith(reason)
    resp = deny_for_mapping_error(err.value)
    assert resp.status.code == 16 and resp.denied_response.status.code == 401
    assert json.loads(resp.denied_response.body) == {
        "error": {"type": "unauthenticated", "reason": err.value.reason, "rule": None}
    }


def test_declared_attributes_from_claims_and_never_from_forgeable_identity_headers(
    jwt_mapper: EnvoyMapper, rsa_keys: tuple[Any, Any]
) -> None:
    declared = Attributes(
        (
            Field("account", "risk_score", FLOAT, 0, declared=True, header="x-risk-score", claim="risk"),
            Field("request", "team", STRING, 0, declared=True, header="x-team", context_extension="team"),
        )
    )
    forged = {"x-risk-score": "0.01", "x-team": "red"}
    req = check_request({"authorization": f"Bearer {token(rsa_keys[0], risk=0.93)}", **forged})
    raw = jwt_mapper.map_check(req, attributes=declared).context["attributes"]
    # account.* comes from the verified token only; request.* headers are read as always.
    assert raw == {"account.risk_score": 0.93, "request.team": "red"}
    without = jwt_mapper.map_check(
        check_request({"authorization": f"Bearer {token(rsa_keys[0])}", **forged}), attributes=declared
    )
    assert without.context["attributes"] == {"request.team": "red"}


def test_jwt_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="jwt section"):
        EnvoyMappingSettings(identity="jwt")
    with pytest.raises(ValidationError, match="not a request context field"):
        JwtSettings(jwks_file=tmp_path / "x", claims={"account.idd": "sub"})
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="cannot load JWKS"):
        EnvoyMapper(EnvoyMappingSettings(identity="jwt", jwt=JwtSettings(jwks_file=tmp_path / "bad.json")))


# --- ShouldRateLimit ---------------------------------------------------------------------------


def rl_request(
    *descriptors: list[tuple[str, str]], hits: int = 0, descriptor_hits: int | None = None
) -> rls.RateLimitRequest:
    req = rls.RateLimitRequest(domain="inference", hits_addend=hits)
    for i, entries in enumerate(descriptors):
        d = req.descriptors.add()
        d.entries.extend(ratelimit_pb2.RateLimitDescriptor.Entry(key=k, value=v) for k, v in entries)
        if descriptor_hits is not None and i == 0:
            d.hits_addend.value = descriptor_hits
    return rls.RateLimitRequest.FromString(req.SerializeToString())


def test_rate_limit_descriptors_become_context() -> None:
    out = EnvoyMapper().map_rate_limit(
        rl_request(
            [("account_id", "acct-42"), ("remote_address", "203.0.113.9")],
            [("model", "frontier-large"), ("tier", "pro"), ("generic_key", "whatever"), ("account_id", "other")],
        )
    )
    assert out.domain == "inference" and out.cost == 1
    assert out.context == {
        "account": {"id": "acct-42", "tier": "pro"},
        "client": {"ip": "203.0.113.9"},
        "request": {"model": "frontier-large"},
    }
    assert out.warnings == ["descriptor account_id: kept the first value for account.id"]


def test_rate_limit_hits() -> None:
    assert EnvoyMapper().map_rate_limit(rl_request([("account_id", "a")], hits=845)).cost == 845
    assert EnvoyMapper().map_rate_limit(rl_request([("account_id", "a")], hits=5, descriptor_hits=9)).cost == 9
    s = EnvoyMappingSettings(hits_addend_field="usage.completion_tokens", descriptor_keys={"user": "account.id"})
    out = EnvoyMapper(s).map_rate_limit(rl_request([("user", "u"), ("account_id", "ignored")], hits=30))
    assert out.context == {"account": {"id": "u"}, "usage": {"completion_tokens": 30}}
    with pytest.raises(ValidationError, match="not a request context field"):
        EnvoyMappingSettings(descriptor_keys={"user": "account.name"})


def decided(effect: Effect, status: int, *, rate_limit: LimitState | None = None, **parts: Any) -> Decision:
    """A decision as the engine finishes it: its headers filled in from its parts."""
    d = Decision(effect, status, rate_limit=rate_limit, **parts)
    finish_headers(d)
    return d


def test_rate_limit_response() -> None:
    lim = LimitState("tokens_per_day", "acct-42", "sum", 10_500, 10_000, 0, 3600.4, True, False)
    d = decided(Effect.THROTTLE, 429, limits=[lim], rate_limit=lim, retry_after=3600.4)
    resp = rls.RateLimitResponse.FromString(build_rate_limit_response(d, 2).SerializeToString())
    assert resp.overall_code == rls.RateLimitResponse.OVER_LIMIT and len(resp.statuses) == 2
    st0 = resp.statuses[0]
    assert (st0.current_limit.requests_per_unit, st0.current_limit.name, st0.limit_remaining) == (
        10_000,
        "tokens_per_day",
        0,
    )
    assert st0.duration_until_reset.seconds == 3600
    assert {h.key: h.value for h in resp.response_headers_to_add}["retry-after"] == "3601"
    ok = build_rate_limit_response(decided(Effect.FLAG, 200), 1)
    assert ok.overall_code == rls.RateLimitResponse.OK and not ok.response_headers_to_add


# --- ext_authz responses ---------------------------------------------------------------------


def headers_of(options: Any) -> dict[str, str]:
    return {o.header.key: o.header.value for o in options}


LIMITS = [
    LimitState("rpm", "acct-42", "count", used=12, max=60, remaining=48, reset=20, over=False, committed=True),
    LimitState("tpd", "acct-42", "sum", used=9_990, max=10_000, remaining=10, reset=7200.2, over=False, committed=True),
]


def test_deny_response() -> None:
    resp = authz.CheckResponse.FromString(
        build_check_response(
            decided(
                Effect.DENY,
                403,
                reason="surrogate account cluster",
                rules=["campaign_pf", "other"],
                request_id="r-1",
                policy_version="abc",
            )
        ).SerializeToString()
    )
    assert resp.status.code == 7 and resp.WhichOneof("http_response") == "denied_response"
    d = resp.denied_response
    assert d.status.code == 403 and headers_of(d.headers) == {"content-type": "application/json"}
    assert json.loads(d.body) == {
        "error": {"type": "permission_denied", "reason": "surrogate account cluster", "rule": "campaign_pf"}
    }
    assert resp.dynamic_metadata["effect"] == "deny" and resp.dynamic_metadata["request_id"] == "r-1"


def test_throttle_response_with_rate_limit_headers() -> None:
    resp = build_check_response(
        decided(
            Effect.THROTTLE,
            429,
            reason="daily tokens",
            rules=["tpd"],
            limits=LIMITS,
            rate_limit=LIMITS[1],
            retry_after=30.2,
        )
    )
    d = resp.denied_response
    assert resp.status.code == 8 and d.status.code == 429
    assert headers_of(d.headers) == {
        "content-type": "application/json",
        "x-ratelimit-limit": "10000",
        "x-ratelimit-remaining": "10",
        "x-ratelimit-reset": "7201",
        "retry-after": "31",
    }
    assert json.loads(d.body)["error"] == {"type": "rate_limit_exceeded", "reason": "daily tokens", "rule": "tpd"}


def test_decision_headers_override_computed_ones() -> None:
    resp = build_check_response(
        decided(Effect.THROTTLE, 503, limits=LIMITS, rate_limit=LIMITS[1], headers={"X-RateLimit-Remaining": "5"})
    )
    assert resp.denied_response.status.code == 503
    assert headers_of(resp.denied_response.headers)["x-ratelimit-remaining"] == "5"


def test_allow_and_flag_responses() -> None:
    flagged = build_check_response(
        decided(Effect.FLAG, 200, flags=["cot_probe", "new_account"], limits=LIMITS, rate_limit=LIMITS[1])
    )
    assert flagged.status.code == 0 and flagged.WhichOneof("http_response") == "ok_response"
    assert headers_of(flagged.ok_response.headers) == {"x-policy-flags": "cot_probe,new_account"}
    assert flagged.ok_response.headers[0].append_action == base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
    to_caller = headers_of(flagged.ok_response.response_headers_to_add)
    assert to_caller["x-ratelimit-remaining"] == "10"
    assert "x-policy-flags" not in to_caller, "flags say which detections fired: upstream only"
    plain = build_check_response(
        decided(Effect.ALLOW, 200, limits=LIMITS, rate_limit=LIMITS[1]),
        EnvoyMappingSettings(rate_limit_headers_on_allow=False),
    )
    assert list(plain.ok_response.headers_to_remove) == ["x-policy-flags"]
    assert not plain.ok_response.headers and not plain.ok_response.response_headers_to_add


def test_the_engines_decision_model_builds_envoy_answers(make_policy: Any) -> None:
    # One rule for the rate-limit headers: those the engine chose, whichever the API.
    p = make_policy("""
limit tpd {
  key account.id
  sum request.max_tokens ?? 0
  window 1h
  max 100
  reason "tokens"
}
limit shadow_cap {
  key account.id
  count
  window 1h
  max 0
  reason "cap"
  shadow
}
""")
    req = {"account": {"id": "acct-1"}, "request": {"max_tokens": 60}}
    p.decide(req, now=NOW)
    d = p.decide(req, now=NOW + 1)
    resp = build_check_response(d)
    assert resp.status.code == 8 and resp.denied_response.status.code == 429
    assert headers_of(resp.denied_response.headers)["x-ratelimit-limit"] == "100"
    assert json.loads(resp.denied_response.body)["error"]["rule"] == "tpd"
    rl = build_rate_limit_response(d, 1)
    assert rl.statuses[0].current_limit.name == "tpd", "a shadow limit never speaks to the caller"
    assert {h.key: h.value for h in rl.response_headers_to_add} == {
        k: v for k, v in headers_of(resp.denied_response.headers).items() if k != "content-type"
    }
    allowed = build_check_response(decided(Effect.FLAG, 200, flags=["probe"]))
    assert headers_of(allowed.ok_response.headers) == {"x-policy-flags": "probe"}
    denied = build_check_response(decided(Effect.DENY, 403, reason="no"))
    assert denied.denied_response.status.code == 403 and denied.status.code == 7
