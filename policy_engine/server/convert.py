"""Conversions between the request-context JSON shape and policyengine.v1 messages.

One module, used by the server and by `policy_engine.client`, so both sides
agree on what null means: an unset `optional` scalar or an absent `StringList`
is null, an empty string or list is a value. Decisions are read duck-typed
("decision-like": a mapping or an object with the same attribute names), so
the engine's decision model and this wire mapping do not import each other.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping
from typing import Any

from google.protobuf.message import Message

from policy_engine.context import RequestContext
from policy_engine.proto.policyengine.v1 import policy_pb2 as pb

# Section name -> (message field name in CheckRequest, list-valued fields).
SECTIONS: dict[str, frozenset[str]] = {
    "request": frozenset(),
    "account": frozenset({"labels"}),
    "api_key": frozenset({"scopes"}),
    "client": frozenset(),
    "usage": frozenset(),
}

EFFECTS: dict[str, int] = {
    "allow": pb.EFFECT_ALLOW,
    "deny": pb.EFFECT_DENY,
    "throttle": pb.EFFECT_THROTTLE,
    "flag": pb.EFFECT_FLAG,
}
EFFECT_NAMES: dict[int, str] = {v: k for k, v in EFFECTS.items()}
DEFAULT_HTTP_STATUS: dict[str, int] = {"allow": 200, "flag": 200, "deny": 403, "throttle": 429}


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
    for section, lists in SECTIONS.items():
        values = data.get(section)
        if values is None:
            continue
        _fill_section(getattr(req, section), values, lists)
        if section == "usage":
            req.usage.SetInParent()  # an all-null usage object is still "usage sent"
    return req


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
    for section, lists in SECTIONS.items():
        if section == "usage" and not req.HasField("usage"):
            out[section] = None
            continue
        out[section] = _read_section(getattr(req, section), lists)
    return out


def check_request_to_model(req: pb.CheckRequest) -> RequestContext:
    """Validated context; raises pydantic.ValidationError (e.g. unknown verification)."""
    return RequestContext.model_validate(check_request_to_context(req))


def usage_to_proto(prompt_tokens: int | None, completion_tokens: int | None) -> pb.Usage:
    for name, v in (("prompt_tokens", prompt_tokens), ("completion_tokens", completion_tokens)):
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            raise ConversionError(f"usage.{name}: expected a non-negative integer, got {v!r}")
    u = pb.Usage()
    if prompt_tokens is not None:
        u.prompt_tokens = prompt_tokens
    if completion_tokens is not None:
        u.completion_tokens = completion_tokens
    return u


def usage_from_proto(u: pb.Usage) -> dict[str, int | None]:
    return {
        "prompt_tokens": u.prompt_tokens if u.HasField("prompt_tokens") else None,
        "completion_tokens": u.completion_tokens if u.HasField("completion_tokens") else None,
    }


# --- decisions -------------------------------------------------------------


def field_of(obj: Any, *names: str, default: Any = None) -> Any:
    """The first present, non-null attribute (or key) among `names` of a decision-like object."""
    for name in names:
        value = obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
        if value is not None:
            return value
    return default


def effect_name(value: Any) -> str:
    """'allow' | 'deny' | 'throttle' | 'flag' from a string, an enum member or a wire value."""
    if isinstance(value, enum.Enum):  # the engine's Effect is an IntEnum ordered by strength
        value = value.name
    elif isinstance(value, int) and not isinstance(value, bool):
        if value not in EFFECT_NAMES:
            raise ConversionError(f"effect: unknown wire value {value}")
        return EFFECT_NAMES[value]
    name = str(value).lower().removeprefix("effect_") if value is not None else "allow"
    if name not in EFFECTS:
        raise ConversionError(f"effect: expected one of {sorted(EFFECTS)}, got {value!r}")
    return name


def rule_ids_of(decision: Any) -> list[str]:
    """Rule ids of a decision: rule_ids|rules (ids or objects with .id), else rule_id|rule."""
    ids = field_of(decision, "rule_ids", "rules")
    if ids is None:
        one = field_of(decision, "rule_id", "rule")
        return [] if one is None else [str(one)]
    return [str(getattr(r, "id", r)) for r in ids]


def _num(value: Any) -> float:
    return 0.0 if value is None else float(value)


def limit_to_proto(limit: Any) -> pb.LimitState:
    return pb.LimitState(
        limit_id=str(field_of(limit, "limit_id", "limit", "id", default="")),
        key=str(field_of(limit, "key", default="")),
        used=_num(field_of(limit, "used", "count")),
        max=_num(field_of(limit, "max")),
        remaining=_num(field_of(limit, "remaining")),
        reset_seconds=_num(field_of(limit, "reset_seconds", "reset")),
        over=bool(field_of(limit, "over", "exceeded", default=False)),
    )


def measure_to_proto(measure: Any) -> pb.MeasureState:
    """A MeasureState; `value` stays absent when it is null (the store failed)."""
    value = field_of(measure, "value")
    return pb.MeasureState(
        measure_id=str(field_of(measure, "measure_id", "measure", "id", default="")),
        key=str(field_of(measure, "key", default="")),
        value=None if value is None else float(value),
        charged=bool(field_of(measure, "charged", default=False)),
        error=str(field_of(measure, "error", default="")),
    )


def _shadow_to_proto(match: Any) -> pb.ShadowMatch:
    if isinstance(match, str):
        return pb.ShadowMatch(rule_id=match)
    return pb.ShadowMatch(
        rule_id=str(field_of(match, "rule_id", "id", "rule", default="")),
        effect=EFFECTS[effect_name(field_of(match, "effect", default="allow"))],
        reason=str(field_of(match, "reason", default="")),
    )


def decision_to_check_response(decision: Any, explain: bool = False) -> pb.CheckResponse:
    """A CheckResponse from a decision-like mapping or object.

    Read names (first present wins): effect; http_status|status; reason;
    rule_ids|rules|rule_id|rule; headers; flags; limits (limit_id|limit|id, key,
    used|count, max, remaining, reset_seconds|reset, over|exceeded);
    measures (measure_id|measure|id, key, value, charged, error);
    shadow_matches|shadow_rules|shadow; policy_version|version; request_id; retry_after;
    explanation|trace (a JSON-able object or a JSON string; only sent when
    `explain` is set).
    """
    effect = effect_name(field_of(decision, "effect", default="allow"))
    resp = pb.CheckResponse(
        effect=EFFECTS[effect],
        http_status=int(field_of(decision, "http_status", "status", default=DEFAULT_HTTP_STATUS[effect])),
        reason=str(field_of(decision, "reason", default="")),
        rule_ids=rule_ids_of(decision),
        flags=[str(f) for f in field_of(decision, "flags", default=())],
        policy_version=str(field_of(decision, "policy_version", "version", default="")),
        request_id=str(field_of(decision, "request_id", default="")),
        retry_after_seconds=_num(field_of(decision, "retry_after", "retry_after_seconds")),
    )
    resp.headers.update({str(k): str(v) for k, v in field_of(decision, "headers", default={}).items()})
    resp.limits.extend(limit_to_proto(lim) for lim in field_of(decision, "limits", default=()))
    resp.measures.extend(measure_to_proto(m) for m in field_of(decision, "measures", default=()))
    resp.shadow_matches.extend(_shadow_to_proto(m) for m in field_of(decision, "shadow_matches", "shadow_rules", "shadow", default=()))
    if explain:
        trace = field_of(decision, "explanation", "trace")
        if trace is not None:
            resp.explanation_json = trace if isinstance(trace, str) else json.dumps(trace, default=str)
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
        "explanation": explanation,
    }


# --- policy info -----------------------------------------------------------


def policy_info_to_proto(info: Any) -> pb.GetPolicyResponse:
    """GetPolicyResponse from a mapping/object: version, files, rule_ids, limit_ids,
    measure_ids, loaded_at (epoch seconds), last_reload_error."""
    resp = pb.GetPolicyResponse(
        version=str(field_of(info, "version", default="")),
        files=[str(f) for f in field_of(info, "files", default=())],
        rule_ids=[str(r) for r in field_of(info, "rule_ids", default=())],
        limit_ids=[str(x) for x in field_of(info, "limit_ids", default=())],
        measure_ids=[str(x) for x in field_of(info, "measure_ids", default=())],
    )
    loaded_at = field_of(info, "loaded_at")
    if loaded_at is not None:
        seconds = math.floor(float(loaded_at))
        resp.loaded_at.seconds = seconds
        resp.loaded_at.nanos = min(int(round((float(loaded_at) - seconds) * 1e9)), 999_999_999)
    err = field_of(info, "last_reload_error")
    if err is not None:
        resp.last_reload_error = str(err)
    return resp


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
    }

