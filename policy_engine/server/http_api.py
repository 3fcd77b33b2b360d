"""HTTP forward-auth for nginx (`auth_request`), Caddy (`forward_auth`) and Traefik (`forwardAuth`).

Served by `policyctl serve --http-port N` in the gRPC server's process and
event loop (aiohttp's low-level server), with the same engine, policy
reloads, metrics and decision log (`Decider`):

    /forward-auth   any method. The original request as the proxy forwards it:
                    method and URI from X-Forwarded-Method / X-Forwarded-Uri
                    (or X-Original-Method / X-Original-Uri), its headers, and
                    its body (Traefik's forwardBody), or the body base64 in
                    `x-policy-body` (Caddy's {http.request.body_base64}).
                    Answers 200 (headers for the upstream and the caller) or
                    the refusal's own status, headers and JSON error body.
    /auth-request   the same for nginx, whose auth_request takes only 2xx, 401
                    and 403: every other refusal is 403 with the real status in
                    `x-policy-status` and the JSON error body in
                    `x-policy-error`, for the nginx config to answer with.
    /report         POST {"request_id", "prompt_tokens", "completion_tokens", "cached_input_tokens",
                    "reasoning_tokens", "model"}
                    (or an OpenAI `usage` block): the real usage of a call.
    /healthz        200 while serving, 503 while draining.

On an allowed request the answer carries `x-request-id` (the engine's id, on
which usage is reconciled: a caller cannot pick it), the flags header when a
flag rule matched, and the decision's caller headers (`x-ratelimit-*`).
The client address is the proxy's X-Forwarded-For entry
`xff_num_trusted_hops` from the right (0: the proxy's own peer); the
Envoy-only `x-envoy-external-address` is not trusted here.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from pydantic import ValidationError

from policy_engine.context import Context, describe_validation_error
from policy_engine.ingress.answer import Answer, answer_decision, refusal
from policy_engine.ingress.http import HttpRequest, header_map
from policy_engine.ingress.identity import MappingError
from policy_engine.ingress.mapping import RequestMapper
from policy_engine.ingress.usage import usage_block, usage_from_json
from policy_engine.server.metrics import Metrics
from policy_engine.server.servicers import Decider
from policy_engine.server.settings import HttpSettings

log = logging.getLogger("policy_engine.server")

API = "forward_auth"
# What nginx's auth_request accepts from the check; anything else is its own 500.
NGINX_STATUSES = frozenset({401, 403})
STATUS_HEADER = "x-policy-status"
ERROR_HEADER = "x-policy-error"
# Headers that describe the forwarded request rather than belong to it.
_METHOD_HEADERS = ("x-forwarded-method", "x-original-method")
_URI_HEADERS = ("x-forwarded-uri", "x-original-uri")
_HOP_HEADERS = (
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-proto",
    "x-forwarded-server",
)
_MAX_REPORT_BYTES = 64 << 10


def original_request(
    method: str, path: str, headers: dict[str, str], body: bytes, peer: str | None, request_id: str, body_header: str
) -> HttpRequest:
    """The request a proxy asks about, from its forward-auth call (`headers` lower-case)."""
    forwarded_method = _pop_first(headers, _METHOD_HEADERS)
    forwarded_uri = _pop_first(headers, _URI_HEADERS)
    for name in _HOP_HEADERS:
        headers.pop(name, None)
    encoded = headers.pop(body_header, None)
    if encoded:
        try:
            body = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            # Caddy puts its error there when the body is over its request_body max_size.
            raise MappingError(f"{body_header}: the proxy could not send the body ({encoded[:80]})", 413) from None
        headers["content-length"] = str(len(body))
    return HttpRequest(
        method=forwarded_method or method,
        path=forwarded_uri or path,
        headers=headers,
        body=body,
        peer=peer,
        id=request_id,
    )


def _pop_first(headers: dict[str, str], names: tuple[str, ...]) -> str | None:
    found = None
    for name in names:
        value = headers.pop(name, None)
        if found is None and value:
            found = value
    return found


def allowed_headers(a: Answer, request_id: str) -> dict[str, str]:
    """An admitted request's check answer: the caller's headers, those for the upstream, the id."""
    return {**a.headers, **a.upstream, "x-request-id": request_id}


def for_nginx(a: Answer) -> tuple[int, dict[str, str]]:
    """A refusal as nginx's auth_request can take it: 401 or 403, the real status and body in headers."""
    headers = {**a.headers, STATUS_HEADER: str(a.status), ERROR_HEADER: a.body.decode("ascii", "replace")}
    return (a.status if a.status in NGINX_STATUSES else 403), headers


class HttpApi:
    """The endpoints; `handle` is aiohttp's low-level request handler."""

    def __init__(self, decider: Decider, settings: HttpSettings, serving: Callable[[], bool]) -> None:
        self.decider = decider
        self.settings = settings
        self.mapper = RequestMapper(settings)
        self.serving = serving
        self._deadline = settings.deadline_ms / 1000
        self._routes: dict[str, Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]] = {
            "/forward-auth": self._forward_auth,
            "/auth-request": self._auth_request,
            "/report": self._report,
            "/healthz": self._health,
        }

    @property
    def metrics(self) -> Metrics:
        return self.decider.metrics

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        route = self._routes.get(request.path)
        if route is None:
            return _json(404, {"error": {"type": "not_found", "reason": f"no endpoint {request.path}"}})
        return await route(request)

    async def _health(self, request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(status=200 if self.serving() else 503, text="ok\n" if self.serving() else "draining\n")

    async def _forward_auth(self, request: web.BaseRequest) -> web.StreamResponse:
        a, request_id = await self._check(request)
        if a.allowed:
            return web.Response(status=200, headers=allowed_headers(a, request_id))
        return web.Response(status=a.status, headers=a.headers, body=a.body)

    async def _auth_request(self, request: web.BaseRequest) -> web.StreamResponse:
        a, request_id = await self._check(request)
        if a.allowed:
            return web.Response(status=200, headers=allowed_headers(a, request_id))
        status, headers = for_nginx(a)
        return web.Response(status=status, headers=headers, body=a.body)

    async def _check(self, request: web.BaseRequest) -> tuple[Answer, str]:
        """The answer for the request a proxy asks about, and its request id."""
        request_id = self.decider.new_request_id()
        try:
            async with asyncio.timeout(self._deadline):
                body = await _read_prefix(request, self.settings.max_body_bytes)
                req = original_request(
                    request.method,
                    request.path_qs,
                    header_map(request.headers.items()),
                    body,
                    request.remote,
                    request_id,
                    self.settings.body_header,
                )
                attributes = self.decider.engine.policy.attributes
                ctx = Context.from_mapped(self.mapper.map(req, attributes=attributes).context)
                # the proxy forwards the request's trace headers (traceparent, b3) with it
                trace = req.headers if self.decider.tracing is not None else None
                d = await self.decider.decide(ctx, API, trace_headers=trace)
        except MappingError as e:
            self.metrics.invalid_request(API)
            return e.answer(), request_id
        except ValidationError as e:
            self.metrics.invalid_request(API)
            return refusal(400, "invalid_request", describe_validation_error(e)), request_id
        except TimeoutError:
            log.warning("forward-auth: no decision within %g ms; refusing", self.settings.deadline_ms)
            return refusal(503, "policy_unavailable", "the policy engine did not decide in time"), request_id
        s = self.settings
        return answer_decision(
            d, flags_header=s.flags_header, headers_on_allow=s.rate_limit_headers_on_allow
        ), d.request_id or request_id

    async def _report(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method != "POST":
            return _json(405, {"error": {"type": "method_not_allowed", "reason": "POST a usage report"}})
        raw = await _read_prefix(request, _MAX_REPORT_BYTES + 1)
        try:
            doc = json.loads(raw) if len(raw) <= _MAX_REPORT_BYTES else None
        except ValueError:
            doc = None
        rid = doc.get("request_id") if isinstance(doc, dict) else None
        if not isinstance(rid, str) or not rid:
            self.metrics.invalid_request("report")
            return _json(
                400,
                {
                    "error": {
                        "type": "invalid_request",
                        "reason": "expected a JSON object with a request_id (at most 64 KiB)",
                    }
                },
            )
        assert isinstance(doc, dict)
        # An OpenAI-style `usage` block (and the answer's `model`), or the usage fields flat.
        usage = usage_from_json(doc) if isinstance(doc.get("usage"), dict) else usage_block(doc)
        try:
            applied = await self.decider.engine.report(rid, usage)
        except Exception as e:  # noqa: BLE001 - the store is down or late: tell the caller to retry
            return _json(503, {"error": {"type": "store_unavailable", "reason": f"{type(e).__name__}: {e}"}})
        return _json(200, {"applied": applied})


def _json(status: int, doc: object) -> web.Response:
    return web.Response(status=status, body=json.dumps(doc).encode(), content_type="application/json")


async def _read_prefix(request: web.BaseRequest, limit: int) -> bytes:
    """At most `limit` bytes of the body; the rest is left unread (a cut body is read as one)."""
    if not request.body_exists:
        return b""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await request.content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def ssl_context(cert: Path, key: Path, client_ca: Path | None) -> ssl.SSLContext:
    """TLS like the gRPC port: the same certificate, and client certificates when a CA is given."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    if client_ca is not None:
        ctx.load_verify_locations(client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class HttpServer:
    """The HTTP listener: bound by `start`, closed by `stop` after requests in flight finish."""

    def __init__(self, api: HttpApi, settings: HttpSettings, grace: float) -> None:
        self.api = api
        self._server = web.Server(
            api.handle,
            access_log=None,
            max_field_size=settings.max_header_bytes,
            max_line_size=max(8190, settings.max_header_bytes),
        )
        self._runner = web.ServerRunner(self._server, handle_signals=False, shutdown_timeout=grace)
        self._site: web.TCPSite | None = None
        self.port = 0

    async def start(self, host: str, port: int, ssl_ctx: ssl.SSLContext | None, reuse_port: bool) -> int:
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, host, port, ssl_context=ssl_ctx, reuse_port=reuse_port)
        await self._site.start()
        sockets = self._runner.addresses
        self.port = int(sockets[0][1]) if sockets else port
        return self.port

    async def stop(self) -> None:
        await self._runner.cleanup()
