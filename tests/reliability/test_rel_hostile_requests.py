"""Hostile requests over real gRPC to a `policyctl serve` process: random bytes as
every message, nested and huge JSON bodies, invalid UTF-8, megabyte prompts,
thousands of headers. Each gets INVALID_ARGUMENT or a clean decision (never
INTERNAL or UNKNOWN, never a dead server), and the server's memory stays bounded."""

from __future__ import annotations

import json
from collections.abc import Iterator

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy_engine.client import PolicyClient
from policy_engine.proto.envoy.service.auth.v3 import attribute_context_pb2 as attr
from policy_engine.proto.envoy.service.auth.v3 import external_auth_pb2 as authz
from policy_engine.proto.policyengine.v1 import policy_pb2 as pb
from policy_engine.server.app import free_port
from rel_harness import ctx
from served import Served
from server_harness import write_policy

METHODS = [
    "/policyengine.v1.PolicyService/Check",
    "/policyengine.v1.PolicyService/Report",
    "/policyengine.v1.PolicyService/GetPolicy",
    "/envoy.service.auth.v3.Authorization/Check",
    "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit",
]
CLEAN = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT}
MiB = 1 << 20


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("hostile")
    s = Served(
        ["--policies", str(write_policy(tmp / "p")), "--no-reload", "--log-level", "warning"],
        free_port("127.0.0.1"),
        tmp / "serve.log",
    ).wait_ready()
    yield s
    assert s.stop() == 0, s.log.read_text()


@pytest.fixture(scope="module")
def channel(served: Served) -> Iterator[grpc.Channel]:
    opts = [("grpc.max_send_message_length", 16 * MiB), ("grpc.max_receive_message_length", 16 * MiB)]
    with grpc.insecure_channel(served.target, options=opts) as ch:
        yield ch


def raw(channel: grpc.Channel, method: str, payload: bytes) -> grpc.StatusCode:
    call = channel.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)
    try:
        call(payload, timeout=10)
        return grpc.StatusCode.OK
    except grpc.RpcError as e:
        return e.code()


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], derandomize=True
)
@given(st.sampled_from(METHODS), st.binary(max_size=3000))
def test_random_bytes_as_any_message(channel: grpc.Channel, method: str, payload: bytes) -> None:
    assert raw(channel, method, payload) in CLEAN


def _ext_authz(body: bytes = b"", headers: dict[str, str] | None = None) -> authz.CheckRequest:
    http = attr.AttributeContext.HttpRequest(
        id="envoy-1",
        method="POST",
        path="/v1/chat/completions",
        host="api.example",
        headers={
            "x-account-id": "acct-h",
            "x-account-verification": "kyc",
            "x-account-age-days": "40",
            **(headers or {}),
        },
        raw_body=body,
    )
    req = authz.CheckRequest()
    req.attributes.request.http.CopyFrom(http)
    return req


def _hostile_envoy_bodies() -> dict[str, bytes]:
    deep = b'{"messages":' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    deep_obj = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    huge = json.dumps({"messages": [{"role": "user", "content": "x" * 3 * MiB}]}).encode()
    many = json.dumps({"messages": [{"role": "user", "content": "hi"}] * 100_000}).encode()
    bad_utf8 = b'{"messages":[{"role":"user","content":"\xff\xfe\xc3\x28 step by step \xed\xa0\x80"}]}'
    return {
        "deep": deep,
        "deep_obj": deep_obj,
        "huge": huge,
        "many": many,
        "bad_utf8": bad_utf8,
        "cut": huge[: MiB + 7],
        "escapes": b'{"prompt":"' + b"\\ud800\\u0000" * 50_000 + b'"}',
    }


def _invalid_utf8_header() -> bytes:
    # protobuf refuses to build it, so write the string's bytes on the wire directly.
    marker = "MARKERMARKER"
    wire = _ext_authz(headers={"x-account-tier": marker}).SerializeToString()
    return wire.replace(marker.encode(), b"\xff\xfe\xfd\xfc\xc3\x28\xed\xa0\x80\xf4\x90\x80")


def barrage(channel: grpc.Channel) -> dict[str, grpc.StatusCode]:
    out = {}
    authz_check = "/envoy.service.auth.v3.Authorization/Check"
    for name, body in _hostile_envoy_bodies().items():
        out[f"body:{name}"] = raw(channel, authz_check, _ext_authz(body).SerializeToString())
    out["header:invalid_utf8"] = raw(channel, authz_check, _invalid_utf8_header())
    headers = {f"x-junk-{i}": "v" * 20 for i in range(5000)}
    out["headers:5000"] = raw(channel, authz_check, _ext_authz(b"{}", headers).SerializeToString())
    prompt = pb.CheckRequest()
    prompt.request.prompt = "step by step " * (MiB // 13 * 3)  # ~3 MB, under the 4 MiB message limit
    prompt.account.id = "acct-big"
    out["check:3MB_prompt"] = raw(channel, "/policyengine.v1.PolicyService/Check", prompt.SerializeToString())
    out["check:over_limit"] = raw(channel, "/policyengine.v1.PolicyService/Check", b"\x0a" + b"\xff" * 8 * MiB)
    nested = b"\x0a\x02" * 10_000  # fields inside fields: deeper than upb's recursion limit
    out["check:nested"] = raw(channel, "/policyengine.v1.PolicyService/Check", nested)
    return out


def _rss_mib(s: Served) -> float:
    return s.rss_kib() / 1024


def test_hostile_bodies_headers_and_prompts_with_bounded_memory(served: Served, channel: grpc.Channel) -> None:
    first = barrage(channel)  # warms up every path and allocator arena
    assert all(code in CLEAN | {grpc.StatusCode.RESOURCE_EXHAUSTED} for code in first.values()), first
    assert first["check:over_limit"] == grpc.StatusCode.RESOURCE_EXHAUSTED  # the message-size limit
    assert first["check:nested"] == grpc.StatusCode.INVALID_ARGUMENT
    assert first["check:3MB_prompt"] == grpc.StatusCode.OK and first["headers:5000"] == grpc.StatusCode.OK
    base = _rss_mib(served)
    for _ in range(5):
        assert barrage(channel) == first  # the same answers every time
    grown = _rss_mib(served) - base
    with PolicyClient(served.target, timeout=5) as pe:
        assert pe.check(ctx("after")).allowed  # still serving
    assert grown < 64, f"RSS grew by {grown:.1f} MiB over 5 rounds of hostile requests"
    print(
        f"\nMEASURED hostile: answers={ {k: v.name for k, v in first.items()} } "
        f"rss_base_mib={base:.0f} rss_growth_5_rounds_mib={grown:.1f}"
    )
