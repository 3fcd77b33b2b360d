"""policyengine.v1 messages <-> the request context and decisions.

Shared by the server and `policy_engine.client`, so both sides agree on what
null means: an unset `optional` scalar or an absent `StringList` is null, an
empty string or list is a value. Everything about the request context is
derived from the field table (`dsl.schema`): the list fields, the sections,
and the reader that flattens a CheckRequest into a `Context` (generated once,
straight-line code, because it runs on every Check).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format, struct_pb2
from google.protobuf.message import Message

from dsl.schema import FIELDS, SECTIONS, Field, attribute_type
from dsl.types import SetType
from policy_engine.context import ATTRIBUTES, Context, RequestContext, Source, compile_reader
from policy_engine.decision import Decision, Effect
from policy_engine.ingress.usage import TOKEN_FIELDS, Usage
from policy_engine.proto.policyengine.v1 import policy_pb2 as pb

EFFECTS: dict[Effect, pb.Effect] = {
    Effect.ALLOW: pb.EFFECT_ALLOW,
    Effect.DENY: pb.EFFECT_DENY,
    Effect.THROTTLE: pb.EFFECT_THROTTLE,
    Effect.FLAG: pb.EFFECT_FLAG,
}
EFFECT_NAMES: dict[int, str] = {v: k.label for k, v in EFFECTS.items()}

# Section -> its list-valued fields (StringList on the wire).
_LISTS: dict[str, frozenset[str]] = {
    s.name: frozenset(f.name for f in FIELDS if f.section == s.name and isinstance(f.type, SetType)) for s in SECTIONS
}


class ConversionError(ValueError):
    """A value cannot be carried by (or read from) the wire messages."""


# --- request context -------------------------------------------------------


def _as_model(ctx: Mapping[str, Any] | RequestContext) -> RequestContext:
    return ctx if isinstance(ctx, RequestContext) else RequestContext.model_validate(ctx)


def _fill_section(msg: Message, values: Mapping[str, Any], lists: frozenset[str]) -> None:
    for name, value in values.items():
        if value is None:
            continue
        if name in lists:
            getattr(msg, name).values.extend(value)
        else:
            setattr(msg, name, value)


def context_to_check_request(ctx: Mapping[str, Any] | RequestContext, explain: bool = False) -> pb.CheckRequest:
    """Validate a request context (dict or model) and build the CheckRequest.

    Raises pydantic.ValidationError for a context that does not fit the schema
    (unknown field, wrong type, negative count).
    """
    data = _as_model(ctx).model_dump()
    req = pb.CheckRequest(explain=explain)
    for s in SECTIONS:
        values = data.get(s.name)
        if values is None:
            continue
        _fill_section(getattr(req, s.name), values, _LISTS[s.name])
        if s.nullable:
            getattr(req, s.name).SetInParent()  # an all-null section is still "sent"
    for key, value in (data.get(ATTRIBUTES) or {}).items():
        json_format.ParseDict(value, req.attributes[key])
    return req


def value_to_python(v: struct_pb2.Value) -> Any:
    """A google.protobuf.Value (our attributes, Envoy's metadata) as plain Python."""
    kind = v.WhichOneof("kind")
    if kind == "struct_value":
        return {k: value_to_python(x) for k, x in v.struct_value.fields.items()}
    if kind == "list_value":
        return [value_to_python(x) for x in v.list_value.values]
    if kind is None or kind == "null_value":
        return None
    return getattr(v, kind)


def _attributes(m: Mapping[str, struct_pb2.Value]) -> dict[str, Any]:
    return {k: value_to_python(v) for k, v in m.items()}


def _read_section(msg: Message, lists: frozenset[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in msg.DESCRIPTOR.fields:
        name = field.name
        if name in lists:
            out[name] = list(getattr(msg, name).values) if msg.HasField(name) else None
        else:
            out[name] = getattr(msg, name) if msg.HasField(name) else None
    return out


def check_request_to_context(req: pb.CheckRequest) -> dict[str, Any]:
    """The request context dict (all sections, nulls included) a CheckRequest carries."""
    out: dict[str, Any] = {}
    for s in SECTIONS:
        if s.nullable and not req.HasField(s.name):
            out[s.name] = None
            continue
        out[s.name] = _read_section(getattr(req, s.name), _LISTS[s.name])
    out[ATTRIBUTES] = _attributes(req.attributes) if req.attributes else None
    return out


def check_request_to_model(req: pb.CheckRequest) -> RequestContext:
    """Validated context; raises pydantic.ValidationError (e.g. unknown verification)."""
    return RequestContext.model_validate(check_request_to_context(req))


def _proto_value(f: Any) -> str:
    value = f"s.{f.name}.values" if isinstance(f.type, SetType) else f"s.{f.name}"
    return f'{value} if s.HasField("{f.name}") else None'


_read_check_request = compile_reader(
    "read_check_request",
    Source(
        section=lambda s: f"m.{s.name}",
        present=lambda s: f'm.HasField("{s.name}")',
        value=_proto_value,
        checked=True,
        attributes=f"_attributes(m.{ATTRIBUTES}) if m.{ATTRIBUTES} else _EMPTY",
    ),
    {"_attributes": _attributes},
)


def context_from_check_request(m: pb.CheckRequest) -> Context:
    """The flat Context a CheckRequest carries; pydantic.ValidationError (with the JSON path)
    when it does not fit. Equal to Context.from_model(check_request_to_model(m)) (a test keeps
    them in step) at a fraction of the cost: the generated reader checks by hand the values
    proto types cannot constrain, and pydantic runs only to explain a refusal."""
    c = _read_check_request(m)
    if c is None:
        return Context.from_model(check_request_to_model(m))
    return c


def usage_to_proto(usage: Usage) -> pb.Usage:
    u = pb.Usage()
    for name in TOKEN_FIELDS:
        v = getattr(usage, name)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            raise ConversionError(f"usage.{name}: expected a non-negative integer, got {v!r}")
        if v is not None:
            setattr(u, name, v)
    if usage.model is not None:
        if not isinstance(usage.model, str):
            raise ConversionError(f"usage.model: expected a string, got {usage.model!r}")
        u.model = usage.model
    return u


def usage_from_proto(u: pb.Usage) -> Usage:
    return Usage(**{name: getattr(u, name) if u.HasField(name) else None for name in (*TOKEN_FIELDS, "model")})


# --- decisions -------------------------------------------------------------


def decision_to_check_response(d: Decision, explain: bool = False) -> pb.CheckResponse:
    """The CheckResponse for a decision; the trace only when `explain` is set."""
    resp = pb.CheckResponse(
        effect=EFFECTS[d.effect],
        http_status=d.status,
        reason=d.reason or "",
        rule_ids=d.rules,
        flags=d.flags,
        policy_version=d.policy_version,
        request_id=d.request_id or "",
        retry_after_seconds=d.retry_after or 0.0,
        headers=d.headers,
        exempt=d.exempt,
        notes=d.notes,
    )
    add = resp.limits.add
    for s in d.limits:
        add(
            limit_id=s.limit,
            key=s.key,
            used=s.used,
            max=s.max,
            remaining=s.remaining,
            reset_seconds=s.reset,
            over=s.over,
            error=s.error or "",
        )
    if d.shadow:
        resp.shadow_matches.extend(
            pb.ShadowMatch(rule_id=m.rule, effect=EFFECTS[m.effect], reason=m.reason) for m in d.shadow
        )
    if d.measures:
        add_m = resp.measures.add
        for m in d.measures:  # `value` stays absent when it is null (the store failed)
            add_m(measure_id=m.measure, key=m.key, value=m.value, charged=m.charged, error=m.error or "")
    if explain and d.trace is not None:
        resp.explanation_json = json.dumps(d.trace, default=str)
    return resp


def limit_from_proto(lim: pb.LimitState) -> dict[str, Any]:
    return {
        "limit_id": lim.limit_id,
        "key": lim.key,
        "used": lim.used,
        "max": lim.max,
        "remaining": lim.remaining,
        "reset_seconds": lim.reset_seconds,
        "over": lim.over,
        "error": lim.error or None,
    }


def measure_from_proto(m: pb.MeasureState) -> dict[str, Any]:
    return {
        "measure_id": m.measure_id,
        "key": m.key,
        "value": m.value if m.HasField("value") else None,
        "charged": m.charged,
        "error": m.error or None,
    }


def check_response_to_dict(resp: pb.CheckResponse) -> dict[str, Any]:
    """The JSON shape `policyctl eval` prints, with the explanation parsed back."""
    explanation = json.loads(resp.explanation_json) if resp.HasField("explanation_json") else None
    return {
        "effect": EFFECT_NAMES.get(resp.effect, "allow"),
        "http_status": resp.http_status,
        "reason": resp.reason,
        "rule_ids": list(resp.rule_ids),
        "headers": dict(resp.headers),
        "flags": list(resp.flags),
        "limits": [limit_from_proto(lim) for lim in resp.limits],
        "measures": [measure_from_proto(m) for m in resp.measures],
        "shadow_matches": [
            {"rule_id": m.rule_id, "effect": EFFECT_NAMES.get(m.effect, "allow"), "reason": m.reason}
            for m in resp.shadow_matches
        ],
        "policy_version": resp.policy_version,
        "request_id": resp.request_id,
        "retry_after_seconds": resp.retry_after_seconds,
        "exempt": list(resp.exempt),
        "notes": list(resp.notes),
        "explanation": explanation,
    }


# --- policy info -----------------------------------------------------------


def policy_info_to_proto(info: Mapping[str, Any]) -> pb.GetPolicyResponse:
    """GetPolicyResponse from a mapping: version, files, rule_ids, limit_ids,
    measure_ids, loaded_at (epoch seconds), last_reload_error."""
    resp = pb.GetPolicyResponse(
        version=str(info.get("version") or ""),
        files=[str(f) for f in info.get("files") or ()],
        rule_ids=[str(r) for r in info.get("rule_ids") or ()],
        limit_ids=[str(x) for x in info.get("limit_ids") or ()],
        measure_ids=[str(x) for x in info.get("measure_ids") or ()],
    )
    loaded_at = info.get("loaded_at")
    if loaded_at is not None:
        _timestamp(resp.loaded_at, loaded_at)
    resp.attributes.extend(_declared_to_proto(f) for f in info.get("attributes") or ())
    err = info.get("last_reload_error")
    if err is not None:
        resp.last_reload_error = str(err)
    store = info.get("store")
    if store is not None:
        st = resp.store
        st.backend, st.url, st.state = store["backend"], store["url"], store["state"]
        st.errors, st.outages = store.get("errors", 0), store.get("outages", 0)
        if store.get("last_error") is not None:
            st.last_error = store["last_error"]
        if store.get("failing_since") is not None:
            _timestamp(st.failing_since, store["failing_since"])
    return resp


def _declared_to_proto(f: Field) -> pb.DeclaredAttribute:
    a = pb.DeclaredAttribute(path=f.path, type=str(f.type), api_key=f.api or f.path, all_headers=f.all_headers)
    for name, value in (("header", f.header), ("jwt_claim", f.claim), ("context_extension", f.context_extension)):
        if value is not None:
            setattr(a, name, value)
    if f.asgi is not None:
        a.asgi = f.asgi
    if f.metadata is not None:
        a.envoy_metadata_namespace, a.envoy_metadata_key = f.metadata
    return a


def declared_attributes(resp: pb.GetPolicyResponse) -> tuple[Field, ...]:
    """The serving policy's declared attributes, as field rows (a type this build does not
    know is left out)."""
    out = []
    for a in resp.attributes:
        t = attribute_type(a.type)
        section, _, name = a.path.partition(".")
        if t is None or not name:
            continue
        has = a.HasField
        out.append(
            Field(
                section,
                name,
                t,
                0,
                declared=True,
                api=a.api_key or a.path,
                header=a.header if has("header") else None,
                claim=a.jwt_claim if has("jwt_claim") else None,
                all_headers=a.all_headers,
                metadata=(a.envoy_metadata_namespace, a.envoy_metadata_key)
                if has("envoy_metadata_namespace") and has("envoy_metadata_key")
                else None,
                context_extension=a.context_extension if has("context_extension") else None,
                asgi=a.asgi if has("asgi") else None,
            )
        )
    return tuple(out)


def _timestamp(ts: Any, seconds: float) -> None:
    whole = math.floor(float(seconds))
    ts.seconds = whole
    ts.nanos = min(int(round((float(seconds) - whole) * 1e9)), 999_999_999)


def policy_info_from_proto(resp: pb.GetPolicyResponse) -> dict[str, Any]:
    ts = resp.loaded_at
    loaded = ts.seconds + ts.nanos / 1e9 if resp.HasField("loaded_at") else None
    return {
        "version": resp.version,
        "files": list(resp.files),
        "rule_ids": list(resp.rule_ids),
        "limit_ids": list(resp.limit_ids),
        "measure_ids": list(resp.measure_ids),
        "loaded_at": loaded,
        "last_reload_error": resp.last_reload_error if resp.HasField("last_reload_error") else None,
        "store": _store_from_proto(resp.store) if resp.HasField("store") else None,
        "attributes": declared_attributes(resp),
    }


def _store_from_proto(st: pb.StoreStatus) -> dict[str, Any]:
    since = st.failing_since
    return {
        "backend": st.backend,
        "url": st.url,
        "state": st.state,
        "last_error": st.last_error if st.HasField("last_error") else None,
        "failing_since": since.seconds + since.nanos / 1e9 if st.HasField("failing_since") else None,
        "errors": st.errors,
        "outages": st.outages,
    }
