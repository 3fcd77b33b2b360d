"""gRPC handlers: policyengine.v1.PolicyService, Envoy's ext_authz, rate-limit and access-log services.

Unary handlers receive the raw request bytes and parse them here, so that a
request that is not the expected message gets INVALID_ARGUMENT with a message
(grpcio's own deserialisation failure would be an opaque INTERNAL).

The Check path is kept lean: the message is read straight into the flat
`Context` by a reader generated from the field table (values proto types
cannot constrain are checked in it; pydantic runs only to explain a refusal),
the memory store is called without a coroutine, metrics are plain counters
and the decision log an O(1) append.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import grpc.aio
from google.protobuf.message import DecodeError, Message
from pydantic import ValidationError

import grpc
from policy_engine import wire
from policy_engine.context import Context, describe_validation_error
from policy_engine.decision import Decision, Effect, measure_errors
from policy_engine.engine import Engine
from policy_engine.ingress.identity import MappingError
from policy_engine.ingress.usage import UsageHeaders
from policy_engine.proto.envoy.service.accesslog.v3 import als_pb2
from policy_engine.proto.envoy.service.auth.v3 import external_auth_pb2 as authz
from policy_engine.proto.envoy.service.ratelimit.v3 import rls_pb2 as rls
from policy_engine.proto.policyengine.v1 import policy_pb2 as pb
from policy_engine.server.decision_log import DecisionLog
from policy_engine.server.envoy_mapping import (
    EnvoyMapper,
    build_check_response,
    build_rate_limit_response,
    deny_for_mapping_error,
)
from policy_engine.server.metrics import Metrics
from policy_engine.server.store_health import StoreHealth
from policy_engine.server.tracing import Tracing, metadata_headers

log = logging.getLogger("policy_engine.server")

POLICY_SERVICE = pb.DESCRIPTOR.services_by_name["PolicyService"].full_name
AUTHORIZATION_SERVICE = authz.DESCRIPTOR.services_by_name["Authorization"].full_name
RATE_LIMIT_SERVICE = rls.DESCRIPTOR.services_by_name["RateLimitService"].full_name
ACCESS_LOG_SERVICE = als_pb2.DESCRIPTOR.services_by_name["AccessLogService"].full_name


class InvalidRequest(ValueError):
    """A request that parses but does not fit the request-context schema."""


# --- protobuf CheckRequest -> Context ------------------------------------------------


def context_from_check_request(m: pb.CheckRequest) -> Context:
    """The flat Context a CheckRequest carries; InvalidRequest (with the JSON path) when it does not fit."""
    try:
        return wire.context_from_check_request(m)
    except ValidationError as e:
        raise InvalidRequest(describe_validation_error(e)) from e


def _parse(cls: type[Message], data: bytes) -> Any:
    try:
        return cls.FromString(data)
    except (DecodeError, RuntimeError) as e:  # RuntimeError: upb's recursion limit
        raise InvalidRequest(f"the request is not a valid {cls.DESCRIPTOR.full_name} message: {e}") from e


# --- the shared decision path ----------------------------------------------------------


class Decider:
    """Runs the engine for one request and records the decision (metrics, decision log)."""

    def __init__(
        self,
        engine: Engine,
        metrics: Metrics,
        decision_log: DecisionLog | None,
        store_health: StoreHealth,
        tracing: Tracing | None = None,
    ) -> None:
        self.engine = engine
        self.metrics = metrics
        self.decision_log = decision_log
        self.store_health = store_health
        self.tracing = tracing
        self._sync = engine.synchronous
        # Request ids for requests that come without one: unique per process, cheap to make.
        self._prefix = secrets.token_hex(4)
        self._ids = itertools.count(1)

    def new_request_id(self) -> str:
        return f"pe-{self._prefix}-{next(self._ids)}"

    async def decide(
        self, ctx: Context, api: str, explain: bool = False, trace_headers: Mapping[str, str] | None = None
    ) -> Decision:
        """The decision, recorded; a span of it when tracing is on (its parent from `trace_headers`)."""
        tracing = self.tracing
        if tracing is None:
            return await self._decide(ctx, api, explain)
        with tracing.span(SPAN_NAMES.get(api, api), tracing.parent(trace_headers or {})) as span:
            d = await self._decide(ctx, api, explain)
            span.decision(d)
            return d

    async def _decide(self, ctx: Context, api: str, explain: bool) -> Decision:
        t0 = time.perf_counter()
        if ctx.request_id is None:
            ctx.request_id = self.new_request_id()
        if self._sync:
            d = self.engine.decide_sync(ctx, explain=explain)
        else:
            d = await self.engine.decide(ctx, explain=explain)
        seconds = time.perf_counter() - t0
        errors = fail_open = 0
        error = None
        for s in d.limits:
            if s.error is not None:
                errors += 1
                error = s.error
                if not s.over:
                    fail_open = 1
        if d.measures:  # counted from the store's answers: no MeasureState is built
            measure_errors_, measure_error = measure_errors(d.measures)
            if measure_errors_:
                errors += measure_errors_
                error = measure_error
        self.metrics.observe(api, _LABELS[d.effect], d.rules, d.shadow, errors, seconds)
        if error is not None:
            self.store_health.failed(error, count=errors)
            if fail_open and d.effect <= Effect.FLAG:
                self.metrics.fail_open_decisions += 1
        elif self.store_health.failing and not self.store_health.store.local_answers and (d.limits or d.measures):
            self.store_health.answered()
        if self.decision_log is not None:
            self.decision_log.submit(api, ctx, d, seconds)
        return d


_LABELS = {e: e.label for e in Effect}
SPAN_NAMES = {
    "check": "policyengine.v1.PolicyService/Check",
    "ext_authz": "envoy.service.auth.v3.Authorization/Check",
    "ratelimit": "envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit",
    "forward_auth": "policy_engine.forward_auth",  # the HTTP endpoints of server/http_api.py
}


def _metadata(context: grpc.aio.ServicerContext, tracing: Tracing | None) -> dict[str, str] | None:
    """The call's gRPC metadata as headers, only when they are read (tracing)."""
    return None if tracing is None else metadata_headers(context.invocation_metadata())


Handler = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


async def _invalid(context: grpc.aio.ServicerContext, metrics: Metrics, api: str, message: str) -> None:
    metrics.invalid_request(api)
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, message)


# --- policyengine.v1.PolicyService --------------------------------------------------------


class PolicyServicer:
    def __init__(self, decider: Decider, policy_info: Callable[[], dict[str, Any]]) -> None:
        self.decider = decider
        self.policy_info = policy_info

    async def Check(self, raw: bytes, context: grpc.aio.ServicerContext) -> pb.CheckResponse:
        try:
            req = _parse(pb.CheckRequest, raw)
            ctx = context_from_check_request(req)
        except InvalidRequest as e:
            await _invalid(context, self.decider.metrics, "check", f"Check: {e}")
            raise  # unreachable: abort raises
        d = await self.decider.decide(ctx, "check", req.explain, _metadata(context, self.decider.tracing))
        return wire.decision_to_check_response(d, req.explain)

    async def Report(self, raw: bytes, context: grpc.aio.ServicerContext) -> pb.ReportResponse:
        try:
            req = _parse(pb.ReportRequest, raw)
            if not req.request_id:
                raise InvalidRequest("request_id is required")
        except InvalidRequest as e:
            await _invalid(context, self.decider.metrics, "report", f"Report: {e}")
            raise
        tracing = self.decider.tracing
        if tracing is None:
            return await self._report(req, context)
        parent = tracing.parent(_metadata(context, tracing) or {})
        with tracing.span("policyengine.v1.PolicyService/Report", parent) as span:
            span.set("policy_engine.request_id", req.request_id)
            resp = await self._report(req, context)
            span.set("policy_engine.applied", resp.applied)
            return resp

    async def _report(self, req: pb.ReportRequest, context: grpc.aio.ServicerContext) -> pb.ReportResponse:
        try:
            applied = await self.decider.engine.report(req.request_id, wire.usage_from_proto(req.usage))
        except Exception as e:  # noqa: BLE001 - the store is down or late: tell the caller to retry
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"Report: limit store failed: {type(e).__name__}: {e}")
            raise
        return pb.ReportResponse(applied=applied)

    async def GetPolicy(self, raw: bytes, context: grpc.aio.ServicerContext) -> pb.GetPolicyResponse:
        return wire.policy_info_to_proto(self.policy_info())


# --- envoy.service.auth.v3.Authorization ------------------------------------------------


def _context_from_dict(data: dict[str, Any]) -> Context:
    try:
        return Context.from_mapped(data)
    except ValidationError as e:
        raise InvalidRequest(describe_validation_error(e)) from e


class AuthorizationServicer:
    def __init__(self, decider: Decider, mapper: EnvoyMapper) -> None:
        self.decider = decider
        self.mapper = mapper

    async def Check(self, raw: bytes, context: grpc.aio.ServicerContext) -> authz.CheckResponse:
        try:
            req = _parse(authz.CheckRequest, raw)
            try:
                mapped = self.mapper.map_check(req, attributes=self.decider.engine.policy.attributes)
            except MappingError as e:
                self.decider.metrics.invalid_request("ext_authz")
                return deny_for_mapping_error(e)
            ctx = _context_from_dict(mapped.context)
        except InvalidRequest as e:
            await _invalid(context, self.decider.metrics, "ext_authz", f"ext_authz Check: {e}")
            raise
        # Envoy forwards the request's trace headers (traceparent, b3) with the HTTP request.
        headers = req.attributes.request.http.headers if self.decider.tracing is not None else None
        d = await self.decider.decide(ctx, "ext_authz", trace_headers=headers)
        return build_check_response(d, self.mapper.settings)


# --- envoy.service.ratelimit.v3.RateLimitService ---------------------------------------


class RateLimitServicer:
    def __init__(self, decider: Decider, mapper: EnvoyMapper) -> None:
        self.decider = decider
        self.mapper = mapper

    async def ShouldRateLimit(self, raw: bytes, context: grpc.aio.ServicerContext) -> rls.RateLimitResponse:
        try:
            req = _parse(rls.RateLimitRequest, raw)
            if not req.descriptors:
                raise InvalidRequest("no descriptors")
            mapped = self.mapper.map_rate_limit(req)
            ctx = _context_from_dict(mapped.context)
        except InvalidRequest as e:
            await _invalid(context, self.decider.metrics, "ratelimit", f"ShouldRateLimit: {e}")
            raise
        d = await self.decider.decide(ctx, "ratelimit", trace_headers=_metadata(context, self.decider.tracing))
        return build_rate_limit_response(d, len(req.descriptors))


# --- envoy.service.accesslog.v3.AccessLogService: the usage path -----------------------


class AccessLogServicer:
    """Turns upstream usage headers in Envoy's HTTP access logs into Report calls.

    The request id is the entry's `request_id` (Envoy's x-request-id, which the
    ext_authz mapping also uses); usage comes from the upstream response headers
    named in the settings (send them with `additional_response_headers_to_log`)."""

    def __init__(self, decider: Decider, headers: UsageHeaders) -> None:
        self.decider = decider
        self.headers = headers
        self.applied = 0
        self.skipped = 0

    async def StreamAccessLogs(
        self, requests: AsyncIterator[als_pb2.StreamAccessLogsMessage], context: grpc.aio.ServicerContext
    ) -> als_pb2.StreamAccessLogsResponse:
        async for msg in requests:
            if not msg.HasField("http_logs"):
                continue
            for entry in msg.http_logs.log_entry:
                await self._entry(entry)
        return als_pb2.StreamAccessLogsResponse()

    async def _entry(self, entry: Any) -> None:
        rid = entry.request.request_id or entry.request.request_headers.get("x-request-id", "")
        logged = entry.response.response_headers
        usage = self.headers.read(logged.get)
        if not rid or not usage.known:
            self.skipped += 1
            return
        try:
            if await self.decider.engine.report(rid, usage):
                self.applied += 1
        except Exception as e:  # noqa: BLE001 - a lost usage report must not end Envoy's log stream
            log.warning("access log: report for %s failed: %s: %s", rid, type(e).__name__, e)


# --- registration ---------------------------------------------------------------------


def _unary(fn: Handler, response: type[Message]) -> grpc.RpcMethodHandler:
    return grpc.unary_unary_rpc_method_handler(
        fn, request_deserializer=None, response_serializer=response.SerializeToString
    )


def generic_handlers(
    policy: PolicyServicer, authz_s: AuthorizationServicer, rl: RateLimitServicer, access_log: AccessLogServicer
) -> list[grpc.GenericRpcHandler]:
    return [
        grpc.method_handlers_generic_handler(
            POLICY_SERVICE,
            {
                "Check": _unary(policy.Check, pb.CheckResponse),
                "Report": _unary(policy.Report, pb.ReportResponse),
                "GetPolicy": _unary(policy.GetPolicy, pb.GetPolicyResponse),
            },
        ),
        grpc.method_handlers_generic_handler(
            AUTHORIZATION_SERVICE,
            {
                "Check": _unary(authz_s.Check, authz.CheckResponse),
            },
        ),
        grpc.method_handlers_generic_handler(
            RATE_LIMIT_SERVICE,
            {
                "ShouldRateLimit": _unary(rl.ShouldRateLimit, rls.RateLimitResponse),
            },
        ),
        grpc.method_handlers_generic_handler(
            ACCESS_LOG_SERVICE,
            {
                "StreamAccessLogs": grpc.stream_unary_rpc_method_handler(
                    access_log.StreamAccessLogs,
                    request_deserializer=als_pb2.StreamAccessLogsMessage.FromString,
                    response_serializer=als_pb2.StreamAccessLogsResponse.SerializeToString,
                ),
            },
        ),
    ]
