"""LiteLLM: ask policy-engine (gRPC) before every model call, report the real usage after.

The proxy, in one line of its config.yaml (the engine's address from
POLICY_ENGINE_TARGET, default 127.0.0.1:50051):

    litellm_settings:
      callbacks: policy_engine.gateway.litellm_callback.policy_engine

A Router, or the SDK:

    from policy_engine.gateway.litellm_callback import PolicyEngineCallback
    litellm.callbacks = [PolicyEngineCallback(target="127.0.0.1:50051")]

What the engine sees: `request.model` (the model name the caller asked for),
`request.prompt`, `request.max_tokens` and an estimated `request.prompt_tokens`
from the messages (the same reader as every other gateway), and the caller:

- proxy: the virtual key's user (`account.id`, else its team), team
  (`account.org`), alias or hash (`api_key.id`), and `tier` / `labels` /
  `verification` / `age_days` from the key's metadata (set by the proxy's
  admin, so trusted), and declared attributes from its `policy_engine_attributes`
  entry; the client IP the proxy recorded. A request body's own
  `metadata` is not read: callers would write it.
- Router / SDK: `user=` (`account.id`) and `metadata={"policy_engine": {...}}`,
  a partial request context the calling code fills in (it is the trusted side).

Answers:

- proxy: a refusal is an HTTP error with the decision's status (429, 403, ...),
  reason and headers (`retry-after`, `x-ratelimit-*`); an admitted call gets
  the decision's rate-limit headers on its response.
- Router / SDK: a refusal raises `PolicyRefused`, a LiteLLM guardrail
  intervention: the Router neither retries it, nor falls back, nor cools the
  deployment down (a refusal is about the caller, not the deployment). For
  that, its LiteLLM-facing `status_code` is 403; the decision's own status is
  `http_status` (429 for throttle), with `reason`, `rule`, `retry_after` and
  `headers`.
- the engine unreachable or late: refused (503, `policy_unavailable`), or
  called anyway with `fail_open=True`.

One check per call: the Router's retries and fallbacks of one call (one
`litellm_trace_id`) reuse its decision. After a successful call, streamed or
not, LiteLLM's success callback reports the usage it counted under the
check's request id, so a token budget holds what the model produced.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from litellm.exceptions import GuardrailRaisedException
from litellm.integrations.custom_logger import CustomLogger
from pydantic import ValidationError

import grpc
from policy_engine.client import AsyncPolicyClient
from policy_engine.ingress.answer import Answer, answer_checked, refusal
from policy_engine.ingress.bodies import body_info, estimate_tokens
from policy_engine.ingress.usage import model_name, usage_from_json

log = logging.getLogger("policy_engine.gateway")

DEFAULT_TARGET = "127.0.0.1:50051"
GUARDRAIL_NAME = "policy-engine"
# What LiteLLM's Router sees of a refusal: a guardrail block (no retry, fallback or cooldown).
ROUTER_STATUS = 403
_KEY_METADATA = ("tier", "verification", "age_days", "labels", "payment_fingerprint")
# A virtual key's metadata entry holding values of the policy's declared attributes, by path.
KEY_ATTRIBUTES = "policy_engine_attributes"
_MAX_REMEMBERED = 10_000  # calls whose decision is kept for their retries and usage report


class PolicyRefused(GuardrailRaisedException):
    """A call the policy refused (or, failing closed, could not check)."""

    def __init__(self, a: Answer) -> None:
        super().__init__(
            GUARDRAIL_NAME,
            a.reason,
            should_wrap_with_default_message=False,
            status_code=ROUTER_STATUS,
            blocked_content=a.status != 503,
        )
        self.http_status = a.status
        self.reason = a.reason
        self.error_type = a.error_type
        self.headers = dict(a.headers)
        self.body = a.body
        self.retry_after = float(a.headers["retry-after"]) if "retry-after" in a.headers else None


@dataclass(slots=True)
class _Checked:
    request_id: str
    answer: Answer | None  # None: not checked (failing open)


def _call_keys(data: Mapping[str, Any]) -> list[str]:
    """The ids one call goes by: its trace id (shared by the Router's retries), then its call id."""
    return [str(v) for k in ("litellm_trace_id", "litellm_call_id") if (v := data.get(k))]


def _request_part(data: Mapping[str, Any], chars_per_token: float) -> dict[str, Any]:
    info = body_info(data)
    out: dict[str, Any] = {}
    # The name the caller asked for: a Router's model group, not the deployment it picked.
    metadata = data.get("metadata")
    group = metadata.get("model_group") if isinstance(metadata, Mapping) else None
    if isinstance(model := group or data.get("model"), str):
        out["model"] = model
    if info.prompt is not None:
        out["prompt"] = info.prompt
        out["prompt_tokens"] = estimate_tokens(len(info.prompt), chars_per_token)
    if info.max_tokens is not None:
        out["max_tokens"] = info.max_tokens
    return out


def proxy_identity(key: Any, data: Mapping[str, Any]) -> dict[str, Any]:
    """The caller as LiteLLM's proxy authenticated it (a UserAPIKeyAuth), as request-context sections."""
    account: dict[str, Any] = {}
    meta = getattr(key, "metadata", None) or {}
    if who := getattr(key, "user_id", None) or getattr(key, "team_id", None):
        account["id"] = str(who)
    if team := getattr(key, "team_id", None):
        account["org"] = str(team)
    for name in _KEY_METADATA:
        if meta.get(name) is not None:
            account[name] = meta[name]
    out: dict[str, Any] = {"account": account} if account else {}
    if isinstance(declared := meta.get(KEY_ATTRIBUTES), Mapping) and declared:
        out["attributes"] = dict(declared)  # the policy's declared attributes, set by the proxy's admin
    if key_id := getattr(key, "key_alias", None) or getattr(key, "token", None):
        out["api_key"] = {"id": str(key_id)}
    metadata = data.get("metadata")
    if isinstance(metadata, Mapping) and isinstance(ip := metadata.get("requester_ip_address"), str) and ip:
        out["client"] = {"ip": ip}
    return out


def sdk_identity(data: Mapping[str, Any]) -> dict[str, Any]:
    """The caller as Router / SDK code names it: `user=` and `metadata={"policy_engine": {...}}`."""
    out: dict[str, Any] = {}
    metadata = data.get("metadata")
    given = metadata.get("policy_engine") if isinstance(metadata, Mapping) else None
    if isinstance(given, Mapping):
        out = {section: dict(v) for section, v in given.items() if isinstance(v, Mapping)}
    if isinstance(user := data.get("user"), str) and user:
        out.setdefault("account", {}).setdefault("id", user)
    return out


class PolicyEngineCallback(CustomLogger):
    """LiteLLM callback for the proxy and the Router / SDK; see the module docstring."""

    def __init__(
        self,
        target: str | None = None,
        *,
        client: AsyncPolicyClient | None = None,
        timeout: float = 0.2,
        fail_open: bool = False,
        chars_per_token: float = 4.0,
        flags_header: str = "x-policy-flags",
    ) -> None:
        super().__init__()
        self.target = target or os.environ.get("POLICY_ENGINE_TARGET", DEFAULT_TARGET)
        self._given_client = client
        self._clients: dict[int, AsyncPolicyClient] = {}
        self.timeout = timeout
        self.fail_open = fail_open
        self.chars_per_token = chars_per_token
        self.flags_header = flags_header
        self._calls: OrderedDict[str, _Checked] = OrderedDict()
        self.reported = 0

    # -- the engine ----------------------------------------------------------------------------

    @property
    def client(self) -> AsyncPolicyClient:
        """The client of the running event loop (a grpc.aio channel belongs to one loop)."""
        if self._given_client is not None:
            return self._given_client
        loop = id(asyncio.get_running_loop())
        c = self._clients.get(loop)
        if c is None:
            c = self._clients[loop] = AsyncPolicyClient(self.target, timeout=self.timeout)
        return c

    async def aclose(self) -> None:
        for c in self._clients.values():
            await c.close()
        self._clients.clear()

    def _remember(self, keys: list[str], checked: _Checked) -> None:
        for k in keys:
            self._calls[k] = checked
            self._calls.move_to_end(k)
        while len(self._calls) > _MAX_REMEMBERED:
            self._calls.popitem(last=False)

    def _known(self, keys: list[str]) -> _Checked | None:
        return next((c for k in keys if (c := self._calls.get(k)) is not None), None)

    async def check(self, data: Mapping[str, Any], identity: dict[str, Any]) -> _Checked:
        """The decision for one call, asked once (its retries reuse it)."""
        keys = _call_keys(data)
        if (known := self._known(keys)) is not None:
            return known
        request_id = f"ll-{keys[0]}" if keys else None
        context = {**identity, "request": {**identity.get("request", {}), **_request_part(data, self.chars_per_token)}}
        if request_id:
            context["request"]["id"] = request_id
        try:
            r = await self.client.check(context)
        except (ValidationError, ValueError) as e:
            checked = _Checked(request_id or "", refusal(400, "invalid_request", str(e)))
        except grpc.RpcError as e:
            code = e.code() if hasattr(e, "code") else "?"
            log.warning("policy check failed (%s): %s", code, "failing open" if self.fail_open else "refusing the call")
            a = None if self.fail_open else refusal(503, "policy_unavailable", "the policy engine did not answer")
            checked = _Checked(request_id or "", a)
        else:
            checked = _Checked(r.request_id, answer_checked(r, flags_header=self.flags_header))
        self._remember(keys, checked)
        return checked

    # -- before the call -----------------------------------------------------------------------

    async def async_pre_call_hook(
        self, user_api_key_dict: Any, cache: Any, data: dict[str, Any], call_type: Any
    ) -> dict[str, Any] | None:
        """The proxy's hook, before routing: refusals become HTTP errors with the decision's status."""
        checked = await self.check(data, proxy_identity(user_api_key_dict, data))
        a = checked.answer
        if a is not None and not a.allowed:
            from fastapi import HTTPException  # the proxy's web framework; only the proxy calls this hook

            raise HTTPException(
                status_code=a.status,
                detail={"error": {"type": a.error_type, "reason": a.reason, "message": a.reason}},
                headers=a.headers,
            )
        return None

    async def async_pre_call_deployment_hook(self, kwargs: dict[str, Any], call_type: Any) -> dict[str, Any] | None:
        """The Router's and SDK's hook, before each attempt (the proxy's calls were checked already)."""
        checked = await self.check(kwargs, sdk_identity(kwargs))
        if checked.answer is not None and not checked.answer.allowed:
            raise PolicyRefused(checked.answer)
        return None

    async def async_post_call_response_headers_hook(
        self,
        data: dict[str, Any],
        user_api_key_dict: Any,
        response: Any,
        request_headers: dict[str, str] | None = None,
        litellm_call_info: dict[str, Any] | None = None,
    ) -> dict[str, str] | None:
        """The proxy's hook on the answer: the decision's caller headers (x-ratelimit-*)."""
        checked = self._known(_call_keys(data))
        if checked is None or checked.answer is None or not checked.answer.allowed:
            return None
        return dict(checked.answer.headers) or None

    # -- after the call ------------------------------------------------------------------------

    async def async_log_success_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        """A finished call (a whole stream included): its usage, reported under the check's request id."""
        checked = self._known(_call_keys(kwargs))
        if checked is None or checked.answer is None or not checked.request_id:
            return
        usage: Any = getattr(response_obj, "usage", None)
        if hasattr(usage, "model_dump"):  # LiteLLM's Usage, a pydantic model
            usage = usage.model_dump()
        # The model that served the call (a fallback may have changed it), else the one asked for.
        u = usage_from_json({"usage": usage, "model": getattr(response_obj, "model", None)})
        if not u.known:
            return
        u = u.with_model(model_name(kwargs.get("model")))
        try:
            if await self.client.report(checked.request_id, usage=u):
                self.reported += 1
        except grpc.RpcError as e:  # a lost report only leaves the estimate in place
            log.warning("usage report for %s failed: %s", checked.request_id, e)


def _from_environment() -> PolicyEngineCallback:
    """The instance a proxy config names: POLICY_ENGINE_TARGET, POLICY_ENGINE_TIMEOUT, POLICY_ENGINE_FAIL_OPEN."""
    return PolicyEngineCallback(
        timeout=float(os.environ.get("POLICY_ENGINE_TIMEOUT", "0.2")),
        fail_open=os.environ.get("POLICY_ENGINE_FAIL_OPEN", "").lower() in ("1", "true", "yes"),
    )


# `callbacks: policy_engine.gateway.litellm_callback.policy_engine` in a LiteLLM proxy config.
policy_engine = _from_environment()
