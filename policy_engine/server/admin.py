"""policyengine.v1.AdminService: read a key's state, reset it, decide without counting.

Off by default. It is served by its own grpc server on `admin_host:admin_port`
(settings), so that the API port can face Envoy while the admin port stays on
loopback; it may bind elsewhere only when the server requires client
certificates (mutual TLS), and it checks the caller on every call as well.
Every call is logged (logger `policy_engine.admin`) with who made it.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import grpc.aio
from google.protobuf.message import DecodeError

import grpc
from dsl.fold import const_value, is_number
from policy_engine import wire
from policy_engine.engine import Engine
from policy_engine.policyset import PolicySet
from policy_engine.proto.policyengine.v1 import admin_pb2 as apb
from policy_engine.proto.policyengine.v1 import policy_pb2 as pb
from policy_engine.server.servicers import InvalidRequest, context_from_check_request
from policy_engine.state.base import Hit, HitResult, LimitSpec, Record, Store, StoreUnsupported

log = logging.getLogger("policy_engine.admin")

ADMIN_SERVICE = apb.DESCRIPTOR.services_by_name["AdminService"].full_name


class AdminError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class DryRunStore(Store):
    """A store that answers every `acquire` with the real store's `preview`: a whole
    decision runs through the engine as usual and nothing is written."""

    def __init__(self, store: Store) -> None:
        self.inner = store
        self.backend = store.backend  # type: ignore[misc]

    async def acquire(
        self, hits: Sequence[Hit], now: float, *, admitted: bool = True, request_id: str | None = None
    ) -> list[HitResult]:
        return await self.inner.preview(hits, now, admitted=admitted)

    async def reconcile(self, request_id: str, actual: dict[str, float], now: float) -> bool:
        return False

    async def close(self) -> None:
        """The real store belongs to the server."""


def is_loopback_peer(peer: str) -> bool:
    """grpc's peer string (`ipv4:127.0.0.1:5000`, `ipv6:[::1]:5000`, `unix:...`) is this machine."""
    kind, _, rest = peer.partition(":")
    if kind == "unix":
        return True
    host = rest.rsplit(":", 1)[0].strip("[]") if kind in ("ipv4", "ipv6") else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _caller(context: grpc.aio.ServicerContext) -> str:
    """The peer, and the certificate's common name under mutual TLS."""
    auth = context.auth_context() or {}
    cn = [v.decode("utf-8", "replace") for v in auth.get("x509_common_name", [])]
    return context.peer() + (f" (certificate CN={cn[0]})" if cn else "")


class AdminServicer:
    def __init__(self, engine: Engine, *, mutual_tls: bool) -> None:
        self.engine = engine
        self.mutual_tls = mutual_tls

    # -- the calls -----------------------------------------------------------------
    async def GetState(self, raw: bytes, context: grpc.aio.ServicerContext) -> apb.KeyState:
        async def run(req: apb.GetStateRequest) -> tuple[apb.KeyState, str]:
            st = await self._state(req.name, req.key, req.max if req.HasField("max") else None)
            return st, f"used {st.used:g}"

        return await self._call(context, "GetState", apb.GetStateRequest, raw, run)

    async def ResetState(self, raw: bytes, context: grpc.aio.ServicerContext) -> apb.ResetStateResponse:
        async def run(req: apb.ResetStateRequest) -> tuple[apb.ResetStateResponse, str]:
            before = await self._state(req.name, req.key, None)
            spec = self._find(self.engine.policy, req.name)[1]
            try:
                existed = await self.engine.store.reset(spec, req.key)
            except StoreUnsupported as e:
                raise AdminError(grpc.StatusCode.UNIMPLEMENTED, str(e)) from e
            except Exception as e:  # noqa: BLE001 - the store is down or late
                raise AdminError(grpc.StatusCode.UNAVAILABLE, f"limit store failed: {type(e).__name__}: {e}") from e
            what = f"reset (used was {before.used:g})" if existed else "nothing to reset"
            return apb.ResetStateResponse(existed=existed, before=before), what

        return await self._call(context, "ResetState", apb.ResetStateRequest, raw, run)

    async def DryRunCheck(self, raw: bytes, context: grpc.aio.ServicerContext) -> pb.CheckResponse:
        async def run(req: pb.CheckRequest) -> tuple[pb.CheckResponse, str]:
            try:
                ctx = context_from_check_request(req)
            except InvalidRequest as err:
                raise AdminError(grpc.StatusCode.INVALID_ARGUMENT, f"DryRunCheck: {err}") from err
            e = self.engine
            if type(e.store).preview is Store.preview:  # the engine would read the refusal as a store failure
                raise AdminError(grpc.StatusCode.UNIMPLEMENTED, f"the {e.store.backend} store cannot preview a request")
            d = await Engine(e.policy, DryRunStore(e.store), store_deadline=e.store_deadline).decide(ctx, explain=True)
            return wire.decision_to_check_response(d, explain=True), f"would {d.effect.label}"

        return await self._call(context, "DryRunCheck", pb.CheckRequest, raw, run)

    # -- shared --------------------------------------------------------------------
    async def _call(self, context: grpc.aio.ServicerContext, method: str, cls: Any, raw: bytes, run: Any) -> Any:
        who = _caller(context)
        if not self.mutual_tls and not is_loopback_peer(context.peer()):
            log.warning(
                "admin %s refused: %s is not on loopback and the server does not require client certificates",
                method,
                who,
            )
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                "the admin service answers loopback callers, or callers with a client certificate",
            )
        try:
            req = cls.FromString(raw)
        except DecodeError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{method}: not a {cls.DESCRIPTOR.full_name}: {e}")
        args = _describe(req)
        try:
            resp, outcome = await run(req)
        except AdminError as e:
            log.info("admin %s %s by %s: %s: %s", method, args, who, e.code.name, e)
            await context.abort(e.code, str(e))
        log.info("admin %s %s by %s: %s", method, args, who, outcome)
        return resp

    def _find(self, policy: PolicySet, name: str) -> tuple[str, LimitSpec, Any]:
        for lim in policy.limits:
            if lim.id == name:
                return "limit", replace(lim.spec, record=Record.ADMITTED), lim
        for m in policy.compiled.measures:
            if m.id == name:
                return "measure", m.read_spec, m
        names = [lim.id for lim in policy.limits] + [m.id for m in policy.compiled.measures]
        raise AdminError(
            grpc.StatusCode.NOT_FOUND,
            f"no limit or measure `{name}` in policy {policy.version} (there are: {', '.join(names)})",
        )

    async def _state(self, name: str, key: str, maximum: float | None) -> apb.KeyState:
        policy = self.engine.policy
        block, spec, item = self._find(policy, name)
        if not key:
            raise AdminError(grpc.StatusCode.INVALID_ARGUMENT, "a key is required")
        if maximum is None and block == "limit":
            maximum = _constant_max(policy, name)
        # Reads (record admitted, in a call that admits nothing): one against the max,
        # for `full` and `reset`, and one against 0, for when the window is clear.
        scale = spec.scale  # a decimal (money) `sum` is kept in micro-units: shown in its own
        hits = [Hit(spec, key, 0.0, 1.0, None)]
        if maximum is not None:
            hits.append(Hit(spec, key, maximum * scale, 1.0, None))
        try:
            results = await self.engine.store.acquire(hits, time.time(), admitted=False)
        except Exception as e:  # noqa: BLE001
            raise AdminError(grpc.StatusCode.UNAVAILABLE, f"limit store failed: {type(e).__name__}: {e}") from e
        failed = next((r.error for r in results if r.error), None)
        if failed:
            raise AdminError(grpc.StatusCode.UNAVAILABLE, f"limit store failed: {failed}")
        clear = results[0]
        st = apb.KeyState(
            name=name,
            block=block,
            kind=item.kind_label,
            key=key,
            used=clear.used / scale,
            window_seconds=spec.window,
            clear_seconds=clear.reset,
            policy_version=policy.version,
        )
        if maximum is not None:
            at_max = results[1]
            st.max, st.remaining = maximum, max(0.0, maximum * scale - at_max.used) / scale  # in units: exact
            st.full, st.reset_seconds = at_max.used + 1.0 > maximum * scale, at_max.reset
        return st


def _constant_max(policy: PolicySet, name: str) -> float | None:
    """A limit's `max` when it is a constant (through lets); None when it depends on the request."""
    for lim in policy.checked.limits:
        if lim.name == name:
            ok, value = const_value(lim.maximum, policy.checked.lets)
            return float(value) if ok and is_number(value) else None  # type: ignore[arg-type]
    return None


def _describe(req: Any) -> str:
    """A call's arguments for the audit line (a dry run's request context in short)."""
    if isinstance(req, pb.CheckRequest):
        acct = req.account.id if req.HasField("account") and req.account.HasField("id") else None
        rid = req.request.id if req.HasField("request") and req.request.HasField("id") else None
        return f"account={acct} request={rid}"
    parts = [f"{f.name}={v!r}" for f, v in req.ListFields()]
    return " ".join(parts)


def admin_handlers(admin: AdminServicer) -> grpc.GenericRpcHandler:
    def unary(fn: Any, response: Any) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(
            fn, request_deserializer=None, response_serializer=response.SerializeToString
        )

    return grpc.method_handlers_generic_handler(
        ADMIN_SERVICE,
        {
            "GetState": unary(admin.GetState, apb.KeyState),
            "ResetState": unary(admin.ResetState, apb.ResetStateResponse),
            "DryRunCheck": unary(admin.DryRunCheck, pb.CheckResponse),
        },
    )
