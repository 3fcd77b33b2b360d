"""dict and Decision <-> policyengine.v1 conversions: what goes out comes back, nulls included."""

from __future__ import annotations

from dsl.schema import SCHEMA
from policy_engine.ingress.usage import Usage

import asyncio
import json
from concurrent import futures
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import grpc
from dsl.schema import Field
from dsl.types import FLOAT, STRING, MapType, SetType
from policy_engine.client import AsyncPolicyClient, PolicyClient
from policy_engine.context import RequestContext
from policy_engine.decision import Decision, Effect, LimitState, MeasureState, ShadowMatch
from policy_engine.proto.policyengine.v1 import policy_pb2 as pb
from policy_engine.proto.policyengine.v1 import policy_pb2_grpc
from policy_engine.wire import (
    ConversionError,
    check_request_to_context,
    check_request_to_model,
    check_response_to_dict,
    context_to_check_request,
    decision_to_check_response,
    policy_info_from_proto,
    policy_info_to_proto,
    usage_from_proto,
    usage_to_proto,
)

DESIGN_EXAMPLE: dict[str, Any] = {
    "request": {
        "id": "r-1",
        "ts": 1764300000.0,
        "model": "frontier-large",
        "prompt": "text or the concatenated messages",
        "max_tokens": 1024,
        "prompt_tokens": 312,
    },
    "account": {
        "id": "acct-42",
        "org": "org-7",
        "age_days": 120,
        "verification": "kyc",
        "tier": "pro",
        "payment_fingerprint": "pf-9a1",
        "labels": ["partner"],
    },
    "api_key": {"id": "key-1", "scopes": ["inference"]},
    "client": {"ip": "203.0.113.9", "country": "US", "asn": 64500, "user_agent": "sdk/1.2"},
    "usage": {"prompt_tokens": 312, "completion_tokens": 845},
}


def roundtrip(ctx: dict[str, Any]) -> dict[str, Any]:
    wire = context_to_check_request(ctx).SerializeToString()
    return check_request_to_context(pb.CheckRequest.FromString(wire))


def test_design_example_round_trips_through_the_wire() -> None:
    assert roundtrip(DESIGN_EXAMPLE) == RequestContext.model_validate(DESIGN_EXAMPLE).model_dump()
    assert roundtrip(DESIGN_EXAMPLE)["account"]["labels"] == ["partner"]


def test_empty_values_differ_from_null() -> None:
    ctx = {"request": {"prompt": "", "max_tokens": 0}, "account": {"labels": []}, "api_key": {"scopes": None}}
    back = roundtrip(ctx)
    assert back["request"]["prompt"] == "" and back["request"]["max_tokens"] == 0
    assert back["request"]["model"] is None and back["request"]["prompt_tokens"] is None
    assert back["account"]["labels"] == [] and back["api_key"]["scopes"] is None
    assert back["usage"] is None


def test_usage_present_but_empty_is_not_null() -> None:
    assert roundtrip({"usage": {}})["usage"] == dict.fromkeys(SCHEMA["usage"])
    assert roundtrip({})["usage"] is None


def test_explain_flag_is_carried() -> None:
    assert context_to_check_request({}, explain=True).explain is True


def test_model_in_model_out() -> None:
    model = RequestContext.model_validate(DESIGN_EXAMPLE)
    assert check_request_to_model(context_to_check_request(model)) == model


def test_invalid_context_is_rejected_before_the_wire() -> None:
    with pytest.raises(ValidationError, match="extra"):
        context_to_check_request({"account": {"idd": "x"}})
    with pytest.raises(ValidationError):
        context_to_check_request({"request": {"max_tokens": -1}})


def test_bad_values_on_the_wire_are_rejected_when_read() -> None:
    req = pb.CheckRequest(account=pb.Account(verification="passport"))
    with pytest.raises(ValidationError, match="verification"):
        check_request_to_model(req)


def test_usage_helpers() -> None:
    assert usage_from_proto(usage_to_proto(Usage(10, None))) == Usage(10, None)
    every = Usage(1000, 500, 800, 300, "frontier-large-2026-06")
    assert usage_from_proto(usage_to_proto(every)) == every
    with pytest.raises(ConversionError, match="completion_tokens"):
        usage_to_proto(Usage(1, -5))
    with pytest.raises(ConversionError, match="reasoning_tokens"):
        usage_to_proto(Usage(reasoning_tokens=True))  # type: ignore[arg-type]
    with pytest.raises(ConversionError, match="usage.model"):
        usage_to_proto(Usage(1, model=7))  # type: ignore[arg-type]


# A property: any context the schema accepts survives dict -> proto -> dict.
_text = st.one_of(st.none(), st.text(max_size=20))
_count = st.one_of(st.none(), st.integers(min_value=0, max_value=2**63))
_float = st.one_of(st.none(), st.floats(min_value=0, max_value=1e12, allow_nan=False))
_labels = st.one_of(st.none(), st.lists(st.text(max_size=8), max_size=4))
contexts = st.fixed_dictionaries(
    {
        "request": st.fixed_dictionaries(
            {"id": _text, "ts": _float, "model": _text, "prompt": _text, "max_tokens": _count, "prompt_tokens": _count}
        ),
        "account": st.fixed_dictionaries(
            {
                "id": _text,
                "org": _text,
                "age_days": _float,
                "verification": st.sampled_from([None, "none", "email", "phone", "kyc"]),
                "tier": _text,
                "payment_fingerprint": _text,
                "labels": _labels,
            }
        ),
        "api_key": st.fixed_dictionaries({"id": _text, "scopes": _labels}),
        "client": st.fixed_dictionaries(
            {"ip": _text, "country": _text, "asn": st.one_of(st.none(), st.integers(0, 2**32 - 1)), "user_agent": _text}
        ),
        "usage": st.one_of(st.none(), st.fixed_dictionaries({"prompt_tokens": _count, "completion_tokens": _count})),
    }
)


@settings(max_examples=150, deadline=None)
@given(contexts)
def test_any_valid_context_round_trips(ctx: dict[str, Any]) -> None:
    assert roundtrip(ctx) == RequestContext.model_validate(ctx).model_dump()


# --- decisions -------------------------------------------------------------


def test_decision_to_response_and_back() -> None:
    decision = Decision(
        effect=Effect.DENY,
        status=403,
        reason="too many distinct accounts per template",
        rules=["campaign_template"],
        flags=["cot_probe"],
        headers={"x-policy": "1"},
        policy_version="abc123",
        request_id="r-1",
        limits=[
            LimitState(
                limit="accts_per_template",
                key="tmpl-9",
                kind="distinct",
                used=51,
                max=50,
                remaining=0,
                reset=1800,
                over=True,
                committed=False,
            )
        ],
        measures=[
            MeasureState("card_accounts", "pf-1", 4, True),
            MeasureState("suspicion", "acct-1", None, False, "redis store: TimeoutError"),
        ],
        shadow=[ShadowMatch("new_rule", Effect.DENY, "brand new"), ShadowMatch("bare_rule", Effect.THROTTLE, "")],
        trace=[{"rule": "campaign_template", "matched": True}],
    )
    wire = decision_to_check_response(decision, explain=True).SerializeToString()
    out = check_response_to_dict(pb.CheckResponse.FromString(wire))
    assert out["effect"] == "deny" and out["http_status"] == 403
    assert out["rule_ids"] == ["campaign_template"] and out["flags"] == ["cot_probe"]
    assert out["limits"] == [
        {
            "limit_id": "accts_per_template",
            "key": "tmpl-9",
            "used": 51.0,
            "max": 50.0,
            "remaining": 0.0,
            "reset_seconds": 1800.0,
            "over": True,
            "error": None,
        }
    ]
    # what each shadow match would have done, not "allow" (the bug: only names were sent)
    assert out["shadow_matches"] == [
        {"rule_id": "new_rule", "effect": "deny", "reason": "brand new"},
        {"rule_id": "bare_rule", "effect": "throttle", "reason": ""},
    ]
    assert out["measures"] == [
        {"measure_id": "card_accounts", "key": "pf-1", "value": 4.0, "charged": True, "error": None},
        {
            "measure_id": "suspicion",
            "key": "acct-1",
            "value": None,
            "charged": False,
            "error": "redis store: TimeoutError",
        },
    ]
    assert out["explanation"] == decision.trace
    assert out["policy_version"] == "abc123" and out["request_id"] == "r-1" and out["headers"] == {"x-policy": "1"}


def test_throttle_decision_and_its_trace() -> None:
    d = Decision(
        effect=Effect.THROTTLE,
        status=429,
        reason="rpm",
        rules=["rpm"],
        retry_after=12.5,
        limits=[LimitState("rpm", "acct-1", "count", 61, 60, 0, 12.5, True, False)],
        trace=[{"x": 1}],
    )
    resp = decision_to_check_response(d)
    assert resp.effect == pb.EFFECT_THROTTLE and resp.http_status == 429
    assert resp.retry_after_seconds == 12.5 and resp.limits[0].limit_id == "rpm"
    assert not resp.HasField("explanation_json"), "the trace is only sent when asked for"
    assert json.loads(decision_to_check_response(d, explain=True).explanation_json) == [{"x": 1}]


def test_policy_info_round_trip() -> None:
    info = {
        "version": "h1",
        "files": ["a.policy"],
        "rule_ids": ["r1"],
        "limit_ids": ["l1"],
        "measure_ids": ["m1"],
        "loaded_at": 1764300000.25,
        "last_reload_error": "b.policy:3:1: parse error",
        "store": {
            "backend": "redis",
            "url": "redis://u:***@h:1/0",
            "state": "failing",
            "errors": 3,
            "outages": 1,
            "last_error": "cannot reach Redis",
            "failing_since": 1764300001.5,
        },
        "attributes": (
            Field(
                "account",
                "risk_score",
                FLOAT,
                0,
                declared=True,
                api="risk",
                header="x-risk-score",
                claim="risk",
                metadata=("fraud", "score"),
                context_extension="risk",
                asgi="state.risk",
            ),
            Field(
                "request", "headers", MapType(STRING, STRING), 0, declared=True, api="request.headers", all_headers=True
            ),
            Field("account", "groups", SetType(STRING), 0, declared=True, api="account.groups"),
        ),
    }
    assert (
        policy_info_from_proto(pb.GetPolicyResponse.FromString(policy_info_to_proto(info).SerializeToString())) == info
    )
    ok = {**info, "store": {**info["store"], "state": "ok", "last_error": None, "failing_since": None}}
    assert policy_info_from_proto(policy_info_to_proto(ok)) == ok
    assert policy_info_from_proto(policy_info_to_proto({"version": "h"}))["last_reload_error"] is None
    assert policy_info_from_proto(policy_info_to_proto({"version": "h"}))["attributes"] == ()


# --- the clients, over a real gRPC channel -----------------------------------
# The servicer below is a test harness (the real server comes with the engine):
# it answers from what it received, so the assertions see the client's wire
# encoding and its decoding of responses, both through `convert`.


class EchoServicer(policy_pb2_grpc.PolicyServiceServicer):
    def __init__(self) -> None:
        self.reports: list[tuple[str, Usage]] = []

    def Check(self, request: pb.CheckRequest, context: grpc.ServicerContext) -> pb.CheckResponse:
        ctx = check_request_to_model(request)
        effect = Effect.DENY if ctx.account.verification == "none" else Effect.ALLOW
        return decision_to_check_response(
            Decision(
                effect=effect,
                status=403 if effect is Effect.DENY else 200,
                reason=f"account {ctx.account.id}",
                request_id=ctx.request.id,
                flags=sorted(ctx.account.labels or []),
                trace={"echo": check_request_to_context(request)},
            ),  # type: ignore[arg-type]
            explain=request.explain,
        )

    def Report(self, request: pb.ReportRequest, context: grpc.ServicerContext) -> pb.ReportResponse:
        self.reports.append((request.request_id, usage_from_proto(request.usage)))
        return pb.ReportResponse(applied=request.request_id == "r-1")

    def GetPolicy(self, request: pb.GetPolicyRequest, context: grpc.ServicerContext) -> pb.GetPolicyResponse:
        return policy_info_to_proto({"version": "v1", "files": ["base.policy"], "loaded_at": 5.5})


@pytest.fixture()
def echo_server() -> Any:
    servicer = EchoServicer()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    policy_pb2_grpc.add_PolicyServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", servicer
    server.stop(None)


def test_sync_client(echo_server: Any) -> None:
    target, servicer = echo_server
    with PolicyClient(target, timeout=5) as client:
        res = client.check(DESIGN_EXAMPLE, explain=True)
        assert res.effect == "allow" and res.allowed and res.http_status == 200
        assert res.reason == "account acct-42" and res.request_id == "r-1" and res.flags == ["partner"]
        assert res.explanation == {"echo": RequestContext.model_validate(DESIGN_EXAMPLE).model_dump()}
        denied = client.check({"account": {"id": "a", "verification": "none"}})
        assert denied.effect == "deny" and denied.http_status == 403 and denied.explanation is None
        assert client.report("r-1", prompt_tokens=300, completion_tokens=None) is True
        assert client.report("r-unknown", completion_tokens=7) is False
        assert client.report("r-2", 10, 5, cached_input_tokens=8, reasoning_tokens=2, model="m-2") is False
        info = client.get_policy()
        assert info.version == "v1" and info.files == ["base.policy"] and info.loaded_at == 5.5
        assert info.last_reload_error is None
        with pytest.raises(ValidationError):
            client.check({"acount": {}})
    assert servicer.reports == [
        ("r-1", Usage(300, None)),
        ("r-unknown", Usage(None, 7)),
        ("r-2", Usage(10, 5, 8, 2, "m-2")),
    ]


def test_async_client(echo_server: Any) -> None:
    target, servicer = echo_server

    async def run() -> None:
        async with AsyncPolicyClient(target, timeout=5) as client:
            res = await client.check({"request": {"id": "r-1"}, "account": {"labels": ["b", "a"]}})
            assert res.effect == "allow" and res.flags == ["a", "b"] and res.request_id == "r-1"
            assert await client.report("r-1", 1, 2) is True
            assert await client.report("r-3", usage=Usage(reasoning_tokens=4, model="m")) is False
            assert (await client.get_policy()).version == "v1"

    asyncio.run(run())
    assert servicer.reports == [("r-1", Usage(1, 2)), ("r-3", Usage(reasoning_tokens=4, model="m"))]


def test_the_engines_decision_model_converts() -> None:
    for eff, wire in [
        (Effect.DENY, pb.EFFECT_DENY),
        (Effect.THROTTLE, pb.EFFECT_THROTTLE),
        (Effect.FLAG, pb.EFFECT_FLAG),
        (Effect.ALLOW, pb.EFFECT_ALLOW),
    ]:
        d = Decision(
            effect=eff,
            status=418,
            reason="r",
            rules=["rule_a"],
            flags=["f"],
            shadow=[ShadowMatch("s1", Effect.FLAG, "s")],
            limits=[
                LimitState(
                    limit="rpm",
                    key="acct-1",
                    kind="count",
                    used=3,
                    max=60,
                    remaining=57,
                    reset=40.0,
                    over=False,
                    committed=True,
                )
            ],
            measures=[MeasureState("cards", "pf-1", 3.0, True), MeasureState("score", "a", None, False, "down")],
            retry_after=2.0,
            policy_version="v9",
            request_id="r-9",
            trace=[{"rule": "rule_a"}],
        )
        resp = decision_to_check_response(d, explain=True)
        assert resp.effect == wire, eff  # an IntEnum must not be read as a wire number
        assert (resp.http_status, list(resp.rule_ids), resp.policy_version, resp.request_id) == (
            418,
            ["rule_a"],
            "v9",
            "r-9",
        )
        assert resp.limits[0].limit_id == "rpm" and resp.limits[0].max == 60 and resp.limits[0].reset_seconds == 40
        assert [(m.rule_id, m.effect, m.reason) for m in resp.shadow_matches] == [("s1", pb.EFFECT_FLAG, "s")]
        assert [(m.measure_id, m.key, m.HasField("value"), m.value, m.charged, m.error) for m in resp.measures] == [
            ("cards", "pf-1", True, 3.0, True, ""),
            ("score", "a", False, 0.0, False, "down"),
        ]
        assert json.loads(resp.explanation_json) == [{"rule": "rule_a"}]
