"""The protocol-neutral ingress layer: HttpRequest -> request context, Decision -> answer."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from dsl.schema import BY_PATH
from policy_engine.context import FIELDS as CONTEXT_FIELDS
from policy_engine.context import Context
from policy_engine.decision import Decision, Effect, LimitState
from policy_engine.ingress.answer import answer, answer_decision, error_body, finish_headers, refusal
from policy_engine.ingress.http import HttpRequest, header_map
from policy_engine.ingress.identity import MappingError
from policy_engine.ingress.mapping import RequestMapper
from policy_engine.ingress.settings import HeaderNames, IngressSettings
from policy_engine.ingress.values import coerce
from policy_engine.proto.envoy.config.core.v3 import address_pb2
from policy_engine.proto.envoy.service.auth.v3 import attribute_context_pb2 as ac
from policy_engine.proto.envoy.service.auth.v3 import external_auth_pb2 as authz
from policy_engine.server.envoy_mapping import EnvoyMapper, http_request

# --- requests ---------------------------------------------------------------------------


def test_a_plain_http_request_maps_without_any_proxy_types() -> None:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 9})
    req = HttpRequest(
        "POST",
        "/v1/chat/completions",
        {
            "x-account-id": "acct-1",
            "x-account-labels": "a, b",
            "user-agent": "sdk/2",
            "x-forwarded-for": "198.51.100.7",
        },
        body.encode(),
        peer="10.0.0.5:4100",
        id="proxy-1",
        time=1_764_300_000.5,
    )
    out = RequestMapper(IngressSettings(xff_num_trusted_hops=0)).map(req)
    assert out.context == {
        "request": {
            "ts": 1_764_300_000.5,
            "id": "proxy-1",
            "model": "m",
            "prompt": "hello there",
            "max_tokens": 9,
            "prompt_tokens": 3,
        },
        "account": {"id": "acct-1", "labels": ["a", "b"]},
        "client": {"ip": "198.51.100.7", "user_agent": "sdk/2"},
    }
    assert out.warnings == [] and not out.body_truncated


def test_header_settings_come_from_the_field_table() -> None:
    names = HeaderNames()
    assert names.by_path()["account.id"] == "x-account-id" and names.by_path()["request.model"] is None
    assert set(names.identity()) == {
        p for p, f in BY_PATH.items() if f.section in ("account", "api_key") and f.header is not None
    }
    mapped = RequestMapper(IngressSettings(headers=HeaderNames(org="x-tenant"))).map(
        HttpRequest("GET", "/", {"x-tenant": "t-1", "x-org-id": "ignored"})
    )
    assert mapped.context == {"account": {"org": "t-1"}}


def test_repeated_headers_are_joined_as_proxies_do() -> None:
    assert header_map([("X-Account-Labels", "a"), ("x-account-labels", "b"), ("Host", "h")]) == {
        "x-account-labels": "a,b",
        "host": "h",
    }


@pytest.mark.parametrize(
    ("path", "raw", "value"),
    [
        ("request.max_tokens", " 12 ", 12),
        ("client.asn", 7.0, 7),
        ("account.age_days", "1.5", 1.5),
        ("request.ts", "-3", -3.0),  # no minimum: a timestamp may be anything finite
        ("account.verification", " KYC", "kyc"),
        ("client.ip", "[2001:db8::1]:443", "2001:db8::1"),
        ("api_key.scopes", "a b,c", ["a", "b", "c"]),
        ("account.labels", ["x", 1], ["x", "1"]),
        ("account.id", 42, "42"),
    ],
)
def test_values_are_coerced_by_the_table(path: str, raw: Any, value: Any) -> None:
    assert coerce(BY_PATH[path], raw) == value


@pytest.mark.parametrize(
    ("path", "raw", "why"),
    [
        ("request.max_tokens", "-1", "non-negative integer"),
        ("request.max_tokens", 1.5, "integer"),
        ("request.max_tokens", True, "integer"),
        ("account.age_days", "nan", "finite"),
        ("account.age_days", -2, "non-negative number"),
        ("account.verification", "gold", "one of"),
        ("client.ip", "nope", "IP"),
        ("account.id", {"a": 1}, "string"),
    ],
)
def test_unusable_values_say_why(path: str, raw: Any, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        coerce(BY_PATH[path], raw)


_header = st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=12)


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "x-account-id",
                "x-account-age-days",
                "x-account-verification",
                "x-account-labels",
                "x-forwarded-for",
                "x-envoy-external-address",
                "x-request-id",
                "x-prompt-tokens",
                "user-agent",
                "content-length",
            ]
        ),
        _header,
    ),
    st.binary(max_size=80),
    st.none() | st.sampled_from(["10.0.0.5", "2001:db8::7"]),
)
def test_envoy_adapter_maps_exactly_as_the_neutral_layer(
    headers: dict[str, str], body: bytes, peer: str | None
) -> None:
    attrs = ac.AttributeContext(
        request=ac.AttributeContext.Request(
            http=ac.AttributeContext.HttpRequest(
                id="e-1", method="POST", path="/v1/completions", headers=headers, raw_body=body
            )
        )
    )
    if peer is not None:
        attrs.source.address.CopyFrom(address_pb2.Address(socket_address=address_pb2.SocketAddress(address=peer)))
    envoy = EnvoyMapper().map_check(authz.CheckRequest(attributes=attrs))
    neutral = RequestMapper().map(HttpRequest("POST", "/v1/completions", headers, body, peer=peer, id="e-1"))
    assert (envoy.context, envoy.warnings, envoy.body_truncated) == (
        neutral.context,
        neutral.warnings,
        neutral.body_truncated,
    )
    assert http_request(authz.CheckRequest(attributes=attrs)).peer == peer


_BODY = st.sampled_from(
    [
        b"",
        b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 7}',
        b'{"model": "m", "prompt": "x", "max_completion_tokens": -3}',
        b'{"model": 5, "input": "y"',
    ]
)


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "x-account-id",
                "x-account-age-days",
                "x-account-verification",
                "x-account-tier",
                "x-account-labels",
                "x-api-key-id",
                "x-forwarded-for",
                "x-request-id",
                "x-prompt-tokens",
                "x-org-id",
                "x-api-key-scopes",
                "user-agent",
            ]
        ),
        _header | st.sampled_from(["kyc", "email", "phone", "-4", "2.5", "1e400", "nan"]),
    ),
    _BODY,
)
def test_mapped_contexts_skip_pydantic_and_read_the_same(headers: dict[str, str], body: bytes) -> None:
    """ext_authz and forward-auth read the mapper's dict without pydantic (Context.from_mapped):
    the same Context as validating it, field by field."""
    ctx = RequestMapper().map(HttpRequest("POST", "/v1/chat/completions", headers, body, peer="10.0.0.9")).context
    fast, slow = Context.from_mapped(ctx), Context.from_dict(ctx)
    assert {f: getattr(fast, f) for f in CONTEXT_FIELDS} == {f: getattr(slow, f) for f in CONTEXT_FIELDS}


def test_a_mapped_dict_that_does_not_fit_is_explained_by_pydantic() -> None:
    for bad in ({"account": {"verification": "gold"}}, {"account": {"age_days": -1}}):
        with pytest.raises(ValidationError) as fast:
            Context.from_mapped(bad)
        with pytest.raises(ValidationError) as slow:
            Context.from_dict(bad)
        assert str(fast.value) == str(slow.value)


# --- answers ----------------------------------------------------------------------------


def _lim(name: str, remaining: float, reset: float = 30.0, max_: float = 10) -> LimitState:
    return LimitState(name, "k", "count", max_ - remaining, max_, remaining, reset, remaining < 0, True)


def test_refusals_carry_one_error_body() -> None:
    a = answer_decision(
        Decision(
            Effect.DENY,
            451,
            reason="region",
            rules=["embargo", "other"],
            headers={"x-policy-flags": "probe", "X-Hint": "h"},
        )
    )
    assert (a.allowed, a.status, a.error_type) == (False, 451, "permission_denied")
    assert a.body == b'{"error": {"type": "permission_denied", "reason": "region", "rule": "embargo"}}'
    assert a.headers == {"content-type": "application/json", "x-hint": "h"}, "flags never reach the caller"
    assert refusal(401, "unauthenticated", "token expired").body == error_body("unauthenticated", "token expired")
    assert MappingError("token expired").answer().headers["www-authenticate"] == 'Bearer error="invalid_token"'


def test_admitted_requests_pass_flags_upstream_only() -> None:
    flagged = answer(
        "flag",
        200,
        "",
        ["probe"],
        ["probe", "young"],
        {"x-policy-flags": "probe,young", "x-ratelimit-limit": "10"},
        flags_header="x-f",
    )
    assert flagged.allowed and flagged.upstream == {"x-f": "probe,young"} and flagged.remove_upstream == ()
    assert flagged.headers == {"x-ratelimit-limit": "10"} and flagged.body == b""
    plain = answer("allow", 200, "", [], [], {"x-ratelimit-limit": "10"}, headers_on_allow=False)
    assert plain.upstream == {} and plain.remove_upstream == ("x-policy-flags",) and plain.headers == {}


def test_rate_limit_headers_round_seconds_up_and_yield_to_a_policy() -> None:
    d = Decision(
        Effect.THROTTLE,
        429,
        retry_after=30.2,
        rate_limit=_lim("rpm", -1.5, reset=59.01, max_=2.5),
        flags=["f"],
        headers={"X-RateLimit-Limit": "mine"},
    )
    finish_headers(d)
    assert d.headers == {
        "X-RateLimit-Limit": "mine",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": "60",
        "retry-after": "31",
        "x-policy-flags": "f",
    }


def test_the_engine_picks_one_limit_for_the_headers(make_policy: Any) -> None:
    p = make_policy("""
rule blocked {
  deny when account.tier == "blocked"
  reason "blocked"
}
limit wide {
  key account.id
  count
  window 1m
  max 100
  reason "wide"
}
limit narrow {
  key account.id
  count
  window 1m
  max 3
  reason "narrow"
}
limit spread {
  key account.id
  distinct request.model
  window 1m
  max 1
  reason "spread"
  deny
}
limit watch {
  key account.id
  count
  window 1m
  max 1
  reason "watch"
  flag
}
""")
    acct = {"id": "a"}
    d = p.decide({"account": acct, "request": {"model": "m"}}, now=10.0)
    assert d.rate_limit is not None and d.rate_limit.limit == "narrow", "closest to its max; distinct and flag never"
    assert d.headers["x-ratelimit-limit"] == "3" and d.headers["x-ratelimit-remaining"] == "2"
    d = p.decide({"account": acct, "request": {"model": "other"}}, now=11.0)
    assert d.effect is Effect.DENY and d.rate_limit is not None and d.rate_limit.limit == "spread", (
        "the limit that refused speaks, whatever its kind"
    )
    d = p.decide({"account": {"id": "b", "tier": "blocked"}}, now=12.0)
    assert d.effect is Effect.DENY and d.rate_limit is None and "x-ratelimit-limit" not in d.headers, (
        "a rule's deny is not about a budget"
    )


STANDARD = """
policy "standard-headers" {
  rate_limit_headers "x-ratelimit, openai ietf"
  rate_limit_disclosure_flagged "limits"
}
rule watched {
  flag when account.tier == "watched"
  reason "watched"
}
rule blocked {
  deny when account.tier == "blocked"
  reason "blocked"
}
limit rpm {
  key account.id
  count
  window 1m
  max 3
  throttle
  reason "rpm"
}
limit rph {
  key account.id
  count
  window 1h
  max 100
  reason "rph"
}
limit tpd {
  key account.id
  sum request.max_tokens ?? 0
  window 1d
  max 1000
  throttle
  reason "tpd"
}
"""


def test_openai_and_ietf_headers_report_the_requests_and_tokens_limits(make_policy: Any) -> None:
    p = make_policy(STANDARD)
    d = p.decide({"account": {"id": "a"}, "request": {"max_tokens": 100}}, now=10.0)
    h = d.headers
    # One rule per slot: the requests limit closest to its maximum (rpm 2/3 left, not rph),
    # the tokens limit, and for x-ratelimit-* the closest of all (rpm: 2/3 < 900/1000).
    assert (h["x-ratelimit-limit"], h["x-ratelimit-remaining"]) == ("3", "2")
    assert (h["x-ratelimit-limit-requests"], h["x-ratelimit-remaining-requests"]) == ("3", "2")
    assert (h["x-ratelimit-limit-tokens"], h["x-ratelimit-remaining-tokens"]) == ("1000", "900")
    assert h["x-ratelimit-reset-requests"].endswith("s") and h["x-ratelimit-reset-tokens"].endswith("s")
    assert h["ratelimit-policy"] == '"rpm";q=3;w=60, "tpd";q=1000;w=86400;qu="tokens"'
    assert h["ratelimit"].startswith('"rpm";r=2;t=') and ', "tpd";r=900;t=' in h["ratelimit"]


def test_the_refusing_limit_speaks_in_its_slot(make_policy: Any) -> None:
    p = make_policy(STANDARD)
    d = p.decide({"account": {"id": "t"}, "request": {"max_tokens": 1200}}, now=10.0)
    assert d.effect is Effect.THROTTLE and d.tokens_limit is not None and d.tokens_limit.limit == "tpd"
    # 1200 tokens do not fit in 1000: refused, and all 1000 are still left for a smaller call.
    assert d.headers["x-ratelimit-remaining-tokens"] == "1000" and d.headers["x-ratelimit-limit"] == "1000"
    assert d.requests_limit is not None and d.requests_limit.limit == "rpm"
    assert "retry-after" in d.headers
    blocked = p.decide({"account": {"id": "b", "tier": "blocked"}}, now=10.0)
    assert not any(k.startswith(("x-ratelimit", "ratelimit")) for k in blocked.headers), (
        "a rule's deny is not about a budget"
    )


def test_a_flagged_request_learns_the_limits_but_not_what_is_left(make_policy: Any) -> None:
    p = make_policy(STANDARD)
    d = p.decide({"account": {"id": "w", "tier": "watched"}, "request": {"max_tokens": 100}}, now=10.0)
    assert d.flags == ["watched"]
    assert {k: v for k, v in d.headers.items() if "ratelimit" in k} == {
        "x-ratelimit-limit": "3",
        "x-ratelimit-limit-requests": "3",
        "x-ratelimit-limit-tokens": "1000",
        "ratelimit-policy": '"rpm";q=3;w=60, "tpd";q=1000;w=86400;qu="tokens"',
    }


def test_disclosure_none_leaves_only_retry_after(make_policy: Any) -> None:
    p = make_policy(STANDARD.replace('rate_limit_disclosure_flagged "limits"', 'rate_limit_disclosure "none"'))
    for now in (1.0, 2.0, 3.0):
        assert p.decide({"account": {"id": "n"}}, now=now).headers == {}
    d = p.decide({"account": {"id": "n"}}, now=4.0)
    assert d.effect is Effect.THROTTLE and list(d.headers) == ["retry-after"]


def test_policy_options_are_checked() -> None:
    from dsl.parser import parse
    from dsl.policy_options import RateLimitHeaders, read_options

    module, _ = parse('policy "p" {\n  rate_limit_headers "ietf openai"\n  owner "me"\n}\n', "p.policy")
    header = next(d for d in module.decls if d.__class__.__name__ == "PolicyHeader")
    opts, diags = read_options(header)  # type: ignore[arg-type]
    assert diags == [] and opts == RateLimitHeaders(frozenset({"ietf", "openai"}))
    assert opts.level(flagged=True) == "full"
