"""OpenTelemetry spans, exported over OTLP/gRPC to a collector started here (in process,
on a loopback port): one SERVER span per Check, ext_authz Check, ShouldRateLimit and
Report with the decision on it, one child span per limit-store call, and the parent
taken from the caller (traceparent in gRPC metadata, B3 headers from Envoy)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any
from collections.abc import Callable

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as ts
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as ts_grpc

from policy_engine.client import PolicyClient
from policy_engine.proto.envoy.extensions.common.ratelimit.v3 import ratelimit_pb2
from policy_engine.proto.envoy.service.auth.v3 import attribute_context_pb2 as attr
from policy_engine.proto.envoy.service.auth.v3 import external_auth_pb2 as authz
from policy_engine.proto.envoy.service.auth.v3 import external_auth_pb2_grpc as authz_grpc
from policy_engine.proto.envoy.service.ratelimit.v3 import rls_pb2 as rls
from policy_engine.proto.envoy.service.ratelimit.v3 import rls_pb2_grpc as rls_grpc
from policy_engine.server.settings import SettingsError, load_settings
from server_harness import ServerThread

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
B3_TRACE, B3_SPAN = "80f198ee56343ba864fe8b2a57d3eff7", "e457b5a2e4d86bd1"
ACCOUNT = {"id": "acct-t", "age_days": 30, "verification": "kyc", "tier": "pro"}


class Collector(ts_grpc.TraceServiceServicer):
    """An OTLP trace receiver: keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[Any] = []
        self.lock = threading.Lock()

    def Export(self, request: ts.ExportTraceServiceRequest, context: Any) -> ts.ExportTraceServiceResponse:
        with self.lock:
            for rs in request.resource_spans:
                for ss in rs.scope_spans:
                    self.spans.extend(ss.spans)
        return ts.ExportTraceServiceResponse()

    def named(self, name: str) -> list[Any]:
        return [s for s in self.spans if s.name == name]


@pytest.fixture
def collector() -> Iterator[tuple[Collector, int]]:
    c = Collector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    ts_grpc.add_TraceServiceServicer_to_server(c, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield c, port
    server.stop(0)


def _attrs(span: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in span.attributes:
        v = kv.value
        kind = v.WhichOneof("value")
        out[kv.key] = [x.string_value for x in v.array_value.values] if kind == "array_value" else getattr(v, kind)
    return out


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_spans_for_every_api(
    start_server: Callable[..., ServerThread],
    collector: tuple[Collector, int],
    store: str,
    request: pytest.FixtureRequest,
) -> None:
    c, port = collector
    extra = {"store": request.getfixturevalue("redis_factory")().url} if store == "redis" else {}
    st = start_server(otlp_endpoint=f"http://127.0.0.1:{port}", **extra)
    traceparent = [("traceparent", f"00-{TRACE}-{PARENT}-01")]
    with grpc.insecure_channel(st.target) as ch, PolicyClient(st.target, channel=ch, timeout=5) as pe:
        from policy_engine.proto.policyengine.v1 import policy_pb2_grpc as pb_grpc
        from policy_engine.wire import context_to_check_request

        stub = pb_grpc.PolicyServiceStub(ch)
        ctx = {"account": ACCOUNT, "request": {"id": "t-1", "model": "m", "prompt": "hi", "max_tokens": 9000}}
        stub.Check(context_to_check_request(ctx), metadata=traceparent, timeout=5)
        unsampled = [("traceparent", f"00-{'1' * 32}-{PARENT}-00")]  # the caller decided not to sample
        stub.Check(context_to_check_request({**ctx, "request": {"model": "m"}}), metadata=unsampled, timeout=5)
        assert pe.report("t-1", prompt_tokens=5, completion_tokens=5) is True

        http = attr.AttributeContext.HttpRequest(
            id="e-1",
            method="POST",
            path="/v1/chat/completions",
            headers={"x-account-id": "acct-e", "x-b3-traceid": B3_TRACE, "x-b3-spanid": B3_SPAN, "x-b3-sampled": "1"},
        )
        req = authz.CheckRequest()
        req.attributes.request.http.CopyFrom(http)
        authz_grpc.AuthorizationStub(ch).Check(req, timeout=5)
        rl = rls.RateLimitRequest(
            domain="d",
            descriptors=[
                ratelimit_pb2.RateLimitDescriptor(
                    entries=[ratelimit_pb2.RateLimitDescriptor.Entry(key="account_id", value="acct-rl")]
                )
            ],
        )
        rls_grpc.RateLimitServiceStub(ch).ShouldRateLimit(rl, metadata=[("b3", f"{B3_TRACE}-{B3_SPAN}-1")], timeout=5)
    st.stop()  # the server's shutdown exports what is pending

    (check,) = c.named("policyengine.v1.PolicyService/Check")
    assert (check.trace_id.hex(), check.parent_span_id.hex()) == (TRACE, PARENT)
    assert check.kind == check.SPAN_KIND_SERVER
    a = _attrs(check)
    assert (a["policy_engine.effect"], a["policy_engine.status"], a["policy_engine.request_id"]) == (
        "allow",
        200,
        "t-1",
    )
    assert a["policy_engine.shadow"] == ["shadow_long:deny"] and len(a["policy_engine.policy_version"]) == 16
    assert a["policy_engine.rules"] == [] and a["policy_engine.store_seconds"] > 0
    store_spans = [s for s in c.spans if s.name == "policy_engine.store acquire" and s.parent_span_id == check.span_id]
    assert len(store_spans) == 1 and _attrs(store_spans[0])["db.system"] == store
    assert _attrs(store_spans[0])["policy_engine.hits"] == 2

    (report,) = c.named("policyengine.v1.PolicyService/Report")
    assert _attrs(report)["policy_engine.applied"] is True and _attrs(report)["policy_engine.request_id"] == "t-1"
    assert any(s.name == "policy_engine.store reconcile" and s.parent_span_id == report.span_id for s in c.spans)

    (ext,) = c.named("envoy.service.auth.v3.Authorization/Check")
    assert (ext.trace_id.hex(), ext.parent_span_id.hex()) == (B3_TRACE, B3_SPAN)
    (ratelimit,) = c.named("envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit")
    assert (ratelimit.trace_id.hex(), ratelimit.parent_span_id.hex()) == (B3_TRACE, B3_SPAN)
    assert not any(s.trace_id.hex() == "1" * 32 for s in c.spans)  # unsampled by the caller: not exported


def test_a_deny_is_on_the_span(start_server: Callable[..., ServerThread], collector: tuple[Collector, int]) -> None:
    c, port = collector
    st = start_server(otlp_endpoint=f"http://127.0.0.1:{port}", trace_sample_ratio=1.0)
    with PolicyClient(st.target, timeout=5) as pe:
        assert pe.check({"account": ACCOUNT, "request": {"model": "legacy-model"}}).effect == "deny"
    st.stop()
    (span,) = c.named("policyengine.v1.PolicyService/Check")
    a = _attrs(span)
    assert (a["policy_engine.effect"], a["policy_engine.status"], a["policy_engine.rules"]) == (
        "deny",
        403,
        ["blocked_model"],
    )
    assert a["policy_engine.reason"] == "model not offered"
    assert len(span.parent_span_id) == 0  # no caller context: a root span, sampled by the ratio


def test_otlp_settings(policy_dir: Path) -> None:
    with pytest.raises(SettingsError, match="otlp_endpoint: '127.0.0.1:4317': expected http://host:port"):
        load_settings(policies=policy_dir, otlp_endpoint="127.0.0.1:4317")
    with pytest.raises(SettingsError, match="trace_sample_ratio"):
        load_settings(policies=policy_dir, otlp_endpoint="http://127.0.0.1:4317", trace_sample_ratio=2)
    assert json.dumps(load_settings(policies=policy_dir, otlp_endpoint="http://127.0.0.1:4317").otlp_endpoint)
