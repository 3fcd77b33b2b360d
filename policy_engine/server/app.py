"""Server bootstrap: `create_server(settings) -> (app, port)` and `serve(settings)`.

`create_server` builds everything (policy, store, engine, servicers, health,
reflection, metrics, decision log, reloader) and binds the port, without
starting; tests call it with port 0. `serve` runs it until SIGTERM or SIGINT,
then drains: health turns NOT_SERVING, the port stops accepting calls, calls in
flight finish within the grace period, then the log is flushed and the store
closed. `--workers N` runs N such processes on one port (SO_REUSEPORT) under a
small supervisor that forwards signals.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import ssl
import sys
import time
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from policy_engine.engine import Engine
from policy_engine.policyset import PolicySet, load_policy_set
from policy_engine.server.admin import ADMIN_SERVICE, AdminServicer, admin_handlers
from policy_engine.server.decision_log import DecisionLog
from policy_engine.server.envoy_mapping import EnvoyMapper
from policy_engine.server.http_api import HttpApi, HttpServer, ssl_context
from policy_engine.server.log_shipping import HttpShipper, OtlpLogShipper, Shipper
from policy_engine.server.metrics import Metrics
from policy_engine.server.reload import Reloader
from policy_engine.server.servicers import (
    ACCESS_LOG_SERVICE,
    AUTHORIZATION_SERVICE,
    POLICY_SERVICE,
    RATE_LIMIT_SERVICE,
    AccessLogServicer,
    AuthorizationServicer,
    Decider,
    PolicyServicer,
    RateLimitServicer,
    generic_handlers,
)
from policy_engine.server.settings import ServerSettings
from policy_engine.server.store_health import StoreHealth, StoreState
from policy_engine.server.tracing import TracedStore, Tracing
from policy_engine.server.usage_logs import UsageLogs
from policy_engine.state.base import Store
from policy_engine.state.factory import StoreOptions, open_store, redact
from policy_engine.state.local_first import LocalFirstStore
from policy_engine.state.sync_mode import SyncMode

log = logging.getLogger("policy_engine.server")

SERVICES = (POLICY_SERVICE, AUTHORIZATION_SERVICE, RATE_LIMIT_SERVICE, ACCESS_LOG_SERVICE)
# A health "service" name for the limit store alone: NOT_SERVING while it fails. The
# services above stay SERVING then (each limit applies its fail mode).
STORE_HEALTH = "policy_engine.store"


class ServerError(RuntimeError):
    """The server cannot start (port taken, unreadable certificate, ...)."""


@dataclass
class ServerApp:
    server: grpc.aio.Server
    port: int
    settings: ServerSettings
    engine: Engine
    store: Store
    metrics: Metrics
    reloader: Reloader
    health: health.aio.HealthServicer
    decision_log: DecisionLog | None
    access_log: AccessLogServicer
    store_health: StoreHealth
    http: HttpServer | None = None
    usage_logs: UsageLogs | None = None
    admin: grpc.aio.Server | None = None
    admin_port: int | None = None
    tracing: Tracing | None = None
    metrics_port: int | None = None
    worker: int = 0
    serving: bool = False

    @property
    def http_port(self) -> int | None:
        return self.http.port if self.http is not None else None

    async def start(self) -> None:
        await self.server.start()
        if self.admin is not None:
            await self.admin.start()
        self.reloader.start()
        for name in ("", *SERVICES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self.serving = True
        self.store_health.on_change(self._store_changed)
        await self.store_health.probe()  # the start-up check: a warning when unreachable, and serve on
        self.store_health.start(self.settings.store_probe_seconds)
        s = self.settings
        if s.metrics_port is not None:
            self.metrics_port = self.metrics.serve(
                s.metrics_host, s.metrics_port + self.worker if s.metrics_port else 0
            )
        if self.usage_logs is not None:
            self.usage_logs.start()

    async def stop(self, grace: float | None = None) -> None:
        """Stop accepting calls, let calls in flight finish (up to `grace` seconds), release everything."""
        grace = self.settings.grace_seconds if grace is None else grace
        self.serving = False
        await self.health.enter_graceful_shutdown()
        if self.usage_logs is not None:
            await self.usage_logs.close()
        # Every listener drains at once: calls in flight get the same grace on each.
        await asyncio.gather(
            self.server.stop(grace),
            *([self.http.stop()] if self.http is not None else []),
            *([self.admin.stop(grace)] if self.admin is not None else []),
        )
        await self.reloader.close()
        await self.store_health.close()
        if self.decision_log is not None:
            await asyncio.to_thread(self.decision_log.close)
        await self.store.close()
        self.metrics.close()
        if self.tracing is not None:
            await asyncio.to_thread(self.tracing.shutdown)  # exports the spans still pending

    def _store_changed(self, state: StoreState) -> None:
        status = (
            health_pb2.HealthCheckResponse.NOT_SERVING
            if state is StoreState.FAILING
            else health_pb2.HealthCheckResponse.SERVING
        )
        task = asyncio.get_running_loop().create_task(self.health.set(STORE_HEALTH, status))
        _BACKGROUND.add(task)
        task.add_done_callback(_BACKGROUND.discard)

    def policy_info(self) -> dict[str, Any]:
        p = self.engine.policy
        st = self.store_health.status()
        return {
            "store": {
                "backend": st.backend,
                "url": st.url,
                "state": st.state.value,
                "last_error": st.last_error,
                "failing_since": st.failing_since,
                "errors": st.errors,
                "outages": st.outages,
            },
            "version": p.version,
            "files": list(p.files),
            "rule_ids": [r.id for r in p.rules],
            "limit_ids": [lim.id for lim in p.limits],
            "measure_ids": [m.id for m in p.compiled.measures],
            "attributes": p.attributes.fields,
            "loaded_at": p.loaded_at,
            "last_reload_error": self.reloader.last_error,
        }


_BACKGROUND: set[asyncio.Task[Any]] = set()  # health updates in flight (a task needs a reference)


def _read(path: Any, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise ServerError(f"{what} {path}: {e.strerror}") from e


def _credentials(s: ServerSettings) -> grpc.ServerCredentials | None:
    if s.tls_cert is None or s.tls_key is None:
        return None
    pair = (_read(s.tls_key, "--tls-key"), _read(s.tls_cert, "--tls-cert"))
    if s.tls_client_ca is None:
        return grpc.ssl_server_credentials([pair])
    ca = _read(s.tls_client_ca, "--tls-client-ca")
    return grpc.ssl_server_credentials([pair], root_certificates=ca, require_client_auth=True)


def _shippers(s: ServerSettings) -> list[Shipper]:
    opts = {"batch": s.decision_log_batch, "max_queue": s.decision_log_ship_queue}
    out: list[Shipper] = []
    if s.decision_log_http:
        out.append(HttpShipper(s.decision_log_http, **opts))
    if s.decision_log_otlp:
        out.append(OtlpLogShipper(s.decision_log_otlp, service_name=s.service_name, **opts))
    return out


def _bind(server: grpc.aio.Server, address: str, creds: grpc.ServerCredentials | None) -> int:
    try:
        port = server.add_secure_port(address, creds) if creds else server.add_insecure_port(address)
    except RuntimeError as e:  # grpcio raises when it cannot bind
        raise ServerError(f"cannot listen on {address}: {e}") from e
    if port == 0:
        raise ServerError(f"cannot listen on {address}")
    return int(port)


def grpc_options(s: ServerSettings) -> list[tuple[str, Any]]:
    return [
        ("grpc.max_receive_message_length", s.max_message_bytes),
        ("grpc.max_send_message_length", s.max_message_bytes),
        # Workers share the port; a lone server must fail when the port is taken.
        ("grpc.so_reuseport", 1 if s.workers > 1 else 0),
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.http2.max_pings_without_data", 0),
    ]


async def create_server(settings: ServerSettings, *, worker: int = 0) -> tuple[ServerApp, int]:
    """Load the policy, open the store, register the services and bind; not started yet.

    Raises dsl.diagnostics.PolicyError when the policy does not compile and
    ServerError when the port or the certificates cannot be used."""
    s = settings
    policy = await asyncio.to_thread(load_policy_set, s.policies)
    sync = s.sync_mode
    _check_sync_names(sync, policy)
    store = open_store(s.store, StoreOptions(deadline=s.store_deadline_ms / 1000, sync=sync))
    tracing = None
    engine_store = store
    if s.otlp_endpoint is not None:
        tracing = Tracing(s.otlp_endpoint, service_name=s.service_name, ratio=s.trace_sample_ratio, worker=worker)
        engine_store = TracedStore(store, tracing.tracer)
    engine = Engine(policy, engine_store, store_deadline=s.store_deadline_ms / 1000)
    metrics = Metrics(policy.version)
    metrics.local_first = store if isinstance(store, LocalFirstStore) else None
    dlog = None
    if s.decision_log is not None or s.decision_log_http or s.decision_log_otlp:
        try:
            dlog = DecisionLog(
                s.decision_log,
                max_pending=s.decision_log_queue,
                include_prompt=s.decision_log_prompts,
                shippers=_shippers(s),
            )
        except OSError as e:
            await store.close()
            raise ServerError(f"--decision-log {s.decision_log}: {e.strerror}") from e
        metrics.decision_log_counts = dlog.counts
        shippers = dlog.shippers
        metrics.decision_log_sinks = lambda: {sh.name: sh.counts() for sh in shippers}
    store_health = StoreHealth(store, redact(s.store))
    metrics.store_state = lambda: (not store_health.failing, store_health.outages)
    decider = Decider(engine, metrics, dlog, store_health, tracing)
    mapper = EnvoyMapper(s.envoy)
    reloader = Reloader(engine, s.policies, metrics, watch=s.reload, debounce_ms=s.reload_debounce_ms)

    server = grpc.aio.server(options=grpc_options(s), maximum_concurrent_rpcs=s.max_concurrent_rpcs)
    app_ref: list[ServerApp] = []
    policy_s = PolicyServicer(decider, lambda: app_ref[0].policy_info())
    access_log = AccessLogServicer(decider, s.usage_headers)
    server.add_generic_rpc_handlers(
        generic_handlers(
            policy_s, AuthorizationServicer(decider, mapper), RateLimitServicer(decider, mapper), access_log
        )
    )
    health_s = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_s, server)
    reflection.enable_server_reflection((*SERVICES, health.SERVICE_NAME, reflection.SERVICE_NAME), server)

    admin = admin_port = None
    try:
        creds = _credentials(s)
        port = _bind(server, s.address, creds)
        if s.admin_port is not None:
            admin = grpc.aio.server(options=grpc_options(s))
            admin.add_generic_rpc_handlers(
                [admin_handlers(AdminServicer(engine, mutual_tls=s.tls_client_ca is not None))]
            )
            reflection.enable_server_reflection((ADMIN_SERVICE, reflection.SERVICE_NAME), admin)
            admin_port = _bind(admin, s.admin_address, creds)
    except ServerError:
        await store.close()
        raise
    app = ServerApp(
        server,
        port,
        s,
        engine,
        store,
        metrics,
        reloader,
        health_s,
        dlog,
        access_log,
        store_health,
        admin=admin,
        admin_port=admin_port,
        tracing=tracing,
        worker=worker,
    )
    app_ref.append(app)
    if s.http_port is not None:
        app.http = await _bind_http(app, decider)
    if s.usage_logs and worker == 0:  # one reader per machine: workers would report each line N times
        app.usage_logs = UsageLogs(
            list(s.usage_logs),
            engine.report,
            s.usage_headers,
            s.usage_log_poll_ms / 1000,
        )
    return app, port


def _check_sync_names(sync: SyncMode, policy: PolicySet) -> None:
    """A per-limit sync choice must name a limit or measure: a typo would silently keep the default."""
    known = {lim.id for lim in policy.limits} | {m.id for m in policy.compiled.measures}
    unknown = sorted(set(sync.limits) - known)
    if unknown:
        raise ServerError(
            f"store_sync_limits: {', '.join(unknown)} is no limit or measure of the policy "
            f"(limits and measures: {', '.join(sorted(known)) or 'none'})"
        )


async def _bind_http(app: ServerApp, decider: Decider) -> HttpServer:
    """The forward-auth listener, bound now so that a taken port fails at start like gRPC's."""
    s = app.settings
    assert s.http_port is not None
    http = HttpServer(HttpApi(decider, s.http, lambda: app.serving), s.http, s.grace_seconds)
    try:
        tls = ssl_context(s.tls_cert, s.tls_key, s.tls_client_ca) if s.tls_cert and s.tls_key else None
        await http.start(s.http_host, s.http_port, tls, reuse_port=s.workers > 1)
    except (OSError, ssl.SSLError) as e:
        await http.stop()
        await app.store.close()
        raise ServerError(f"HTTP: cannot listen on {s.http_host}:{s.http_port}: {e}") from e
    return http


# --- running it ---------------------------------------------------------------------------


def _configure_logging(s: ServerSettings, worker: int | None) -> None:
    tag = f"[worker {worker}] " if worker is not None else ""
    logging.basicConfig(
        level=s.log_level.upper(), stream=sys.stderr, format=f"%(asctime)s %(levelname)s {tag}%(name)s: %(message)s"
    )


async def run(settings: ServerSettings, *, worker: int = 0) -> None:
    """Serve until SIGTERM/SIGINT, then drain. SIGHUP reloads the policy."""
    app, port = await create_server(settings, worker=worker)
    await app.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, app.reloader.trigger)
    tls = " (mutual TLS)" if settings.tls_client_ca else " (TLS)" if settings.tls_cert else ""
    metrics = f", metrics on {settings.metrics_host}:{app.metrics_port}" if app.metrics_port else ""
    http = f", HTTP forward-auth on {settings.http_host}:{app.http_port}" if app.http_port else ""
    if app.admin_port is not None:
        metrics += f", admin service on {settings.admin_host}:{app.admin_port}"
    log.info(
        "serving policy %s on %s:%d%s%s%s, store %s (%s), pid %d",
        app.engine.policy.version,
        settings.host,
        port,
        tls,
        http,
        metrics,
        app.store_health.url,
        app.store_health.state.value,
        os.getpid(),
    )
    await stop.wait()
    log.info("shutting down: draining calls in flight (grace %gs)", settings.grace_seconds)
    await app.stop()
    log.info("stopped")


def _worker_main(settings: ServerSettings, worker: int) -> None:
    _configure_logging(settings, worker)
    try:
        asyncio.run(run(settings, worker=worker))
    except Exception as e:  # noqa: BLE001 - the supervisor reports the exit code
        log.error("worker %d failed: %s", worker, e)
        sys.exit(1)


def free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def supervise(settings: ServerSettings) -> int:
    """Run `settings.workers` server processes on one port; forward SIGTERM/SIGINT/SIGHUP.

    A worker that exits on its own stops the others (exit code 1), so that the
    process manager above restarts the whole set with one configuration."""
    _configure_logging(settings, None)
    if settings.port == 0:
        settings = settings.model_copy(update={"port": free_port(settings.host)})
    if settings.http_port == 0:
        settings = settings.model_copy(update={"http_port": free_port(settings.http_host)})
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_worker_main, args=(settings, i), name=f"policy-engine-worker-{i}")
        for i in range(settings.workers)
    ]
    received: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: received.append(signum))
    for p in procs:
        p.start()
    log.info("supervisor %d: %d workers on %s:%d", os.getpid(), len(procs), settings.host, settings.port)
    stopping = False
    deadline: float | None = None
    code = 0
    while any(p.is_alive() for p in procs):
        multiprocessing.connection.wait([p.sentinel for p in procs if p.is_alive()], timeout=0.2)
        while received:
            signum = received.pop(0)
            if signum in (signal.SIGTERM, signal.SIGINT):
                stopping = True
                deadline = deadline or time.monotonic() + settings.grace_seconds + 10
            for p in procs:
                if p.is_alive() and p.pid is not None:
                    os.kill(p.pid, signal.SIGHUP if signum == signal.SIGHUP else signal.SIGTERM)
        if not stopping and any(not p.is_alive() for p in procs):
            dead = [p for p in procs if not p.is_alive()]
            log.error(
                "worker(s) %s exited (codes %s); stopping the others",
                [p.name for p in dead],
                [p.exitcode for p in dead],
            )
            code, stopping = 1, True
            deadline = time.monotonic() + settings.grace_seconds + 10
            for p in procs:
                if p.is_alive() and p.pid is not None:
                    os.kill(p.pid, signal.SIGTERM)
        if deadline is not None and time.monotonic() > deadline:
            for p in procs:
                if p.is_alive():
                    p.kill()
            break
    for p in procs:
        p.join(5)
    return code


def serve(settings: ServerSettings) -> int:
    """Blocking entry point of `policyctl serve`; returns the exit code."""
    if settings.workers > 1:
        return supervise(settings)
    _configure_logging(settings, None)
    asyncio.run(run(settings))
    return 0
