"""The gRPC server through real gRPC on a free loopback port: our API, Envoy's APIs,
health, reflection, malformed requests, hot reload, metrics and the decision log."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any
from collections.abc import Callable

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from policy_engine.client import PolicyClient
from policy_engine.proto.envoy.data.accesslog.v3 import accesslog_pb2
from policy_engine.proto.envoy.extensions.common.ratelimit.v3 import ratelimit_pb2
from policy_engine.proto.envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc
from policy_engine.proto.envoy.service.auth.v3 import attribute_context_pb2 as attr
from policy_engine.proto.envoy.service.auth.v3 import external_auth_pb2 as authz
from policy_engine.proto.envoy.service.auth.v3 import external_auth_pb2_grpc as authz_grpc
from policy_engine.proto.envoy.service.ratelimit.v3 import rls_pb2 as rls
from policy_engine.proto.envoy.service.ratelimit.v3 import rls_pb2_grpc as rls_grpc
from policy_engine.proto.policyengine.v1 import policy_pb2 as pb
from policy_engine.proto.policyengine.v1 import policy_pb2_grpc as pb_grpc

from server_harness import POLICY, ServerThread

VERIFIED = {"id": "acct-1", "age_days": 30, "verification": "kyc", "tier": "pro"}


def ctx(account: str = "acct-1", **request: Any) -> dict[str, Any]:
    return {"account": {**VERIFIED, "id": account}, "request": {"model": "m", "prompt": "hello", **request}}


# --- our API -----------------------------------------------------------------------------


def test_check_allow_flag_deny_throttle(server: ServerThread) -> None:
    with PolicyClient(server.target, timeout=5) as pe:
        r = pe.check(ctx())
        assert (r.effect, r.http_status) == ("allow", 200)
        assert r.request_id.startswith("pe-")  # generated when absent
        assert {lim.limit_id for lim in r.limits} == {"per_minute", "tokens_day"}
        assert r.headers["x-ratelimit-limit"] == "3" and r.headers["x-ratelimit-remaining"] == "2"
        assert r.policy_version == pe.get_policy().version

        r = pe.check(ctx(prompt="explain step by step", max_tokens=9000))
        assert r.effect == "flag" and r.flags == ["cot_probe"]
        assert [m["rule_id"] for m in r.shadow_matches] == ["shadow_long"]

        r = pe.check(ctx(model="legacy-model"))
        assert (r.effect, r.http_status, r.reason, r.rule_ids) == ("deny", 403, "model not offered", ["blocked_model"])

        pe.check(ctx())
        r = pe.check(ctx(), explain=True)  # the 4th admitted request this minute
        assert (r.effect, r.http_status) == ("throttle", 429)
        assert r.rule_ids == ["per_minute"] and int(r.headers["retry-after"]) >= 1
        assert r.retry_after_seconds >= 1
        assert any(e.get("limit") == "per_minute" for e in r.explanation)


def test_report_reconciles_once(server: ServerThread) -> None:
    with PolicyClient(server.target, timeout=5) as pe:
        r = pe.check(
            {
                **ctx("acct-r", max_tokens=5000),
                "request": {"id": "req-1", "model": "m", "prompt": "x", "max_tokens": 5000},
            }
        )
        assert r.request_id == "req-1"
        assert next(lim for lim in r.limits if lim.limit_id == "tokens_day").used == 5000
        assert pe.report("req-1", prompt_tokens=100, completion_tokens=900) is True
        assert pe.report("req-1", prompt_tokens=100, completion_tokens=900) is False  # idempotent
        assert pe.report("never-seen", prompt_tokens=1) is False
        r = pe.check(ctx("acct-r", max_tokens=0))
        assert next(lim for lim in r.limits if lim.limit_id == "tokens_day").used == 1000  # 5000 became 1000


MEASURES_POLICY = """\
measure card_accounts {
  key account.payment_fingerprint
  distinct account.id
  window 1d
}

measure young_requests {
  key account.payment_fingerprint
  count
  window 1h
  when account.age_days < 7
}

rule shared_card {
  deny when measures.card_accounts > 2 and measures.young_requests >= 1
  reason "young accounts on a shared card"
}
"""


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_check_with_a_rule_that_reads_measures(
    start_server: Callable[..., ServerThread], tmp_path: Path, store: str, request: pytest.FixtureRequest
) -> None:
    folder = tmp_path / "measured"
    folder.mkdir()
    (folder / "main.policy").write_text(MEASURES_POLICY)
    extra: dict[str, Any] = {}
    if store == "redis":
        rp = request.getfixturevalue("redis_factory")()  # a private, empty server
        extra["redis"] = rp.url
    st = start_server(policies=folder, **extra)

    def check(account: str, age: float, explain: bool = False) -> Any:
        return pe.check(
            {
                "account": {"id": account, "age_days": age, "payment_fingerprint": "pf-1"},
                "request": {"model": "m", "prompt": "hi"},
            },
            explain=explain,
        )

    with PolicyClient(st.target, timeout=5) as pe:
        assert pe.get_policy().measure_ids == ["card_accounts", "young_requests"]
        r = check("old-1", 400)
        assert r.effect == "allow"
        assert [(m.measure_id, m.key, m.value, m.charged, m.error) for m in r.measures] == [
            ("card_accounts", "pf-1", 1.0, True, None),
            ("young_requests", "pf-1", 0.0, False, None),
        ]
        assert check("old-2", 400).effect == "allow"
        r = check("old-3", 400)  # three accounts, but no young one yet: the measures disagree
        assert r.effect == "allow" and [m.value for m in r.measures] == [3.0, 0.0]
        r = check("young-1", 2, explain=True)
        assert (r.effect, r.rule_ids) == ("deny", ["shared_card"])
        assert [(m.value, m.charged) for m in r.measures] == [(4.0, True), (1.0, True)]
        assert [e["status"] for e in r.explanation if "measure" in e] == ["applied", "applied"]
        # the next old account on the card reads the young count without adding to it
        r = check("old-4", 400)
        assert r.effect == "deny" and [(m.value, m.charged) for m in r.measures] == [(5.0, True), (1.0, False)]


def test_get_policy(server: ServerThread, policy_dir: Path) -> None:
    with PolicyClient(server.target, timeout=5) as pe:
        info = pe.get_policy()
    assert len(info.version) == 16 and info.last_reload_error is None
    assert info.files == [str(policy_dir / "main.policy")]
    assert info.rule_ids == ["blocked_model", "unverified_new", "cot_probe", "shadow_long"]
    assert info.limit_ids == ["per_minute", "tokens_day"] and info.measure_ids == []
    assert info.loaded_at is not None and abs(info.loaded_at - time.time()) < 60


# --- malformed requests ---------------------------------------------------------------------


def _raw_call(target: str, method: str, payload: bytes) -> grpc.RpcError:
    with grpc.insecure_channel(target) as ch:
        call = ch.unary_unary(method, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as info:
            call(payload, timeout=5)
    return info.value


@pytest.mark.parametrize(
    ("field", "value", "expect"),
    [
        ("verification", "bogus", "$.account.verification"),
        ("age_days", -1.0, "$.account.age_days"),
    ],
)
def test_invalid_context_is_invalid_argument(server: ServerThread, field: str, value: Any, expect: str) -> None:
    req = pb.CheckRequest()
    setattr(req.account, field, value)
    err = _raw_call(server.target, "/policyengine.v1.PolicyService/Check", req.SerializeToString())
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert expect in err.details() and err.details().startswith("Check: ")


@pytest.mark.parametrize(
    "method",
    [
        "/policyengine.v1.PolicyService/Check",
        "/envoy.service.auth.v3.Authorization/Check",
        "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit",
    ],
)
def test_random_bytes_are_invalid_argument(server: ServerThread, method: str) -> None:
    garbage = bytes(range(256)) * 3  # wire types and lengths that cannot parse
    err = _raw_call(server.target, method, garbage)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid" in err.details()


def test_report_needs_request_id_and_server_still_serves(server: ServerThread) -> None:
    err = _raw_call(server.target, "/policyengine.v1.PolicyService/Report", pb.ReportRequest().SerializeToString())
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "request_id is required" in err.details()
    with PolicyClient(server.target, timeout=5) as pe:
        assert pe.check(ctx()).effect == "allow"


def test_message_size_limit(start_server: Callable[..., ServerThread]) -> None:
    st = start_server(max_message_bytes=4096)
    with grpc.insecure_channel(st.target) as ch:
        stub = pb_grpc.PolicyServiceStub(ch)
        with pytest.raises(grpc.RpcError) as info:
            stub.Check(pb.CheckRequest(request=pb.Request(prompt="x" * 10_000)), timeout=5)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


# --- Envoy ---------------------------------------------------------------------------------


def _ext_authz(headers: dict[str, str], body: dict[str, Any] | None = None) -> authz.CheckRequest:
    raw = json.dumps(body).encode() if body is not None else b""
    http = attr.AttributeContext.HttpRequest(
        id="envoy-1",
        method="POST",
        path="/v1/chat/completions",
        host="api.example",
        headers=headers,
        raw_body=raw,
    )
    req = authz.CheckRequest()
    req.attributes.request.http.CopyFrom(http)
    req.attributes.source.address.socket_address.address = "198.51.100.7"
    return req


IDENTITY = {
    "x-account-id": "acct-env",
    "x-account-age-days": "40",
    "x-account-verification": "kyc",
    "x-account-tier": "pro",
    "user-agent": "sdk/1.0",
}


def test_ext_authz_with_headers_and_body(server: ServerThread) -> None:
    with grpc.insecure_channel(server.target) as ch:
        stub = authz_grpc.AuthorizationStub(ch)
        chat = {"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": "solve it step by step"}]}
        resp = stub.Check(_ext_authz({**IDENTITY, "x-request-id": "env-1"}, chat), timeout=5)
        assert resp.status.code == 0 and resp.HasField("ok_response")
        upstream = {h.header.key: h.header.value for h in resp.ok_response.headers}
        assert upstream["x-policy-flags"] == "cot_probe"
        assert resp.dynamic_metadata["request_id"] == "env-1"

        resp = stub.Check(_ext_authz(IDENTITY, {**chat, "model": "legacy-model"}), timeout=5)
        assert resp.status.code == 7 and resp.denied_response.status.code == 403
        assert json.loads(resp.denied_response.body)["error"] == {
            "type": "permission_denied",
            "reason": "model not offered",
            "rule": "blocked_model",
        }

        for _ in range(2):
            stub.Check(_ext_authz(IDENTITY, chat), timeout=5)
        resp = stub.Check(_ext_authz(IDENTITY, chat), timeout=5)
        assert resp.denied_response.status.code == 429
        hdrs = {h.header.key: h.header.value for h in resp.denied_response.headers}
        assert int(hdrs["retry-after"]) >= 1 and hdrs["x-ratelimit-limit"] == "3"
        assert hdrs["x-ratelimit-remaining"] == "0" and "x-ratelimit-reset" in hdrs


def test_should_rate_limit(server: ServerThread) -> None:
    req = rls.RateLimitRequest(
        domain="inference",
        descriptors=[
            ratelimit_pb2.RateLimitDescriptor(
                entries=[
                    ratelimit_pb2.RateLimitDescriptor.Entry(key="account_id", value="acct-rl"),
                    ratelimit_pb2.RateLimitDescriptor.Entry(key="verification", value="kyc"),
                    ratelimit_pb2.RateLimitDescriptor.Entry(key="account_age_days", value="90"),
                ]
            )
        ],
    )
    with grpc.insecure_channel(server.target) as ch:
        stub = rls_grpc.RateLimitServiceStub(ch)
        codes = [stub.ShouldRateLimit(req, timeout=5).overall_code for _ in range(4)]
        last = stub.ShouldRateLimit(req, timeout=5)
    assert codes == [rls.RateLimitResponse.OK] * 3 + [rls.RateLimitResponse.OVER_LIMIT]
    assert last.statuses[0].current_limit.requests_per_unit == 3 and last.statuses[0].limit_remaining == 0
    assert "retry-after" in {h.key for h in last.response_headers_to_add}


def test_access_log_usage_reports(server: ServerThread) -> None:
    with PolicyClient(server.target, timeout=5) as pe:
        pe.check({**ctx("acct-al"), "request": {"id": "al-1", "model": "m", "prompt": "x", "max_tokens": 4000}})
    entry = accesslog_pb2.HTTPAccessLogEntry()
    entry.request.request_id = "al-1"
    entry.response.response_headers["x-usage-prompt-tokens"] = "10"
    entry.response.response_headers["x-usage-completion-tokens"] = "20"
    msg = als_pb2.StreamAccessLogsMessage(
        http_logs=als_pb2.StreamAccessLogsMessage.HTTPAccessLogEntries(log_entry=[entry])
    )
    msg.identifier.log_name = "usage"
    with grpc.insecure_channel(server.target) as ch:
        als_pb2_grpc.AccessLogServiceStub(ch).StreamAccessLogs(iter([msg]), timeout=5)
    assert server.app is not None and server.app.access_log.applied == 1
    with PolicyClient(server.target, timeout=5) as pe:
        assert pe.report("al-1", prompt_tokens=1) is False  # already reconciled by the access log


# --- health and reflection --------------------------------------------------------------------


def test_health_and_reflection(server: ServerThread) -> None:
    with grpc.insecure_channel(server.target) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        for service in ("", "policyengine.v1.PolicyService", "envoy.service.auth.v3.Authorization"):
            assert (
                health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
                == health_pb2.HealthCheckResponse.SERVING
            )
        refl = reflection_pb2_grpc.ServerReflectionStub(ch)
        answers = list(
            refl.ServerReflectionInfo(
                iter(
                    [
                        reflection_pb2.ServerReflectionRequest(list_services=""),
                        reflection_pb2.ServerReflectionRequest(file_containing_symbol="policyengine.v1.PolicyService"),
                    ]
                ),
                timeout=5,
            )
        )
    names = {s.name for s in answers[0].list_services_response.service}
    assert {
        "policyengine.v1.PolicyService",
        "envoy.service.auth.v3.Authorization",
        "envoy.service.ratelimit.v3.RateLimitService",
        "grpc.health.v1.Health",
    } <= names
    assert answers[1].file_descriptor_response.file_descriptor_proto  # the descriptor bytes


# --- hot reload ---------------------------------------------------------------------------------


def _wait_for(pred: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_broken_edit_keeps_serving_good_edit_is_picked_up(server: ServerThread, policy_dir: Path) -> None:
    assert server.app is not None
    with PolicyClient(server.target, timeout=5) as pe:
        v1 = pe.get_policy().version
        (policy_dir / "main.policy").write_text(POLICY.replace("rule cot_probe {", "rule cot_probe {\n  flag whenn"))
        _wait_for(lambda: pe.get_policy().last_reload_error is not None)
        info = pe.get_policy()
        assert info.version == v1 and "main.policy:" in info.last_reload_error
        assert pe.check(ctx(model="legacy-model")).effect == "deny"  # the old version decides
        assert server.app.metrics.reloads["error"] >= 1

        (policy_dir / "main.policy").write_text(
            POLICY.replace('"legacy-model"', '"x"').replace(
                "request.model in blocked_models", 'request.model == "other-model"'
            )
        )
        _wait_for(lambda: pe.get_policy().version != v1)
        info = pe.get_policy()
        assert info.last_reload_error is None
        assert pe.check(ctx(model="legacy-model")).effect == "allow"
        assert pe.check(ctx("acct-2", model="other-model")).effect == "deny"

        # A data file edit reloads too.
        (policy_dir / "main.policy").write_text(POLICY)
        _wait_for(lambda: pe.check(ctx("acct-3", model="legacy-model")).effect == "deny")
        (policy_dir / "data" / "blocked_models.txt").write_text("legacy-model\nold-model\n")
        _wait_for(lambda: pe.check(ctx("acct-4", model="old-model")).effect == "deny")


def test_reload_trigger_without_watcher(start_server: Callable[..., ServerThread], policy_dir: Path) -> None:
    st = start_server(reload=False)
    assert st.app is not None
    (policy_dir / "main.policy").write_text(POLICY.replace("max 3\n", "max 5\n"))
    time.sleep(0.3)
    with PolicyClient(st.target, timeout=5) as pe:
        v1 = pe.get_policy().version
        assert st.call(st.app.reloader.reload_now()) is True  # what SIGHUP runs
        assert pe.get_policy().version != v1
        assert pe.check(ctx()).headers["x-ratelimit-limit"] == "5"


# --- metrics and decision log ------------------------------------------------------------------


def test_metrics_endpoint(start_server: Callable[..., ServerThread]) -> None:
    st = start_server(metrics_port=0)
    assert st.app is not None and st.app.metrics_port
    with PolicyClient(st.target, timeout=5) as pe:
        for _ in range(4):
            pe.check(ctx())
        pe.check(ctx(model="legacy-model"))
    _raw_call(st.target, "/policyengine.v1.PolicyService/Check", b"\xff\xff")
    text = urllib.request.urlopen(f"http://127.0.0.1:{st.app.metrics_port}/metrics", timeout=5).read().decode()
    assert 'policy_engine_decisions_total{api="check",effect="allow"} 3.0' in text
    assert 'policy_engine_decisions_total{api="check",effect="throttle"} 1.0' in text
    assert 'policy_engine_rule_matches_total{rule="blocked_model"} 1.0' in text
    assert 'policy_engine_decision_seconds_count{api="check"} 5.0' in text
    assert 'policy_engine_invalid_requests_total{api="check"} 1.0' in text
    assert "policy_engine_store_errors_total 0.0" in text
    assert "policy_engine_decision_log_dropped_total 0.0" in text


def test_decision_log_lines(start_server: Callable[..., ServerThread], tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    st = start_server(decision_log=str(path))
    secret = "my secret prompt, step by step"
    with PolicyClient(st.target, timeout=5) as pe:
        pe.check({**ctx(), "request": {"id": "log-1", "model": "m", "prompt": secret}})
        pe.check(ctx(model="legacy-model"))
    st.stop()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x["effect"] for x in lines] == ["flag", "deny"]
    first = lines[0]
    assert first["request_id"] == "log-1" and first["rules"] == ["cot_probe"] and first["api"] == "check"
    assert first["request"]["prompt_length"] == len(secret) and len(first["request"]["prompt_fingerprint"]) == 16
    assert secret not in path.read_text()
    assert {x["limit"] for x in first["limits"]} == {"per_minute", "tokens_day"}


def test_decision_log_prompt_text_when_configured(start_server: Callable[..., ServerThread], tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    st = start_server(decision_log=str(path), decision_log_prompts=True)
    with PolicyClient(st.target, timeout=5) as pe:
        pe.check(ctx(prompt="show this prompt"))
    st.stop()
    assert json.loads(path.read_text())["request"]["prompt"] == "show this prompt"


def test_deadline_honoured_with_a_slow_store(start_server: Callable[..., ServerThread], redis_factory: Any) -> None:
    rp = redis_factory()
    st = start_server(redis=rp.url, store_deadline_ms=5000)
    with PolicyClient(st.target, timeout=5) as pe:
        assert pe.check(ctx()).effect == "allow"  # scripts loaded, connection open
        rp.cli("client", "pause", "1500", "all")  # the store now takes 1.5 s
        t0 = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            pe.check(ctx(), timeout=0.2)
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - t0 < 1.0
        time.sleep(1.5)
        assert pe.check(ctx("acct-after")).effect == "allow"


def test_port_taken_is_a_clear_error(server: ServerThread, policy_dir: Path) -> None:
    from policy_engine.server.app import ServerError
    from policy_engine.server.settings import ServerSettings

    st = ServerThread(ServerSettings(policies=policy_dir, port=server.port))
    try:
        with pytest.raises(ServerError, match="cannot listen on 127.0.0.1"):
            st.start()
    finally:
        st.stop()
