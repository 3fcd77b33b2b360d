"""LiteLLM with policy-engine's callback: the Router and the SDK in-process, and the proxy as its own
process, both with mock responses (no network), asking a real engine over gRPC."""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch of LiteLLM's price list

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway_harness import HOST, EngineProc, Stack, http_request, spawn, wait_until
from policy_engine.server.app import free_port

try:
    import litellm
    from litellm.integrations.custom_logger import CustomLogger
except ImportError:  # pragma: no cover - the dev extra installs it
    pytest.fail("litellm is not installed: run scripts/setup (it is in the dev extra)", pytrace=False)

from policy_engine.gateway.litellm_callback import PolicyEngineCallback, PolicyRefused, proxy_identity

# LiteLLM's own types warn under this pydantic version; nothing of ours.
pytestmark = pytest.mark.filterwarnings("ignore:.*ReadOnly.*:UserWarning")

POLICY = """\
policy "litellm-e2e" {
  owner "tests"
}

rule forbidden_model {
  deny when request.model == "forbidden-model"
  reason "model not offered"
}

rule budget_probe {
  deny when request.model == "probe"
  reason "probe"
}

limit per_minute {
  key account.id ?? "anonymous"
  count
  window 1m
  max 2
  when (account.tier ?? "free") == "free"
  throttle
  reason "free tier: 2 calls a minute"
}

limit daily_tokens {
  key account.id
  sum request.prompt_tokens ?? 0
  usage (usage.prompt_tokens ?? 0) + (usage.completion_tokens ?? 0)
  window 1d
  max 100000
  when account.tier == "budget"
  throttle
  reason "daily token budget exhausted"
}

# What the usage reports said of the token classes and the serving model, in one number.
limit classes {
  key account.id
  sum 0
  usage (usage.cached_input_tokens ?? 0) * 1000000 + (usage.reasoning_tokens ?? 0) * 1000
    + (if usage.model == "gpt-served" then 1 else 0)
  window 1d
  max 1000000000000
  reason "never reached"
}

# The proxy's calls, per virtual key: only their reported usage counts.
limit proxy_key_tokens {
  key api_key.id
  sum 0
  usage (usage.prompt_tokens ?? 0) + (usage.completion_tokens ?? 0)
  window 1d
  max 1000000
  when api_key.id != null
  throttle
  reason "key budget"
}
"""

MESSAGES = [{"role": "user", "content": "Summarise the history of tea"}]
WAIT = 10.0
CALLBACK_WAIT = 20.0


@pytest.fixture(scope="module")
def engine(module_stack: Stack) -> EngineProc:
    return module_stack.engine(POLICY)


class Outcomes(CustomLogger):
    """Counts what LiteLLM reports: calls that reached the (mock) model, and failures."""

    def __init__(self) -> None:
        super().__init__()
        self.successes = 0
        self.failures: list[BaseException] = []

    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self.successes += 1

    async def async_log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self.failures.append(kwargs.get("exception"))


def router(deployments: int = 1, retries: int = 0) -> Any:
    return litellm.Router(
        model_list=[
            {
                "model_name": name,
                "litellm_params": {
                    "model": f"openai/gpt-4o-{i}",
                    "api_key": "sk-test",
                    "mock_response": "a mock answer",
                },
            }
            for name in ("test-model", "forbidden-model")
            for i in range(deployments)
        ],
        num_retries=retries,
    )


# One event loop for every LiteLLM call here: LiteLLM's logging queue belongs to the loop it started on.
_RUNNER = asyncio.Runner()


@pytest.fixture(scope="module", autouse=True)
def _close_runner() -> Iterator[None]:
    yield
    _RUNNER.close()


def run_with(
    callback: PolicyEngineCallback, coro_fn: Any, successes: int = 0, failures: int = 0
) -> tuple[Any, Outcomes]:
    """Run `coro_fn` with the callback installed; then wait (bounded) for LiteLLM's success and
    failure callbacks, which run after the call from its logging queue (the first ones of a
    process only after seconds of LiteLLM's one-time setup)."""
    outcomes = Outcomes()
    # LiteLLM copies callbacks into its success and failure lists on first use: start from none.
    litellm.logging_callback_manager._reset_all_callbacks()
    litellm.callbacks = [callback, outcomes]

    async def go() -> Any:
        try:
            return await coro_fn()
        finally:
            deadline = time.monotonic() + CALLBACK_WAIT
            while (outcomes.successes < successes or len(outcomes.failures) < failures) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            await callback.aclose()

    try:
        return _RUNNER.run(go()), outcomes
    finally:
        litellm.logging_callback_manager._reset_all_callbacks()


def budget_used(engine: EngineProc, account: str) -> float:
    with engine.client() as pe:
        r = pe.check({"account": {"id": account, "tier": "budget"}, "request": {"model": "probe"}})
    (state,) = [lim for lim in r.limits if lim.limit_id == "daily_tokens"]
    return state.used


def wait_used(engine: EngineProc, account: str, expected: float) -> float:
    deadline = time.monotonic() + WAIT
    used = budget_used(engine, account)
    while used != expected and time.monotonic() < deadline:
        time.sleep(0.05)
        used = budget_used(engine, account)
    return used


# --- the Router and the SDK ----------------------------------------------------------------


def test_router_call_is_checked_and_its_usage_reported(engine: EngineProc) -> None:
    cb = PolicyEngineCallback(engine.target, timeout=5)
    meta = {"policy_engine": {"account": {"tier": "budget"}}}
    r, outcomes = run_with(
        cb,
        lambda: router().acompletion(model="test-model", messages=MESSAGES, user="acct-ll-usage", metadata=meta),
        successes=1,
    )
    assert r.choices[0].message.content == "a mock answer"
    assert outcomes.successes == 1
    # The budget holds LiteLLM's count of the call, not the check-time estimate.
    assert wait_used(engine, "acct-ll-usage", r.usage.total_tokens) == r.usage.total_tokens
    assert cb.reported == 1


def test_token_classes_and_the_serving_model_are_reported(engine: EngineProc) -> None:
    cb = PolicyEngineCallback(engine.target, timeout=5)
    answer = {
        "model": "gpt-served",
        "choices": [{"message": {"role": "assistant", "content": "an answer"}}],
        "usage": {
            "prompt_tokens": 100,
            "completion_tokens": 50,
            "total_tokens": 150,
            "prompt_tokens_details": {"cached_tokens": 7},
            "completion_tokens_details": {"reasoning_tokens": 20},
        },
    }
    run_with(
        cb,
        lambda: router().acompletion(
            model="test-model", messages=MESSAGES, user="acct-ll-classes", mock_response=answer
        ),
        successes=1,
    )
    deadline = time.monotonic() + WAIT
    used = 0.0
    while used != 7_020_001 and time.monotonic() < deadline:
        with engine.client() as pe:
            r = pe.check({"account": {"id": "acct-ll-classes"}, "request": {"model": "probe"}})
        used = next(lim.used for lim in r.limits if lim.limit_id == "classes")
        time.sleep(0.05)
    assert used == 7 * 1_000_000 + 20 * 1000 + 1  # 7 cached, 20 reasoning, and the model that answered


def test_a_streamed_call_reports_its_usage_at_the_end(engine: EngineProc) -> None:
    cb = PolicyEngineCallback(engine.target, timeout=5)

    async def stream() -> int:
        s = await router().acompletion(
            model="test-model",
            messages=MESSAGES,
            user="acct-ll-stream",
            stream=True,
            stream_options={"include_usage": True},
            metadata={"policy_engine": {"account": {"tier": "budget"}}},
        )
        total = 0
        async for chunk in s:
            usage = getattr(chunk, "usage", None)
            total = usage.total_tokens if usage else total
        return total

    total, _ = run_with(cb, stream, successes=1)
    assert total > 0
    assert wait_used(engine, "acct-ll-stream", total) == total


def test_a_denied_call_raises_and_never_reaches_the_model(engine: EngineProc) -> None:
    cb = PolicyEngineCallback(engine.target, timeout=5)

    async def call() -> PolicyRefused:
        with pytest.raises(PolicyRefused) as info:
            await router().acompletion(model="forbidden-model", messages=MESSAGES, user="acct-ll-deny")
        return info.value

    refused, outcomes = run_with(cb, call, failures=1)
    assert (refused.http_status, refused.reason, refused.error_type) == (403, "model not offered", "permission_denied")
    assert json.loads(refused.body)["error"]["rule"] == "forbidden_model"
    assert outcomes.successes == 0


def test_a_throttled_call_is_checked_once_and_cools_no_deployment_down(engine: EngineProc) -> None:
    cb = PolicyEngineCallback(engine.target, timeout=5)
    r = router(deployments=2, retries=2)  # retries and two deployments: none may repeat the check

    async def calls() -> tuple[PolicyRefused, Any]:
        for _ in range(2):
            await r.acompletion(model="test-model", messages=MESSAGES, user="acct-ll-free")
        with pytest.raises(PolicyRefused) as info:
            await r.acompletion(model="test-model", messages=MESSAGES, user="acct-ll-free")
        # Another caller is not refused: the Router did not take the refusal for a failing deployment.
        other = await r.acompletion(model="test-model", messages=MESSAGES, user="acct-ll-other")
        return info.value, other

    (refused, other), outcomes = run_with(cb, calls, successes=3)
    assert refused.http_status == 429 and refused.reason == "free tier: 2 calls a minute"
    assert refused.status_code == 403  # what LiteLLM's Router sees: a guardrail block
    assert refused.retry_after is not None and refused.retry_after >= 1
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert other.choices[0].message.content == "a mock answer"
    assert outcomes.successes == 3
    with engine.client() as pe:  # three checks for acct-ll-free, not one per retry
        r2 = pe.check({"account": {"id": "acct-ll-free"}, "request": {"model": "probe"}})
    (state,) = [lim for lim in r2.limits if lim.limit_id == "per_minute"]
    assert state.used == 2


def test_the_sdk_is_checked_too(engine: EngineProc) -> None:
    cb = PolicyEngineCallback(engine.target, timeout=5)

    async def call() -> PolicyRefused:
        with pytest.raises(PolicyRefused) as info:
            await litellm.acompletion(model="forbidden-model", messages=MESSAGES, mock_response="x", user="acct-sdk")
        return info.value

    refused, _ = run_with(cb, call)
    assert refused.http_status == 403


def test_engine_down_fails_closed_or_open_as_configured() -> None:
    dead = f"{HOST}:{free_port(HOST)}"

    async def call() -> Any:
        return await router().acompletion(model="test-model", messages=MESSAGES, user="acct-down")

    async def refused_call() -> PolicyRefused:
        with pytest.raises(PolicyRefused) as info:
            await call()
        return info.value

    refused, outcomes = run_with(PolicyEngineCallback(dead, timeout=0.5), refused_call, failures=1)
    assert refused.http_status == 503 and refused.error_type == "policy_unavailable"
    assert outcomes.successes == 0
    r, outcomes = run_with(PolicyEngineCallback(dead, timeout=0.5, fail_open=True), call, successes=1)
    assert r.choices[0].message.content == "a mock answer" and outcomes.successes == 1


def test_proxy_identity_reads_the_key_not_the_body() -> None:
    from litellm.proxy._types import UserAPIKeyAuth

    meta = {"tier": "pro", "labels": ["watch"], "policy_engine_attributes": {"account.risk_score": 0.4}}
    key = UserAPIKeyAuth(user_id="user-7", team_id="team-3", key_alias="ci-key", metadata=meta)
    body_meta = {"account": {"tier": "free"}, "attributes": {"account.risk_score": 0.0}}
    data = {"metadata": {"requester_ip_address": "203.0.113.4", "policy_engine": body_meta}}
    assert proxy_identity(key, data) == {
        "account": {"id": "user-7", "org": "team-3", "tier": "pro", "labels": ["watch"]},
        "api_key": {"id": "ci-key"},
        "client": {"ip": "203.0.113.4"},
        "attributes": {"account.risk_score": 0.4},  # the key's, never the body's
    }


# --- the proxy ------------------------------------------------------------------------------

PROXY_CONFIG = """\
model_list:
  - model_name: test-model
    litellm_params:
      model: openai/gpt-4o
      api_key: sk-test
      mock_response: "a mock answer"
  - model_name: forbidden-model
    litellm_params:
      model: openai/gpt-4o
      api_key: sk-test
      mock_response: "a mock answer"
litellm_settings:
  callbacks: policy_engine.gateway.litellm_callback.policy_engine
general_settings:
  master_key: sk-master
"""


@pytest.fixture(scope="module")
def proxy(module_stack: Stack, engine: EngineProc) -> Iterator[int]:
    binary = Path(sys.executable).parent / "litellm"
    if not binary.exists():
        pytest.fail(
            "the litellm proxy is not installed: run scripts/setup (litellm[proxy] is in the dev extra)", pytrace=False
        )
    port = free_port(HOST)
    folder = module_stack.folder / f"litellm-{port}"
    folder.mkdir()
    (folder / "config.yaml").write_text(PROXY_CONFIG)
    env = {
        **os.environ,
        "POLICY_ENGINE_TARGET": engine.target,
        "POLICY_ENGINE_TIMEOUT": "5",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "HOME": str(folder),
    }
    p = spawn(
        "litellm",
        [str(binary), "--config", str(folder / "config.yaml"), "--host", HOST, "--port", str(port)],
        folder / "litellm.log",
        folder,
        env,
    )
    module_stack.started.append(p)
    wait_until(
        p,
        lambda: http_request(port, "GET", "/health/liveliness", timeout=2).status == 200,
        "answering /health/liveliness",
        timeout=120,
    )
    yield port


def proxy_chat(port: int, model: str = "test-model") -> Any:
    body = json.dumps({"model": model, "messages": MESSAGES}).encode()
    return http_request(
        port,
        "POST",
        "/v1/chat/completions",
        body,
        {"authorization": "Bearer sk-master", "content-type": "application/json"},
        timeout=30,
    )


def test_proxy_checks_every_call_with_one_line_of_config(proxy: int, engine: EngineProc) -> None:
    first, second = proxy_chat(proxy), proxy_chat(proxy)
    # The key's alias (the proxy's name for its master key) is the engine's api_key.id.
    key_id = "litellm_proxy_master_key"
    real = first.json()["usage"]["total_tokens"] + second.json()["usage"]["total_tokens"]
    deadline = time.monotonic() + CALLBACK_WAIT
    used = -1.0
    while used != real and time.monotonic() < deadline:
        with engine.client() as pe:
            r = pe.check({"api_key": {"id": key_id}, "request": {"model": "probe"}})
        used = next(lim.used for lim in r.limits if lim.limit_id == "proxy_key_tokens")
        time.sleep(0.05)
    assert used == real  # reported by the success callback, in the proxy
    assert (first.status, second.status) == (200, 200), first.body
    assert first.json()["choices"][0]["message"]["content"] == "a mock answer"
    # The decision's rate-limit headers come back on the proxy's answer.
    assert (first.headers["x-ratelimit-limit"], first.headers["x-ratelimit-remaining"]) == ("2", "1")
    third = proxy_chat(proxy)
    assert third.status == 429, third.body
    assert int(third.headers["retry-after"]) >= 1
    assert "free tier: 2 calls a minute" in third.body.decode()


def test_proxy_denies_with_the_reason(proxy: int) -> None:
    r = proxy_chat(proxy, "forbidden-model")
    assert r.status == 403, r.body
    assert "model not offered" in r.body.decode()
