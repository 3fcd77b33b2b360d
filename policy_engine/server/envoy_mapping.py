"""Envoy's ext_authz and rate-limit messages <-> the protocol-neutral ingress layer.

A thin adapter: an ext_authz CheckRequest becomes an `HttpRequest`, which
`policy_engine.ingress.mapping.RequestMapper` reads into a request context
(identity headers or a JWT, the OpenAI-style body, the client address); a
decision becomes an `ingress.answer.Answer`, written out as Envoy's messages.
A ShouldRateLimit request carries no HTTP request, only descriptor entries,
which are read by the field table (`descriptor_keys`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from google.protobuf import struct_pb2
from pydantic import Field, model_validator

from dsl.schema import FIELDS
from policy_engine.attributes import NO_ATTRIBUTES, Attributes
from policy_engine.context import ATTRIBUTES
from policy_engine.decision import Decision
from policy_engine.ingress.answer import Answer, answer_decision
from policy_engine.ingress.http import HttpRequest, TlsIdentity, header_map
from policy_engine.ingress.identity import MappingError
from policy_engine.ingress.mapping import MappedRequest, RequestMapper
from policy_engine.ingress.settings import IngressSettings
from policy_engine.ingress.values import check_paths, coerce_or_none, get, put
from policy_engine.proto.envoy.config.core.v3 import base_pb2 as core
from policy_engine.proto.envoy.service.auth.v3 import external_auth_pb2 as authz
from policy_engine.proto.envoy.service.ratelimit.v3 import rls_pb2 as rls
from policy_engine.proto.google.rpc import status_pb2
from policy_engine.wire import value_to_python

# google.rpc.Code values used in ext_authz statuses.
RPC_OK, RPC_PERMISSION_DENIED, RPC_RESOURCE_EXHAUSTED, RPC_UNAUTHENTICATED = 0, 7, 8, 16
_RPC_CODES = {
    "permission_denied": RPC_PERMISSION_DENIED,
    "rate_limit_exceeded": RPC_RESOURCE_EXHAUSTED,
    "unauthenticated": RPC_UNAUTHENTICATED,
}

# Rate-limit descriptor entry key -> context field, from the field table.
DEFAULT_DESCRIPTOR_KEYS: dict[str, str] = {key: f.path for f in FIELDS for key in f.descriptors}


class EnvoyMappingSettings(IngressSettings):
    """The ingress settings, plus what only Envoy's rate-limit service needs."""

    # ShouldRateLimit: descriptor entry key -> context field; unknown keys are ignored.
    descriptor_keys: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_DESCRIPTOR_KEYS))
    # Copy the request's hits (hits_addend, 0 meaning 1) into this context field too.
    hits_addend_field: str | None = None

    @model_validator(mode="after")
    def _known_fields(self) -> EnvoyMappingSettings:
        check_paths(self.descriptor_keys, "descriptor_keys")
        if self.hits_addend_field is not None:
            check_paths({"hits_addend_field": self.hits_addend_field}, "hits_addend_field")
        return self


_DEFAULT_SETTINGS = EnvoyMappingSettings()


@dataclass
class MappedRateLimit:
    context: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    cost: int = 1  # hits (0 on the wire means 1)
    domain: str = ""


# --- request side -------------------------------------------------------------


def http_request(req: authz.CheckRequest) -> HttpRequest:
    """The HTTP request an ext_authz CheckRequest describes."""
    attrs = req.attributes
    http = attrs.request.http
    if http.headers:
        headers = dict(http.headers)
    else:  # encode_raw_headers
        headers = header_map(
            (h.key, h.value or h.raw_value.decode("utf-8", "replace")) for h in http.header_map.headers
        )
    source = attrs.source
    ts = attrs.request.time
    return HttpRequest(
        method=http.method,
        path=http.path,
        headers=headers,
        body=http.raw_body or http.body.encode("utf-8"),
        peer=source.address.socket_address.address if source.HasField("address") else None,
        tls=TlsIdentity(source.principal, source.certificate) if source.principal else None,
        id=http.id or None,
        time=ts.seconds + ts.nanos / 1e9 if attrs.request.HasField("time") else None,
    )


class EnvoyMapper:
    """Maps Envoy requests with one settings object (and its loaded JWKS)."""

    def __init__(self, settings: EnvoyMappingSettings | None = None) -> None:
        self.settings = settings or EnvoyMappingSettings()
        self.mapper = RequestMapper(self.settings)

    def map_check(
        self, req: authz.CheckRequest, now: float | None = None, attributes: Attributes = NO_ATTRIBUTES
    ) -> MappedRequest:
        """ext_authz CheckRequest -> request context, with the raw values of the declared
        `attributes` (headers and claims, then Envoy's dynamic metadata and context
        extensions). Raises MappingError for a refused token."""
        mapped = self.mapper.map(http_request(req), now, attributes)
        if attributes:
            raw = mapped.context.setdefault(ATTRIBUTES, {})
            meta = req.attributes.metadata_context.filter_metadata

            def metadata(namespace: str, key: str) -> Any:
                fields = meta[namespace].fields if namespace in meta else None
                return value_to_python(fields[key]) if fields is not None and key in fields else None

            attributes.from_envoy(raw, metadata, req.attributes.context_extensions)
            if not raw:
                del mapped.context[ATTRIBUTES]
        return mapped

    def map_rate_limit(self, req: rls.RateLimitRequest) -> MappedRateLimit:
        """ShouldRateLimit request -> request context (descriptor entries) and cost (hits)."""
        s = self.settings
        out = MappedRateLimit(context={}, domain=req.domain, cost=req.hits_addend or 1)
        for d in req.descriptors:
            if d.HasField("hits_addend"):
                out.cost = d.hits_addend.value or 1
                break
        for d in req.descriptors:
            for e in d.entries:
                path = s.descriptor_keys.get(e.key)
                if path is None:
                    continue  # e.g. generic_key or header_match entries meant for other services
                if get(out.context, path) is None:
                    put(out.context, path, e.value, out.warnings, f"descriptor {e.key}")
                elif get(out.context, path) != coerce_or_none(path, e.value):
                    out.warnings.append(f"descriptor {e.key}: kept the first value for {path}")
        if s.hits_addend_field:
            put(out.context, s.hits_addend_field, out.cost, out.warnings, "hits_addend")
        return out


# --- response side ------------------------------------------------------------


_OVERWRITE = core.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD


def _add_headers(field: Any, headers: dict[str, str]) -> None:
    """Append `headers` to a repeated HeaderValueOption field, each overwriting the request's.
    Filled in place: building each message and copying it in cost twice as much."""
    add = field.add
    for k, v in headers.items():
        o = add(append_action=_OVERWRITE)
        o.header.key = k
        o.header.value = v


def _metadata(st: struct_pb2.Struct, values: dict[str, Any]) -> None:
    st.update({k: v for k, v in values.items() if v not in (None, "", [])})


def check_response(a: Answer) -> authz.CheckResponse:
    """An answer as ext_authz's CheckResponse (without dynamic metadata)."""
    if not a.allowed:
        assert a.error_type is not None
        denied = authz.DeniedHttpResponse(status={"code": a.status}, body=a.body.decode())
        _add_headers(denied.headers, a.headers)
        return authz.CheckResponse(
            status=status_pb2.Status(code=_RPC_CODES[a.error_type], message=a.reason), denied_response=denied
        )
    ok = authz.OkHttpResponse()
    _add_headers(ok.headers, a.upstream)
    ok.headers_to_remove.extend(a.remove_upstream)
    if a.headers:
        _add_headers(ok.response_headers_to_add, a.headers)
    return authz.CheckResponse(status=status_pb2.Status(code=RPC_OK), ok_response=ok)


def build_check_response(d: Decision, settings: EnvoyMappingSettings | None = None) -> authz.CheckResponse:
    """The ext_authz answer for a decision: deny 403 / throttle 429 with a JSON error body
    and the decision's headers; allow / flag as OK, with flags for the upstream in `flags_header`."""
    s = settings or _DEFAULT_SETTINGS
    resp = check_response(
        answer_decision(d, flags_header=s.flags_header, headers_on_allow=s.rate_limit_headers_on_allow)
    )
    _metadata(  # in place: no Struct built and copied
        resp.dynamic_metadata,
        {
            "effect": d.effect.label,
            "rule_ids": d.rules,
            "flags": d.flags,
            "reason": d.reason or "",
            "request_id": d.request_id,
            "policy_version": d.policy_version,
            "shadow": [m.to_dict() for m in d.shadow],
        },
    )
    return resp


def deny_for_mapping_error(err: MappingError) -> authz.CheckResponse:
    """401 (or the error's status) with the same JSON error body as policy denials."""
    return check_response(err.answer())


def build_rate_limit_response(d: Decision, descriptor_count: int) -> rls.RateLimitResponse:
    """ShouldRateLimit answer: OVER_LIMIT for a refusal, deny or throttle (Envoy answers 429
    either way, with no body of ours), the caller's headers of the answer."""
    a = answer_decision(d)
    code = rls.RateLimitResponse.OK if a.allowed else rls.RateLimitResponse.OVER_LIMIT
    resp = rls.RateLimitResponse(overall_code=code)
    # Every descriptor gets the same status: build it once, copy it per descriptor.
    st = rls.RateLimitResponse.DescriptorStatus(code=code)
    lim = d.rate_limit
    if lim is not None:
        st.current_limit.requests_per_unit = int(lim.max)
        st.current_limit.name = lim.limit
        st.limit_remaining = max(0, int(lim.remaining))
        st.duration_until_reset.FromNanoseconds(int(lim.reset * 1e9))
    resp.statuses.extend([st] * descriptor_count)
    resp.response_headers_to_add.extend(core.HeaderValue(key=k, value=v) for k, v in a.headers_without_body().items())
    return resp
