"""ASGI middleware: ask policy-engine before each model call, report its real usage after.

    from policy_engine.gateway.asgi import PolicyGateway
    app = PolicyGateway(model_app, target="127.0.0.1:50051")

For Python gateways (FastAPI, Starlette, any ASGI server) that do not sit behind
Envoy. Requests to the model paths are mapped exactly as the engine maps
Envoy's ext_authz calls (`EnvoyMapper`, same settings: identity headers or a
JWT, the OpenAI-style body, the client address and trusted x-forwarded-for
hops), then checked with `AsyncPolicyClient`:

- deny / throttle / a refused token: the JSON error, status and headers
  (`retry-after`, `x-ratelimit-*`) go to the caller; the app is not called.
- allow / flag: the app is called with a fresh `x-request-id` (a caller cannot
  pick it: usage is reconciled on it) and `x-policy-flags`; the engine's
  `x-ratelimit-*` headers are added to the response.
- after the response, the real usage is reported: from `x-usage-prompt-tokens`
  / `x-usage-completion-tokens` response headers, else from the JSON `usage`
  block of the body, or of the last server-sent event that has one (streaming
  with `stream_options.include_usage`).
- the engine unreachable or late: `fail_open=True` calls the app anyway (with
  `x-policy-unchecked: true`), otherwise 503.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import grpc
from pydantic import ValidationError

from policy_engine.client import AsyncPolicyClient, CheckResult
from policy_engine.proto.envoy.service.auth.v3 import external_auth_pb2 as authz
from policy_engine.server.envoy_mapping import EnvoyMapper, EnvoyMappingSettings, MappingError

log = logging.getLogger("policy_engine.gateway")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MODEL_PATHS = ("/v1/chat/completions", "/v1/completions", "/v1/responses")
# Headers only a proxy in front may set; from a caller they would be forged.
_PROXY_ONLY = frozenset({"x-envoy-external-address", "x-policy-flags", "x-policy-unchecked"})
_SET_HERE = _PROXY_ONLY | {"x-request-id"}
_SSE_USAGE = re.compile(rb'^data:\s*(\{.*"usage".*\})\s*$', re.MULTILINE)


@dataclass
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    @property
    def known(self) -> bool:
        return self.prompt_tokens is not None or self.completion_tokens is not None


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return value if isinstance(value, int) and value >= 0 else None


def usage_from_json(doc: Any) -> Usage:
    u = doc.get("usage") if isinstance(doc, dict) else None
    if not isinstance(u, dict):
        return Usage()
    # OpenAI chat/completions names, then the responses API's.
    return Usage(_count(u.get("prompt_tokens", u.get("input_tokens"))),
                 _count(u.get("completion_tokens", u.get("output_tokens"))))


class _UsageTap:
    """Watches the response going out and works out the usage it carries."""

    def __init__(self, prompt_header: str, completion_header: str, max_body: int) -> None:
        self.prompt_header, self.completion_header, self.max_body = prompt_header, completion_header, max_body
        self.status = 0
        self.headers = Usage()
        self.kind = ""  # "json" | "sse" | ""
        self.body = bytearray()
        self.sse_usage = Usage()
        self._sse_tail = b""

    def start(self, message: Message) -> None:
        self.status = int(message.get("status", 0))
        for name, value in message.get("headers", []):
            key = name.decode("latin-1").lower()
            if key == self.prompt_header:
                self.headers.prompt_tokens = _count(value.decode("latin-1"))
            elif key == self.completion_header:
                self.headers.completion_tokens = _count(value.decode("latin-1"))
            elif key == "content-type":
                ctype = value.decode("latin-1").lower()
                self.kind = "sse" if "text/event-stream" in ctype else "json" if "json" in ctype else ""

    def chunk(self, data: bytes) -> None:
        if self.headers.known or not data:
            return
        if self.kind == "json" and len(self.body) + len(data) <= self.max_body:
            self.body += data
        elif self.kind == "sse":
            # Only whole lines are parsed; a line cut between chunks waits for its end.
            text = self._sse_tail + data
            text, _, self._sse_tail = text.rpartition(b"\n")
            for m in _SSE_USAGE.finditer(text):
                u = usage_from_json(_loads(m.group(1)))
                if u.known:
                    self.sse_usage = u

    def usage(self) -> Usage:
        if self.status != 200:
            return Usage()
        if self.headers.known:
            return self.headers
        if self.kind == "json":
            return usage_from_json(_loads(bytes(self.body)))
        return self.sse_usage


def _loads(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """The whole request body, or (prefix, False) once it is longer than `limit`."""
    chunks, size = [], 0
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return b"".join(chunks), True
        data = msg.get("body", b"")
        size += len(data)
        if size > limit:
            return b"", False
        chunks.append(data)
        if not msg.get("more_body", False):
            return b"".join(chunks), True


async def _respond(send: Send, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
    body = json.dumps(payload).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class PolicyGateway:
    """ASGI middleware around a model-serving app; see the module docstring."""

    def __init__(self, app: ASGIApp, *, target: str | None = None, client: AsyncPolicyClient | None = None,
                 settings: EnvoyMappingSettings | None = None, paths: tuple[str, ...] = MODEL_PATHS,
                 fail_open: bool = False, timeout: float = 0.2, max_body_bytes: int = 4 << 20,
                 usage_headers: tuple[str, str] = ("x-usage-prompt-tokens", "x-usage-completion-tokens"),
                 max_usage_body_bytes: int = 1 << 20) -> None:
        if (target is None) == (client is None):
            raise ValueError("PolicyGateway needs exactly one of target= (an engine address) or client=")
        self.app = app
        self.target = target
        self._client = client
        self.mapper = EnvoyMapper(settings or EnvoyMappingSettings())
        self.paths = frozenset(paths)
        self.fail_open = fail_open
        self.timeout = timeout
        self.max_body_bytes = max_body_bytes
        self.usage_headers = (usage_headers[0].lower(), usage_headers[1].lower())
        self.max_usage_body_bytes = max_usage_body_bytes
        self._prefix = secrets.token_hex(4)
        self._seq = 0
        self._reports: set[asyncio.Task[None]] = set()

    @property
    def client(self) -> AsyncPolicyClient:
        # grpc.aio channels belong to an event loop: make it inside the first request's loop.
        if self._client is None:
            assert self.target is not None
            self._client = AsyncPolicyClient(self.target, timeout=self.timeout)
        return self._client

    async def aclose(self) -> None:
        """Wait for usage reports still being sent, then close the client (if this gateway made it)."""
        if self._reports:
            await asyncio.gather(*self._reports, return_exceptions=True)
        if self._client is not None and self.target is not None:
            await self._client.close()
            self._client = None

    def _request_id(self) -> str:
        self._seq += 1
        return f"gw-{self._prefix}-{self._seq}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        body, fits = await _read_body(receive, self.max_body_bytes)
        if not fits:
            await _respond(send, 413, {"error": {"type": "request_too_large",
                                                 "reason": f"body over {self.max_body_bytes} bytes"}})
            return
        headers = {name: v.decode("latin-1") for k, v in scope.get("headers", [])
                   if (name := k.decode("latin-1").lower()) not in _PROXY_ONLY}
        headers["x-request-id"] = request_id = self._request_id()
        if peer := scope.get("client"):
            # Like an edge Envoy (use_remote_address): the peer is the last x-forwarded-for
            # hop, so xff_num_trusted_hops means the same thing in both gateways.
            xff = headers.get("x-forwarded-for")
            headers["x-forwarded-for"] = f"{xff}, {peer[0]}" if xff else str(peer[0])
        try:
            mapped = self.mapper.map_check(self._check_request(scope, headers, body))
            result: CheckResult | None = await self.client.check(mapped.context)
        except MappingError as e:
            await _respond(send, e.http_status, {"error": {"type": "unauthenticated", "reason": e.reason}},
                           {"www-authenticate": 'Bearer error="invalid_token"'})
            return
        except ValidationError as e:
            await _respond(send, 400, {"error": {"type": "invalid_request", "reason": str(e)}})
            return
        except grpc.RpcError as e:
            log.warning("policy check failed (%s): %s", e.code() if hasattr(e, "code") else "?",
                        "failing open" if self.fail_open else "refusing the call")
            if not self.fail_open:
                await _respond(send, 503, {"error": {"type": "policy_unavailable",
                                                     "reason": "the policy engine did not answer"}})
                return
            result = None
        if result is not None and not result.allowed:
            rule = result.rule_ids[0] if result.rule_ids else None
            kind = "rate_limit_exceeded" if result.effect == "throttle" else "permission_denied"
            await _respond(send, result.http_status, {"error": {"type": kind, "reason": result.reason, "rule": rule}},
                           result.headers)
            return
        await self._forward(scope, body, headers, request_id, result, send)

    def _check_request(self, scope: Scope, headers: dict[str, str], body: bytes) -> authz.CheckRequest:
        """The request as Envoy's ext_authz would describe it, so that both gateways map alike."""
        req = authz.CheckRequest()
        client = scope.get("client")
        if client:
            req.attributes.source.address.socket_address.address = client[0]
            req.attributes.source.address.socket_address.port_value = int(client[1] or 0)
        http = req.attributes.request.http
        http.id = headers["x-request-id"]
        http.method = scope.get("method", "POST")
        query = scope.get("query_string", b"")
        http.path = scope["path"] + (("?" + query.decode("latin-1")) if query else "")
        http.host = headers.get("host", "")
        http.scheme = scope.get("scheme", "http")
        http.headers.update(headers)
        http.raw_body = body
        return req

    async def _forward(self, scope: Scope, body: bytes, headers: dict[str, str], request_id: str,
                       result: CheckResult | None, send: Send) -> None:
        extra = {"x-request-id": request_id}
        if result is None:
            extra["x-policy-unchecked"] = "true"
        elif result.flags:
            extra[self.mapper.settings.flags_header] = ",".join(result.flags)
        inner = dict(scope)
        inner["headers"] = [(k, v) for k, v in scope.get("headers", [])
                            if k.decode("latin-1").lower() not in _SET_HERE]
        inner["headers"] += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
        replayed = False

        async def receive() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return {"type": "http.disconnect"}

        tap = _UsageTap(*self.usage_headers, self.max_usage_body_bytes)
        to_caller = {}
        if result is not None and self.mapper.settings.rate_limit_headers_on_allow:
            to_caller = {k: v for k, v in result.headers.items() if k.lower().startswith("x-ratelimit-")}

        async def send_out(message: Message) -> None:
            if message["type"] == "http.response.start":
                tap.start(message)
                message = dict(message)
                message["headers"] = [*message.get("headers", []),
                                      *[(k.encode("latin-1"), v.encode("latin-1")) for k, v in to_caller.items()]]
            elif message["type"] == "http.response.body":
                tap.chunk(message.get("body", b""))
            await send(message)

        await self.app(inner, receive, send_out)
        usage = tap.usage()
        if result is not None and usage.known:
            # After the response: the caller does not wait for the report.
            task = asyncio.ensure_future(self._report(request_id, usage))
            self._reports.add(task)
            task.add_done_callback(self._reports.discard)

    async def _report(self, request_id: str, usage: Usage) -> None:
        try:
            await self.client.report(request_id, usage.prompt_tokens, usage.completion_tokens)
        except grpc.RpcError as e:  # a lost report only leaves the estimate in place
            log.warning("usage report for %s failed: %s", request_id, e)
