"""Small sync and async clients for policyengine.v1.PolicyService.

    with PolicyClient("127.0.0.1:50051") as pe:
        result = pe.check({"account": {"id": "acct-42"}, "request": {"model": "m"}})
        if result.effect in ("deny", "throttle"):
            ...  # answer result.http_status with result.headers
        pe.report(result.request_id, prompt_tokens=312, completion_tokens=845)

The context is validated locally (pydantic) before anything is sent, so a
typo in a field name fails here with the JSON path at fault. gRPC errors
(UNAVAILABLE, DEADLINE_EXCEEDED, INVALID_ARGUMENT) surface as grpc.RpcError;
whether to fail open is the caller's policy, not the client's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc.aio

import grpc
from dsl.schema import Field
from policy_engine.context import RequestContext
from policy_engine.ingress.usage import Usage
from policy_engine.proto.policyengine.v1 import admin_pb2 as apb
from policy_engine.proto.policyengine.v1 import admin_pb2_grpc as apb_grpc
from policy_engine.proto.policyengine.v1 import policy_pb2 as pb
from policy_engine.proto.policyengine.v1 import policy_pb2_grpc as pb_grpc
from policy_engine.wire import (
    check_response_to_dict,
    context_to_check_request,
    policy_info_from_proto,
    usage_to_proto,
)

DEFAULT_TIMEOUT = 1.0  # seconds; a check sits on the request path


@dataclass(frozen=True)
class LimitStateResult:
    limit_id: str
    key: str
    used: float
    max: float
    remaining: float
    reset_seconds: float
    over: bool
    error: str | None = None  # the store could not answer: the limit applied its fail mode


@dataclass(frozen=True)
class MeasureStateResult:
    measure_id: str
    key: str
    value: float | None  # None when the store failed
    charged: bool  # False: the measure did not apply and was only read
    error: str | None


@dataclass(frozen=True)
class CheckResult:
    effect: str  # "allow" | "deny" | "throttle" | "flag"
    http_status: int
    reason: str
    rule_ids: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    limits: list[LimitStateResult] = field(default_factory=list)
    measures: list[MeasureStateResult] = field(default_factory=list)
    shadow_matches: list[dict[str, str]] = field(default_factory=list)
    policy_version: str = ""
    request_id: str = ""
    retry_after_seconds: float = 0.0
    exempt: list[str] = field(default_factory=list)  # the exemptions the request matched
    notes: list[str] = field(default_factory=list)  # attributes sent but left out, and why
    explanation: Any = None

    @property
    def allowed(self) -> bool:
        return self.effect in ("allow", "flag")

    @classmethod
    def from_proto(cls, resp: pb.CheckResponse) -> CheckResult:
        d = check_response_to_dict(resp)
        d["limits"] = [LimitStateResult(**lim) for lim in d["limits"]]
        d["measures"] = [MeasureStateResult(**m) for m in d["measures"]]
        return cls(**d)


@dataclass(frozen=True)
class StoreInfo:
    backend: str
    url: str  # the password redacted
    state: str  # "ok" | "failing" | "unknown"
    last_error: str | None
    failing_since: float | None  # unix time
    errors: int
    outages: int


@dataclass(frozen=True)
class PolicyInfo:
    version: str
    files: list[str]
    rule_ids: list[str]
    limit_ids: list[str]
    measure_ids: list[str]
    loaded_at: float | None
    last_reload_error: str | None
    store: StoreInfo | None = None
    attributes: tuple[Field, ...] = ()  # the policy's declared attributes and their sources

    @classmethod
    def from_proto(cls, resp: pb.GetPolicyResponse) -> PolicyInfo:
        d = policy_info_from_proto(resp)
        if d["store"] is not None:
            d["store"] = StoreInfo(**d["store"])
        return cls(**d)


@dataclass(frozen=True)
class TLSFiles:
    """PEM files for a TLS channel: the CA that signed the server (None: the system's
    roots), and a client certificate and key for mutual TLS."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    server_name: str | None = None  # the name to verify, when it is not the target's host


def channel(target: str, tls: TLSFiles | None = None) -> grpc.Channel:
    """A blocking channel to `target` (host:port): plain, TLS or mutual TLS."""
    if tls is None:
        return grpc.insecure_channel(target)
    return grpc.secure_channel(target, _credentials(tls), _tls_options(tls))


def aio_channel(target: str, tls: TLSFiles | None = None) -> grpc.aio.Channel:
    if tls is None:
        return grpc.aio.insecure_channel(target)
    return grpc.aio.secure_channel(target, _credentials(tls), _tls_options(tls))


def _credentials(tls: TLSFiles) -> grpc.ChannelCredentials:
    if (tls.cert is None) != (tls.key is None):
        raise ValueError("mutual TLS needs both a client certificate and its key")
    return grpc.ssl_channel_credentials(
        root_certificates=tls.ca.read_bytes() if tls.ca else None,
        private_key=tls.key.read_bytes() if tls.key else None,
        certificate_chain=tls.cert.read_bytes() if tls.cert else None,
    )


def _tls_options(tls: TLSFiles) -> list[tuple[str, Any]]:
    return [("grpc.ssl_target_name_override", tls.server_name)] if tls.server_name else []


ContextLike = Mapping[str, Any] | RequestContext
_channel_of = channel  # PolicyClient's `channel` argument shadows the function


class PolicyClient:
    """Blocking client; owns its channel unless one is passed in."""

    def __init__(
        self,
        target: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        channel: grpc.Channel | None = None,
        tls: TLSFiles | None = None,
    ) -> None:
        self._own = channel is None
        self._channel = channel if channel is not None else _channel_of(target, tls)
        self._stub = pb_grpc.PolicyServiceStub(self._channel)
        self.timeout = timeout

    def check(self, context: ContextLike, explain: bool = False, *, timeout: float | None = None) -> CheckResult:
        req = context_to_check_request(context, explain=explain)
        return CheckResult.from_proto(self._stub.Check(req, timeout=timeout or self.timeout))

    def report(
        self,
        request_id: str,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        *,
        cached_input_tokens: int | None = None,
        reasoning_tokens: int | None = None,
        model: str | None = None,
        usage: Usage | None = None,
        timeout: float | None = None,
    ) -> bool:
        """Reconcile a request's real usage (the token counts and the model that served it, or
        `usage`); False when the server does not know the id."""
        if usage is None:
            usage = Usage(prompt_tokens, completion_tokens, cached_input_tokens, reasoning_tokens, model)
        req = pb.ReportRequest(request_id=request_id, usage=usage_to_proto(usage))
        return self._stub.Report(req, timeout=timeout or self.timeout).applied

    def get_policy(self, *, timeout: float | None = None) -> PolicyInfo:
        return PolicyInfo.from_proto(self._stub.GetPolicy(pb.GetPolicyRequest(), timeout=timeout or self.timeout))

    def close(self) -> None:
        if self._own:
            self._channel.close()

    def __enter__(self) -> PolicyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class KeyStateResult:
    """One key of a limit or measure, as the admin service reads it."""

    name: str
    block: str  # "limit" | "measure"
    kind: str  # "count" | "sum" | "distinct"
    key: str
    used: float
    max: float | None
    remaining: float | None
    full: bool | None  # one more unit would be over max
    window_seconds: float
    reset_seconds: float | None  # until one more unit fits
    clear_seconds: float  # until the window holds nothing of this key
    policy_version: str

    @classmethod
    def from_proto(cls, m: apb.KeyState) -> KeyStateResult:
        def opt(name: str) -> Any:
            return getattr(m, name) if m.HasField(name) else None

        return cls(
            m.name,
            m.block,
            m.kind,
            m.key,
            m.used,
            opt("max"),
            opt("remaining"),
            opt("full"),
            m.window_seconds,
            opt("reset_seconds"),
            m.clear_seconds,
            m.policy_version,
        )


class AdminClient:
    """Blocking client of policyengine.v1.AdminService (the server's `--admin-port`)."""

    def __init__(self, target: str, *, timeout: float = 5.0, tls: TLSFiles | None = None) -> None:
        self._channel = channel(target, tls)
        self._stub = apb_grpc.AdminServiceStub(self._channel)
        self.timeout = timeout

    def get_state(self, name: str, key: str, maximum: float | None = None) -> KeyStateResult:
        req = apb.GetStateRequest(name=name, key=key)
        if maximum is not None:
            req.max = maximum
        return KeyStateResult.from_proto(self._stub.GetState(req, timeout=self.timeout))

    def reset_state(self, name: str, key: str) -> tuple[bool, KeyStateResult]:
        """(whether the key held anything, its state just before)."""
        resp = self._stub.ResetState(apb.ResetStateRequest(name=name, key=key), timeout=self.timeout)
        return resp.existed, KeyStateResult.from_proto(resp.before)

    def dry_run(self, context: ContextLike) -> CheckResult:
        """Decide and explain `context` without counting it."""
        req = context_to_check_request(context, explain=True)
        return CheckResult.from_proto(self._stub.DryRunCheck(req, timeout=self.timeout))

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncPolicyClient:
    """asyncio client (grpc.aio); create it inside a running event loop."""

    def __init__(
        self,
        target: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        channel: grpc.aio.Channel | None = None,
        tls: TLSFiles | None = None,
    ) -> None:
        self._own = channel is None
        self._channel = channel if channel is not None else aio_channel(target, tls)
        self._stub = pb_grpc.PolicyServiceStub(self._channel)
        self.timeout = timeout

    async def check(self, context: ContextLike, explain: bool = False, *, timeout: float | None = None) -> CheckResult:
        req = context_to_check_request(context, explain=explain)
        return CheckResult.from_proto(await self._stub.Check(req, timeout=timeout or self.timeout))

    async def report(
        self,
        request_id: str,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        *,
        cached_input_tokens: int | None = None,
        reasoning_tokens: int | None = None,
        model: str | None = None,
        usage: Usage | None = None,
        timeout: float | None = None,
    ) -> bool:
        if usage is None:
            usage = Usage(prompt_tokens, completion_tokens, cached_input_tokens, reasoning_tokens, model)
        req = pb.ReportRequest(request_id=request_id, usage=usage_to_proto(usage))
        return (await self._stub.Report(req, timeout=timeout or self.timeout)).applied

    async def get_policy(self, *, timeout: float | None = None) -> PolicyInfo:
        resp = await self._stub.GetPolicy(pb.GetPolicyRequest(), timeout=timeout or self.timeout)
        return PolicyInfo.from_proto(resp)

    async def close(self) -> None:
        if self._own:
            await self._channel.close()

    async def __aenter__(self) -> AsyncPolicyClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
