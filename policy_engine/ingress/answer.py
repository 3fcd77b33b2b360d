"""Decision -> what the caller and the upstream get: status, headers, error body. One place for all gateways.

The rate-limit headers follow one rule. The engine picks the limits they
describe (engine._apply_limits): for each of three slots, any limit, `count`
limits (requests) and `sum` limits (tokens), the limit that refused the
request, else the enforcing one with the least of its maximum left; none when
a rule denied. `finish_headers` below writes them in the families a policy
asks for (`rate_limit_headers` in its header, `dsl.policy_options`):

| family | headers | limit |
| --- | --- | --- |
| `x-ratelimit` (default) | x-ratelimit-limit / -remaining / -reset | any |
| `openai` | x-ratelimit-limit-requests / -remaining-requests / -reset-requests, the same with -tokens | requests, tokens |
| `ietf` | RateLimit-Policy: "id";q=max;w=window[;qu="tokens"] and RateLimit: "id";r=remaining;t=reset | requests, tokens |

with whole seconds rounded up (OpenAI's resets as "38s"), so that a caller
that waits them out is not refused again for a fraction of one. How much they
say is the policy's `rate_limit_disclosure` (and `_flagged`, for a request a
flag rule matched): `full`, `limits` (the maxima and windows, not what is left
nor when it resets) or `none`. A throttle always carries retry-after.

An `Answer` is protocol-neutral, and built here only: from an engine's
decision (`answer_decision`: Envoy's ext_authz and rate-limit services, the HTTP
forward-auth endpoints) or from our Check's answer read back from the wire
(`answer_checked`: the ASGI gateway, the LiteLLM callback); each adapter only
turns it into its own message. Our own PolicyService/Check is the one that
sends the decision itself (headers, flags and all: `wire.decision_to_check_response`),
for the gateway on the other side to answer it here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from dsl.policy_options import DEFAULT as DEFAULT_RATE_HEADERS
from dsl.policy_options import RateLimitHeaders
from policy_engine.decision import Decision, Effect, LimitState

# The header the engine lists flags in. Flags say which detections fired: they go
# to the upstream (under the gateway's flags header), never back to the caller.
FLAGS_HEADER = "x-policy-flags"

# Error types of the JSON error body, by refusing effect.
ERROR_TYPES: dict[str, str] = {"deny": "permission_denied", "throttle": "rate_limit_exceeded"}


def rate_limit_headers(lim: LimitState, full: bool = True) -> dict[str, str]:
    """x-ratelimit-limit / -remaining / -reset for one limit (the limit alone unless `full`)."""
    if not full:
        return {"x-ratelimit-limit": str(int(lim.max))}
    return {
        "x-ratelimit-limit": str(int(lim.max)),
        "x-ratelimit-remaining": str(max(0, int(lim.remaining))),
        "x-ratelimit-reset": str(max(0, math.ceil(lim.reset))),
    }


def openai_headers(d: Decision, full: bool = True) -> dict[str, str]:
    """OpenAI's per-requests and per-tokens headers, for the decision's requests and tokens limits."""
    out: dict[str, str] = {}
    for unit, lim in (("requests", d.requests_limit), ("tokens", d.tokens_limit)):
        if lim is None:
            continue
        out[f"x-ratelimit-limit-{unit}"] = str(int(lim.max))
        if full:
            out[f"x-ratelimit-remaining-{unit}"] = str(max(0, int(lim.remaining)))
            out[f"x-ratelimit-reset-{unit}"] = f"{max(0, math.ceil(lim.reset))}s"
    return out


def ietf_headers(d: Decision, full: bool = True) -> dict[str, str]:
    """The IETF draft's RateLimit-Policy and RateLimit fields (structured lists, one item per limit)."""
    policies, states = [], []
    for unit, lim in (("requests", d.requests_limit), ("tokens", d.tokens_limit)):
        if lim is None:
            continue
        name = '"' + lim.limit + '"'  # limit ids are names: nothing to escape in an sf-string
        policies.append(
            f"{name};q={int(lim.max)};w={max(1, math.ceil(lim.window))}" + (';qu="tokens"' if unit == "tokens" else "")
        )
        states.append(f"{name};r={max(0, int(lim.remaining))};t={max(0, math.ceil(lim.reset))}")
    if not policies:
        return {}
    out = {"ratelimit-policy": ", ".join(policies)}
    if full:
        out["ratelimit"] = ", ".join(states)
    return out


def retry_after(seconds: float) -> str:
    """The retry-after value: whole seconds, rounded up, at least one."""
    return str(max(1, math.ceil(seconds)))


def _rate_headers(d: Decision, options: RateLimitHeaders) -> dict[str, str]:
    level = options.level(bool(d.flags))
    if level == "none":
        return {}
    full = level == "full"
    families = options.families
    out = rate_limit_headers(d.rate_limit, full) if d.rate_limit is not None and "x-ratelimit" in families else {}
    if "openai" in families:
        out.update(openai_headers(d, full))
    if "ietf" in families:
        out.update(ietf_headers(d, full))
    return out


def finish_headers(d: Decision, options: RateLimitHeaders = DEFAULT_RATE_HEADERS) -> None:
    """The headers every decision carries, beside what its rules and limits declared
    (which win, whatever their case, except over retry-after): the rate-limit headers
    the policy's options ask for, retry-after on throttle, and the flags."""
    headers = d.headers
    declared = {k.lower() for k in headers} if headers else None
    if options is DEFAULT_RATE_HEADERS:  # the common case, kept as lean as it was
        if d.rate_limit is not None:
            rate = rate_limit_headers(d.rate_limit)
            headers.update(rate if declared is None else {k: v for k, v in rate.items() if k not in declared})
    elif d.rate_limit is not None or d.requests_limit is not None or d.tokens_limit is not None:
        rate = _rate_headers(d, options)
        headers.update(rate if declared is None else {k: v for k, v in rate.items() if k not in declared})
    if d.effect is Effect.THROTTLE and d.retry_after is not None:
        headers["retry-after"] = retry_after(d.retry_after)
    if d.flags and (declared is None or FLAGS_HEADER not in declared):
        headers[FLAGS_HEADER] = ",".join(d.flags)


def error_body(err_type: str, reason: str, rule: str | None = None) -> bytes:
    """The JSON error body of every refusal, whoever refuses."""
    return json.dumps({"error": {"type": err_type, "reason": reason, "rule": rule}}).encode()


JSON_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class Answer:
    allowed: bool
    status: int  # the decision's HTTP status (the caller's, on a refusal)
    reason: str
    headers: dict[str, str]  # to the caller (with content-type on a refusal)
    body: bytes = b""  # the JSON error body of a refusal
    error_type: str | None = None
    upstream: dict[str, str] = field(default_factory=dict)  # set on the request passed on
    remove_upstream: tuple[str, ...] = ()  # stripped from the request passed on

    def headers_without_body(self) -> dict[str, str]:
        """The caller's headers for a gateway that writes its own refusal (Envoy's rate-limit
        filter answers 429 with no body of ours): without the error body's content-type."""
        if self.body and self.headers.get("content-type") == JSON_TYPE:
            return {k: v for k, v in self.headers.items() if k != "content-type"}
        return self.headers


def refusal(
    status: int, err_type: str, reason: str, rule: str | None = None, headers: Mapping[str, str] | None = None
) -> Answer:
    """A refused request: the JSON error body, its content-type, and `headers`."""
    return Answer(
        False,
        status,
        reason,
        {"content-type": JSON_TYPE, **(headers or {})},
        error_body(err_type, reason, rule),
        err_type,
    )


def caller_headers(headers: Mapping[str, str], flags_header: str = FLAGS_HEADER) -> dict[str, str]:
    """A decision's headers as the caller gets them: lower-case names, no flags."""
    out = {str(k).lower(): str(v) for k, v in headers.items()}
    out.pop(FLAGS_HEADER, None)
    out.pop(flags_header, None)
    return out


def answer(
    effect: str,
    status: int,
    reason: str,
    rules: Sequence[str],
    flags: Sequence[str],
    headers: Mapping[str, str],
    *,
    flags_header: str = FLAGS_HEADER,
    headers_on_allow: bool = True,
) -> Answer:
    """The answer for a decision, given as its parts (so that a decision read back from
    the wire answers the same as the engine's own)."""
    to_caller = caller_headers(headers, flags_header)
    if effect in ERROR_TYPES:
        return refusal(status, ERROR_TYPES[effect], reason, rules[0] if rules else None, to_caller)
    if flags:
        return Answer(
            True, status, reason, to_caller if headers_on_allow else {}, upstream={flags_header: ",".join(flags)}
        )
    # Never pass on a caller's own copy of the flags header.
    return Answer(True, status, reason, to_caller if headers_on_allow else {}, remove_upstream=(flags_header,))


class CheckedDecision(Protocol):
    """A decision as our Check answers it, read back from the wire (`client.CheckResult`)."""

    @property
    def effect(self) -> str: ...
    @property
    def http_status(self) -> int: ...
    @property
    def reason(self) -> str: ...
    @property
    def rule_ids(self) -> Sequence[str]: ...
    @property
    def flags(self) -> Sequence[str]: ...
    @property
    def headers(self) -> Mapping[str, str]: ...


def answer_checked(r: CheckedDecision, *, flags_header: str = FLAGS_HEADER, headers_on_allow: bool = True) -> Answer:
    """The answer for a decision our Check returned (the ASGI gateway, LiteLLM): the same as
    the engine's own decision gets from `answer_decision`."""
    return answer(
        r.effect,
        r.http_status,
        r.reason,
        r.rule_ids,
        r.flags,
        r.headers,
        flags_header=flags_header,
        headers_on_allow=headers_on_allow,
    )


def answer_decision(d: Decision, *, flags_header: str = FLAGS_HEADER, headers_on_allow: bool = True) -> Answer:
    """The answer for an engine's decision (Envoy's ext_authz and rate-limit services, forward-auth)."""
    return answer(
        d.effect.label,
        d.status,
        d.reason or "",
        d.rules,
        d.flags,
        d.headers,
        flags_header=flags_header,
        headers_on_allow=headers_on_allow,
    )
