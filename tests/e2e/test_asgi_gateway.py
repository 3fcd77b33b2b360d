"""The ASGI middleware against a real engine, driven with hand-built scope/receive/send."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from gateway_harness import EngineProc, Stack
from policy_engine.gateway.asgi import PolicyGateway

POLICY = """\
rule forbidden_model {
  deny when request.model == "forbidden-model"
  reason "model not offered"
}

rule blocked_network {
  deny when client.ip in ["203.0.113.0/24"]
  reason "network blocked"
}

rule cot {
  flag when contains(lower(request.prompt ?? ""), "step by step")
  reason "asks for step-by-step reasoning"
}

rule probe {
  deny when request.model == "probe"
  reason "probe"
}

limit free_per_minute {
  key account.id
  count
  window 1m
  max 1
  when account.tier == "free"
  throttle
  reason "free tier: 1 request per minute"
}

limit tokens {
  key account.id
  sum request.prompt_tokens ?? 0
  usage (usage.prompt_tokens ?? 0) + (usage.completion_tokens ?? 0)
  window 1d
  max 1000000
  throttle
  reason "token budget"
}

# What the usage reports said of the token classes and the serving model, in one number.
limit classes {
  key account.id
  sum 0
  usage (usage.cached_input_tokens ?? 0) * 1000000 + (usage.reasoning_tokens ?? 0) * 1000
    + (if usage.model == "served-model" then 1 else if usage.model == "m" then 2 else 0)
  window 1d
  max 1000000000000
  reason "never reached"
}
"""


@dataclass
class ModelApp:
    """A tiny OpenAI-style ASGI app: usage in the JSON body, in SSE events or in headers."""

    mode: str = "json"  # "json" | "sse" | "headers"
    served: str | None = None  # the model the answer names (None: it names none)
    calls: list[dict[str, str]] = field(default_factory=list)
    completion_tokens: int = 50

    async def __call__(
        self, scope: Any, receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]
    ) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        self.calls.append({k.decode(): v.decode() for k, v in scope["headers"]})
        if scope["path"] != "/v1/chat/completions":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        prompt = json.loads(body)["messages"][0]["content"]
        usage: dict[str, Any] = {"prompt_tokens": len(prompt) // 4 + 1, "completion_tokens": self.completion_tokens}
        usage["prompt_tokens_details"] = {"cached_tokens": 7}
        usage["completion_tokens_details"] = {"reasoning_tokens": 20}
        named = {"model": self.served} if self.served else {}
        if self.mode == "sse":
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]}
            )
            events = [{"choices": [{"delta": {"content": "hi"}}]}, {"choices": [], "usage": usage, **named}]
            for ev in events:
                data = f"data: {json.dumps(ev)}\n\n".encode()
                # Split mid-line, as a network would.
                await send({"type": "http.response.body", "body": data[:10], "more_body": True})
                await send({"type": "http.response.body", "body": data[10:], "more_body": True})
            await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})
            return
        headers = [(b"content-type", b"application/json")]
        if self.mode == "headers":
            headers += [
                (b"x-usage-prompt-tokens", str(usage["prompt_tokens"]).encode()),
                (b"x-usage-completion-tokens", str(usage["completion_tokens"]).encode()),
                (b"x-usage-cached-input-tokens", b"7"),
                (b"x-usage-reasoning-tokens", b"20"),
                *([(b"x-usage-model", self.served.encode())] if self.served else []),
            ]
            payload: dict[str, Any] = {"choices": []}
        else:
            payload = {"choices": [], "usage": usage, **named}
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": json.dumps(payload).encode()})


@dataclass
class Response:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)


async def call(
    app: Any,
    headers: dict[str, str] | None = None,
    *,
    model: str = "m",
    prompt: str = "hello there",
    path: str = "/v1/chat/completions",
    client: tuple[str, int] = ("198.51.100.20", 50000),
) -> Response:
    body = json.dumps({"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": prompt}]}).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (k.lower().encode(), v.encode())
            for k, v in {
                "content-type": "application/json",
                "content-length": str(len(body)),
                **(headers or {}),
            }.items()
        ],
        "client": client,
        "server": ("127.0.0.1", 8000),
    }
    # The body arrives in two chunks.
    incoming = [
        {"type": "http.request", "body": body[:7], "more_body": True},
        {"type": "http.request", "body": body[7:], "more_body": False},
    ]
    out = Response()

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(msg: dict[str, Any]) -> None:
        if msg["type"] == "http.response.start":
            out.status = msg["status"]
            out.headers = {k.decode().lower(): v.decode() for k, v in msg["headers"]}
        else:
            out.body += msg.get("body", b"")

    await app(scope, receive, send)
    return out


@pytest.fixture(scope="module")
def engine(module_stack: Stack) -> EngineProc:
    return module_stack.engine(POLICY)


def tokens_used(engine: EngineProc, account: str) -> float:
    with engine.client() as pe:
        r = pe.check({"account": {"id": account}, "request": {"model": "probe"}})
    return next(lim.used for lim in r.limits if lim.limit_id == "tokens")


def run(
    engine: EngineProc,
    body: Callable[[PolicyGateway, ModelApp], Awaitable[None]],
    *,
    mode: str = "json",
    served: str | None = None,
    **options: Any,
) -> ModelApp:
    model = ModelApp(mode, served)

    async def main() -> None:
        gw = PolicyGateway(model, target=engine.target, **{"timeout": 2.0, **options})
        try:
            await body(gw, model)
        finally:
            await gw.aclose()

    asyncio.run(main())
    return model


def test_allow_reaches_the_app_with_a_fresh_request_id_and_flags(engine: EngineProc) -> None:
    async def body(gw: PolicyGateway, model: ModelApp) -> None:
        r = await call(
            gw,
            {"x-account-id": "asgi-allow", "x-request-id": "chosen-by-caller", "x-policy-flags": "forged"},
            prompt="explain step by step",
        )
        assert r.status == 200, r.body
        (seen,) = model.calls
        assert seen["x-request-id"].startswith("gw-") and seen["x-request-id"] != "chosen-by-caller"
        assert seen["x-policy-flags"] == "cot"
        assert seen["x-account-id"] == "asgi-allow"
        assert "x-ratelimit-limit" in r.headers

    run(engine, body)


def test_deny_and_throttle_never_reach_the_app(engine: EngineProc) -> None:
    async def body(gw: PolicyGateway, model: ModelApp) -> None:
        r = await call(gw, {"x-account-id": "asgi-deny"}, model="forbidden-model")
        assert r.status == 403
        assert r.json() == {
            "error": {"type": "permission_denied", "reason": "model not offered", "rule": "forbidden_model"}
        }
        free = {"x-account-id": "asgi-free", "x-account-tier": "free"}
        assert (await call(gw, free)).status == 200
        r = await call(gw, free)
        assert r.status == 429 and int(r.headers["retry-after"]) > 0
        assert r.json()["error"]["rule"] == "free_per_minute"
        assert len(model.calls) == 1

    run(engine, body)


def test_client_ip_from_the_connection_and_trusted_hops(engine: EngineProc) -> None:
    async def body(gw: PolicyGateway, model: ModelApp) -> None:
        assert (await call(gw, {"x-account-id": "asgi-ip"}, client=("203.0.113.5", 1))).status == 403
        # No trusted hops: a forwarded-for header (or a forged Envoy header) changes nothing.
        spoof = {"x-account-id": "asgi-ip", "x-forwarded-for": "203.0.113.5", "x-envoy-external-address": "203.0.113.5"}
        assert (await call(gw, spoof)).status == 200

    run(engine, body)

    async def behind_proxy(gw: PolicyGateway, model: ModelApp) -> None:
        r = await call(gw, {"x-account-id": "asgi-ip", "x-forwarded-for": "203.0.113.5"}, client=("10.0.0.2", 1))
        assert r.status == 403 and r.json()["error"]["reason"] == "network blocked"

    from policy_engine.server.envoy_mapping import EnvoyMappingSettings

    run(engine, behind_proxy, settings=EnvoyMappingSettings(xff_num_trusted_hops=1))


@pytest.mark.parametrize("mode", ["json", "sse", "headers"])
def test_usage_is_reported_after_the_response(engine: EngineProc, mode: str) -> None:
    account = f"asgi-usage-{mode}"
    prompt = "a prompt of some forty characters length"

    async def body(gw: PolicyGateway, model: ModelApp) -> None:
        for _ in range(3):
            assert (await call(gw, {"x-account-id": account}, prompt=prompt)).status == 200
        await gw.aclose()  # waits for the reports in flight

    run(engine, body, mode=mode)
    real = 3 * (len(prompt) // 4 + 1 + 50)
    assert tokens_used(engine, account) == real


@pytest.mark.parametrize("mode", ["json", "sse", "headers"])
def test_token_classes_and_the_serving_model_are_reported(engine: EngineProc, mode: str) -> None:
    async def body(gw: PolicyGateway, model: ModelApp) -> None:
        for account in (f"asgi-classes-{mode}", f"asgi-asked-{mode}"):
            model.served = "served-model" if account.startswith("asgi-classes") else None
            assert (await call(gw, {"x-account-id": account})).status == 200
        await gw.aclose()

    run(engine, body, mode=mode)
    with engine.client() as pe:
        for account, model_code in ((f"asgi-classes-{mode}", 1), (f"asgi-asked-{mode}", 2)):
            r = pe.check({"account": {"id": account}, "request": {"model": "probe"}})
            used = next(lim.used for lim in r.limits if lim.limit_id == "classes")
            # 7 cached, 20 reasoning; the answer's model, else the one the request asked for ("m")
            assert used == 7 * 1_000_000 + 20 * 1000 + model_code, (account, used)


def test_engine_down_fails_closed_or_open(stack: Stack) -> None:
    engine = stack.engine(POLICY)
    engine.proc.stop()

    async def closed(gw: PolicyGateway, model: ModelApp) -> None:
        r = await call(gw, {"x-account-id": "asgi-down"})
        assert r.status == 503 and r.json()["error"]["type"] == "policy_unavailable"
        assert model.calls == []

    async def open_(gw: PolicyGateway, model: ModelApp) -> None:
        r = await call(gw, {"x-account-id": "asgi-down"}, model="forbidden-model")
        assert r.status == 200
        assert model.calls[0]["x-policy-unchecked"] == "true"

    run(engine, closed, timeout=0.5)
    run(engine, open_, timeout=0.5, fail_open=True)


def test_other_paths_and_large_bodies(engine: EngineProc) -> None:
    async def body(gw: PolicyGateway, model: ModelApp) -> None:
        r = await call(gw, {}, path="/healthz")  # not a model path: passed through unchecked
        assert r.status == 200 and r.body == b"ok"
        r = await call(gw, {"x-account-id": "asgi-big"}, prompt="x" * 5000)
        assert r.status == 413
        assert len(model.calls) == 1

    run(engine, body, max_body_bytes=1000)


def test_needs_a_target_or_a_client() -> None:
    with pytest.raises(ValueError, match="exactly one of"):
        PolicyGateway(ModelApp())
