"""ASGI middleware: ask policy-engine before each model call, report its real usage after.

    from policy_engine.gateway.asgi import PolicyGateway
    app = PolicyGateway(model_app, target="127.0.0.1:50051")

For Python gateways (FastAPI, Starlette, any ASGI server) that do not sit behind
Envoy. Requests to the model paths are read with the same ingress layer as
Envoy's ext_authz calls (`policy_engine.ingress`: identity headers or a JWT,
the OpenAI-style body, the client address and trusted x-forwarded-for hops),
checked with `AsyncPolicyClient`, and answered by `ingress.answer`, as Envoy's
are:

- deny / throttle / a refused token: the JSON error, status and headers
  (`retry-after`, `x-ratelimit-*`) go to the caller; the app is not called.
- allow / flag: the app is called with a fresh `x-request-id` (a caller cannot
  pick it: usage is reconciled on it) and `x-policy-flags`; the decision's
  headers (`x-ratelimit-*`, a policy's own) are added to the response.
- after the response, the real usage is reported: from `x-usage-*` response
  headers (prompt, completion, cached-input and reasoning tokens, model), else
  from the JSON `usage` block (and `model`) of the body, or of the last
  server-sent event that has one (streaming with `stream_options.include_usage`);
  an answer that names no model was served by the model the request asked for.
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
from typing import Any

from pydantic import ValidationError

import grpc
from policy_engine.attributes import NO_ATTRIBUTES, Attributes
from policy_engine.client import AsyncPolicyClient, CheckResult
from policy_engine.context import ATTRIBUTES
from policy_engine.ingress.answer import Answer, answer_checked, refusal
from policy_engine.ingress.http import HttpRequest, TlsIdentity, header_map
from policy_engine.ingress.identity import MappingError
from policy_engine.ingress.mapping import RequestMapper
from policy_engine.ingress.network import EXTERNAL_ADDRESS_HEADER
from policy_engine.ingress.settings import IngressSettings
from policy_engine.ingress.usage import DEFAULT_USAGE_HEADERS, Usage, UsageHeaders, model_name, usage_from_json

log = logging.getLogger("policy_engine.gateway")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MODEL_PATHS = ("/v1/chat/completions", "/v1/completions", "/v1/responses")
# Headers only a proxy in front may set; from a caller they would be forged.
_PROXY_ONLY = frozenset({EXTERNAL_ADDRESS_HEADER, "x-policy-flags", "x-policy-unchecked"})
_SSE_USAGE = re.compile(rb'^data:\s*(\{.*"usage".*\})\s*$', re.MULTILINE)


class _UsageTap:
    """Watches the response going out and works out the usage it carries."""

    def __init__(self, headers: UsageHeaders, max_body: int) -> None:
        self.usage_headers, self.max_body = headers, max_body
        self.status = 0
        self.headers = Usage()
        self.kind = ""  # "json" | "sse" | ""
        self.body = bytearray()
        self.sse_usage = Usage()
        self._sse_tail = b""

    def start(self, message: Message) -> None:
        self.status = int(message.get("status", 0))
        sent = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in message.get("headers", [])}
        self.headers = self.usage_headers.read(sent.get)
        ctype = sent.get("content-type", "").lower()
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
    chunks: list[bytes] = []
    size = 0
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


async def _respond(send: Send, a: Answer) -> None:
    raw = [
        (b"content-type", a.headers.get("content-type", "application/json").encode("latin-1")),
        (b"content-length", str(len(a.body)).encode()),
    ]
    raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in a.headers.items() if k != "content-type"]
    await send({"type": "http.response.start", "status": a.status, "headers": raw})
    await send({"type": "http.response.body", "body": a.body, "more_body": False})


def _tls(scope: Scope) -> TlsIdentity | None:
    """The client certificate of the ASGI TLS extension, when the server verified one."""
    tls = (scope.get("extensions") or {}).get("tls") or {}
    name = tls.get("client_cert_name")
    if not name or tls.get("client_cert_error"):
        return None
    chain = tls.get("client_cert_chain") or []
    return TlsIdentity(str(name), str(chain[0]) if chain else "")


class PolicyGateway:
    """ASGI middleware around a model-serving app; see the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        target: str | None = None,
        client: AsyncPolicyClient | None = None,
        settings: IngressSettings | None = None,
        paths: tuple[str, ...] = MODEL_PATHS,
        fail_open: bool = False,
        timeout: float = 0.2,
        max_body_bytes: int = 4 << 20,
        usage_headers: UsageHeaders = DEFAULT_USAGE_HEADERS,
        max_usage_body_bytes: int = 1 << 20,
    ) -> None:
        if (target is None) == (client is None):
            raise ValueError("PolicyGateway needs exactly one of target= (an engine address) or client=")
        self.app = app
        self.target = target
        self._client = client
        self.mapper = RequestMapper(settings or IngressSettings())
        s = self.mapper.settings
        # Set here, so never taken from the caller.
        self._set_here = _PROXY_ONLY | {"x-request-id", s.flags_header}
        self.paths = frozenset(paths)
        self.fail_open = fail_open
        self.timeout = timeout
        self.max_body_bytes = max_body_bytes
        self.usage_headers = usage_headers
        self.max_usage_body_bytes = max_usage_body_bytes
        self._prefix = secrets.token_hex(4)
        self._seq = 0
        self._reports: set[asyncio.Task[None]] = set()
        # The serving policy's declared attributes (from GetPolicy), and its version:
        # asked again after a Check answers from another version.
        self._attributes: Attributes | None = None
        self._attributes_version = ""

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
            await _respond(send, refusal(413, "request_too_large", f"body over {self.max_body_bytes} bytes"))
            return
        request_id = self._request_id()
        result, a, model = await self._check(scope, body, request_id)
        if a is not None and not a.allowed:
            await _respond(send, a)
            return
        await self._forward(scope, body, request_id, result, a, send, model)

    def _http_request(self, scope: Scope, body: bytes, request_id: str) -> HttpRequest:
        headers = header_map((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", []))
        for name in _PROXY_ONLY:
            headers.pop(name, None)
        headers["x-request-id"] = request_id
        peer = scope.get("client")
        if peer:
            # Like an edge Envoy (use_remote_address): the peer is the last x-forwarded-for
            # hop, so xff_num_trusted_hops means the same thing in both gateways.
            xff = headers.get("x-forwarded-for")
            headers["x-forwarded-for"] = f"{xff}, {peer[0]}" if xff else str(peer[0])
        query = scope.get("query_string", b"")
        return HttpRequest(
            method=scope.get("method", "POST"),
            path=scope["path"] + (("?" + query.decode("latin-1")) if query else ""),
            headers=headers,
            body=body,
            peer=str(peer[0]) if peer else None,
            tls=_tls(scope),
            id=request_id,
        )

    async def _declared(self) -> Attributes:
        """The attributes the serving policy declares, asked once per policy version."""
        if self._attributes is None:
            info = await self.client.get_policy()
            self._attributes = Attributes(info.attributes) if info.attributes else NO_ATTRIBUTES
            self._attributes_version = info.version
        return self._attributes

    async def _check(
        self, scope: Scope, body: bytes, request_id: str
    ) -> tuple[CheckResult | None, Answer | None, str | None]:
        """(the engine's result, the answer for the caller, the model asked for); no result
        and no answer when failing open."""
        s = self.mapper.settings
        model = None
        try:
            attributes = await self._declared()
            mapped = self.mapper.map(self._http_request(scope, body, request_id), attributes=attributes)
            model = model_name((mapped.context.get("request") or {}).get("model"))
            if attributes:
                attributes.from_scope(mapped.context.setdefault(ATTRIBUTES, {}), scope)
            result = await self.client.check(mapped.context)
            if result.policy_version != self._attributes_version:
                self._attributes = None  # a reload: its declarations may differ
        except MappingError as e:
            return None, e.answer(), model
        except ValidationError as e:
            return None, refusal(400, "invalid_request", str(e)), model
        except grpc.RpcError as e:
            log.warning(
                "policy check failed (%s): %s",
                e.code() if hasattr(e, "code") else "?",
                "failing open" if self.fail_open else "refusing the call",
            )
            if not self.fail_open:
                return None, refusal(503, "policy_unavailable", "the policy engine did not answer"), model
            return None, None, model
        a = answer_checked(result, flags_header=s.flags_header, headers_on_allow=s.rate_limit_headers_on_allow)
        return result, a, model

    async def _forward(
        self,
        scope: Scope,
        body: bytes,
        request_id: str,
        result: CheckResult | None,
        a: Answer | None,
        send: Send,
        model: str | None,
    ) -> None:
        extra = {"x-request-id": request_id, **(a.upstream if a is not None else {"x-policy-unchecked": "true"})}
        inner = dict(scope)
        inner["headers"] = [
            (k, v) for k, v in scope.get("headers", []) if k.decode("latin-1").lower() not in self._set_here
        ]
        inner["headers"] += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
        replayed = False

        async def receive() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return {"type": "http.disconnect"}

        tap = _UsageTap(self.usage_headers, self.max_usage_body_bytes)
        to_caller = a.headers if a is not None else {}

        async def send_out(message: Message) -> None:
            if message["type"] == "http.response.start":
                tap.start(message)
                message = dict(message)
                message["headers"] = [
                    *message.get("headers", []),
                    *[(k.encode("latin-1"), v.encode("latin-1")) for k, v in to_caller.items()],
                ]
            elif message["type"] == "http.response.body":
                tap.chunk(message.get("body", b""))
            await send(message)

        await self.app(inner, receive, send_out)
        usage = tap.usage().with_model(model)  # no model in the answer: the one asked for served it
        if result is not None and usage.known:
            # After the response: the caller does not wait for the report.
            task = asyncio.ensure_future(self._report(request_id, usage))
            self._reports.add(task)
            task.add_done_callback(self._reports.discard)

    async def _report(self, request_id: str, usage: Usage) -> None:
        try:
            await self.client.report(request_id, usage=usage)
        except grpc.RpcError as e:  # a lost report only leaves the estimate in place
            log.warning("usage report for %s failed: %s", request_id, e)
