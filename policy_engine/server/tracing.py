"""OpenTelemetry spans for Check, Report, ext_authz and ShouldRateLimit, exported over OTLP.

Optional: it needs the `otel` extra (`pip install policy-engine[otel]`) and runs
only when `otlp_endpoint` is set; otherwise nothing here is imported and the
request path pays one `is None` test.

Each call gets a SERVER span (`policyengine.v1.PolicyService/Check`, ...) with
the decision: `policy_engine.effect`, `.status`, `.rules`, `.shadow`,
`.policy_version`, `.request_id`, `.store_seconds`; each limit-store call a
child span (`policy_engine.store acquire`). The parent comes from the caller:
gRPC metadata for our API, the HTTP headers Envoy forwards for ext_authz
(`traceparent`, or Zipkin's `b3` / `x-b3-*`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

from policy_engine.decision import Decision
from policy_engine.state.base import Hit, HitResult, LimitSpec, Store, SyncStore

try:  # the otel extra
    from opentelemetry import trace
    from opentelemetry.context import Context as OtelContext
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    HAVE_OTEL = True
except ImportError:  # pragma: no cover - exercised where the extra is not installed
    HAVE_OTEL = False

MISSING = "OpenTelemetry is not installed: pip install 'policy-engine[otel]'"

# Seconds spent in store calls by the current request (a list, so a child task can add to it).
_store_time: ContextVar[list[float] | None] = ContextVar("policy_engine_store_time", default=None)


class Tracing:
    """A tracer provider exporting to one OTLP/gRPC endpoint (`http://host:4317`: plaintext;
    `https://`: TLS), sampling `ratio` of the traces that do not come with a decision."""

    def __init__(
        self, endpoint: str, *, service_name: str = "policy-engine", ratio: float = 1.0, worker: int = 0
    ) -> None:
        if not HAVE_OTEL:
            raise RuntimeError(MISSING)
        resource = Resource.create({"service.name": service_name, "service.instance.id": f"worker-{worker}"})
        self.provider = TracerProvider(resource=resource, sampler=ParentBased(TraceIdRatioBased(ratio)))
        exporter = OTLPSpanExporter(endpoint=endpoint, insecure=endpoint.startswith("http://"))
        self.provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500))
        self.tracer = self.provider.get_tracer("policy_engine")
        self._w3c = TraceContextTextMapPropagator()

    def parent(self, headers: Mapping[str, str]) -> Any:
        """The caller's trace context from `traceparent`, `b3` or `x-b3-*` (lower-case names)."""
        if "traceparent" in headers:
            return self._w3c.extract(headers)
        return _b3(headers)

    def span(self, name: str, parent: Any) -> Any:
        """A SERVER span, current for its `with` block; store calls inside it add their time."""
        return _RequestSpan(self.tracer, name, parent)

    def shutdown(self) -> None:
        """Export what is pending, then stop (the server's shutdown)."""
        self.provider.shutdown()


class _RequestSpan:
    def __init__(self, tracer: Any, name: str, parent: Any) -> None:
        self._cm = tracer.start_as_current_span(name, context=parent, kind=SpanKind.SERVER)
        self._clock: list[float] = [0.0]

    def __enter__(self) -> Any:
        self._token = _store_time.set(self._clock)
        self.span = self._cm.__enter__()
        return self

    def decision(self, d: Decision) -> None:
        s = self.span
        if not s.is_recording():
            return
        s.set_attribute("policy_engine.effect", d.effect.label)
        s.set_attribute("policy_engine.status", d.status)
        s.set_attribute("policy_engine.rules", d.rules)
        if d.shadow:
            s.set_attribute("policy_engine.shadow", [f"{m.rule}:{m.effect.label}" for m in d.shadow])
        if d.reason:
            s.set_attribute("policy_engine.reason", d.reason)
        s.set_attribute("policy_engine.policy_version", d.policy_version)
        if d.request_id:
            s.set_attribute("policy_engine.request_id", d.request_id)
        errors = [lim.error for lim in d.limits if lim.error]
        if errors:
            s.set_attribute("policy_engine.store_error", errors[0])

    def set(self, key: str, value: Any) -> None:
        self.span.set_attribute(key, value)

    def __exit__(self, *exc: Any) -> None:
        self.span.set_attribute("policy_engine.store_seconds", round(self._clock[0], 6))
        self._cm.__exit__(*exc)
        _store_time.reset(self._token)


def _b3(headers: Mapping[str, str]) -> Any:
    """Zipkin's B3, as Envoy's Zipkin tracer sends it: `b3: trace-span-sampled` or `x-b3-*`."""
    single = headers.get("b3")
    if single:
        parts = single.split("-")
        trace_id, span_id = (parts + ["", ""])[:2]
        sampled = parts[2] if len(parts) > 2 else "1"
    else:
        trace_id, span_id = headers.get("x-b3-traceid", ""), headers.get("x-b3-spanid", "")
        sampled = headers.get("x-b3-sampled", "1")
    try:
        tid, sid = int(trace_id, 16), int(span_id, 16)
    except ValueError:
        return None
    if not tid or not sid:
        return None
    flags = TraceFlags(TraceFlags.SAMPLED if sampled in ("1", "d", "true") else TraceFlags.DEFAULT)
    ctx = SpanContext(trace_id=tid, span_id=sid, is_remote=True, trace_flags=flags)
    return trace.set_span_in_context(NonRecordingSpan(ctx), OtelContext())


def metadata_headers(metadata: Iterable[tuple[str, Any]] | None) -> dict[str, str]:
    """gRPC metadata (key, value) pairs as lower-case headers; binary values left out."""
    return {k.lower(): v for k, v in (metadata or ()) if isinstance(v, str)}


class TracedStore(Store):
    """A store whose calls are child spans of the request's span, their time summed
    into its `policy_engine.store_seconds`. Installed only when tracing is on."""

    def __init__(self, store: Store, tracer: Any) -> None:
        self.inner = store
        self.tracer = tracer
        self.backend = store.backend  # type: ignore[misc]

    def _timed(self, what: str) -> Any:
        return _StoreSpan(self.tracer, what, self.backend)

    async def acquire(
        self, hits: Sequence[Hit], now: float, *, admitted: bool = True, request_id: str | None = None
    ) -> list[HitResult]:
        with self._timed("acquire") as sp:
            out = await self.inner.acquire(hits, now, admitted=admitted, request_id=request_id)
            sp.hits(len(hits), out)
            return out

    async def reconcile(self, request_id: str, actual: dict[str, float], now: float) -> bool:
        with self._timed("reconcile"):
            return await self.inner.reconcile(request_id, actual, now)

    async def reconcile_all(self, request_ids: Sequence[str], actual: dict[str, float], now: float) -> bool:
        with self._timed("reconcile"):
            return await self.inner.reconcile_all(request_ids, actual, now)

    def as_sync(self) -> SyncStore | None:
        sync = self.inner.as_sync()
        return None if sync is None else _TracedSync(sync, self)

    async def preview(self, hits: Sequence[Hit], now: float, *, admitted: bool = True) -> list[HitResult]:
        with self._timed("preview"):
            return await self.inner.preview(hits, now, admitted=admitted)

    async def reset(self, spec: LimitSpec, key: str) -> bool:
        return await self.inner.reset(spec, key)

    async def check(self) -> None:
        await self.inner.check()

    async def flush(self) -> None:
        await self.inner.flush()

    async def close(self) -> None:
        await self.inner.close()


class _TracedSync:
    def __init__(self, sync: SyncStore, store: TracedStore) -> None:
        self.sync, self.store = sync, store

    def acquire_sync(
        self, hits: Sequence[Hit], now: float, *, admitted: bool = True, request_id: str | None = None
    ) -> list[HitResult]:
        with self.store._timed("acquire") as sp:
            out = self.sync.acquire_sync(hits, now, admitted=admitted, request_id=request_id)
            sp.hits(len(hits), out)
            return out

    def reconcile_sync(self, request_id: str, actual: dict[str, float], now: float) -> bool:
        with self.store._timed("reconcile"):
            return self.sync.reconcile_sync(request_id, actual, now)


class _StoreSpan:
    def __init__(self, tracer: Any, what: str, backend: str) -> None:
        self._cm = tracer.start_as_current_span(
            f"policy_engine.store {what}", kind=SpanKind.CLIENT, attributes={"db.system": backend}
        )

    def __enter__(self) -> _StoreSpan:
        self.t0 = time.perf_counter()
        self.span = self._cm.__enter__()
        return self

    def hits(self, n: int, results: Sequence[HitResult]) -> None:
        self.span.set_attribute("policy_engine.hits", n)
        err = next((r.error for r in results if r.error), None)
        if err:
            self.span.set_attribute("policy_engine.store_error", err)

    def __exit__(self, *exc: Any) -> None:
        clock = _store_time.get()
        if clock is not None:
            clock[0] += time.perf_counter() - self.t0
        self._cm.__exit__(*exc)
