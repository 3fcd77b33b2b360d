"""HttpRequest -> request context (the JSON shape of the design), whatever the gateway."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from policy_engine.attributes import NO_ATTRIBUTES, Attributes
from policy_engine.context import ATTRIBUTES
from policy_engine.ingress.bodies import BodyInfo, estimate_tokens, read_body
from policy_engine.ingress.http import HttpRequest
from policy_engine.ingress.identity import IdentityReader
from policy_engine.ingress.network import client_ip
from policy_engine.ingress.settings import IngressSettings
from policy_engine.ingress.values import get, put


@dataclass
class MappedRequest:
    context: dict[str, Any]  # request-context JSON shape; absent fields are null
    warnings: list[str] = field(default_factory=list)  # values present but unusable, and why
    body_truncated: bool = False


class RequestMapper:
    """Maps HTTP requests with one settings object (and its loaded JWKS)."""

    def __init__(self, settings: IngressSettings | None = None) -> None:
        self.settings = settings or IngressSettings()
        self.identity = IdentityReader(self.settings)
        names = self.settings.headers.by_path()
        self._request_id, self._user_agent = names["request.id"], names["client.user_agent"]
        self._model, self._prompt_tokens = names["request.model"], names["request.prompt_tokens"]

    def map(self, req: HttpRequest, now: float | None = None, attributes: Attributes = NO_ATTRIBUTES) -> MappedRequest:
        """The request context `req` carries, with the raw values of the `attributes` the
        serving policy declares. Raises MappingError for a refused token."""
        s = self.settings
        headers = req.headers
        out = MappedRequest(context={})
        ctx, warnings = out.context, out.warnings
        if req.time is not None:
            ctx["request"] = {"ts": req.time}
        now = now if now is not None else req.time if req.time is not None else time.time()

        request_id = (headers.get(self._request_id) if self._request_id else None) or req.id
        if request_id:
            put(ctx, "request.id", request_id, warnings, "request id")
        claims = self.identity.read(ctx, headers, now, warnings)
        if attributes:
            raw: dict[str, Any] = {}
            attributes.from_http(raw, headers, claims, s.identity == "headers")
            if raw:
                ctx[ATTRIBUTES] = raw
        if ip := client_ip(req.peer, headers, s.trust_envoy_external_address, s.xff_num_trusted_hops):
            ctx.setdefault("client", {})["ip"] = ip
        if self._user_agent and (ua := headers.get(self._user_agent)):
            put(ctx, "client.user_agent", ua, warnings, f"header {self._user_agent}")
        self._body(req, out)
        return out

    def _body(self, req: HttpRequest, out: MappedRequest) -> None:
        s = self.settings
        ctx, warnings, headers = out.context, out.warnings, req.headers
        info, missing = BodyInfo(), 0
        if s.parse_body and req.body:
            read = read_body(req.body, headers.get("content-length"), s.max_body_bytes)
            info, missing, out.body_truncated = read.info, read.missing, read.truncated
            if not info.complete:
                warnings.append("body: not complete JSON; used the readable prefix")
        model = info.model or (headers.get(self._model) if self._model else None)
        if model:
            put(ctx, "request.model", model, warnings, "body model")
        if info.prompt is not None:
            ctx.setdefault("request", {})["prompt"] = info.prompt
        if info.max_tokens is not None:
            ctx.setdefault("request", {})["max_tokens"] = info.max_tokens
        given = headers.get(self._prompt_tokens) if self._prompt_tokens else None
        if given is not None:
            put(ctx, "request.prompt_tokens", given, warnings, f"header {self._prompt_tokens}")
        if get(ctx, "request.prompt_tokens") is None and info.prompt is not None:
            # A cut body: the unread bytes are (nearly all) prompt text, so count them too.
            chars = len(info.prompt) + missing
            ctx.setdefault("request", {})["prompt_tokens"] = estimate_tokens(chars, s.chars_per_token)
