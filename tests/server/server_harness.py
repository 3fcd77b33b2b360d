"""A real policy-engine server on a free loopback port, run in a background thread.

Imported by the server tests (fixtures included): `from server_harness import ...`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from policy_engine.server.app import ServerApp, create_server
from policy_engine.server.settings import ServerSettings

# A small policy with every effect, a count limit and a reconciled sum limit.
POLICY = """\
policy "server-tests" {
  owner "tests"
}

data blocked_models = strings("data/blocked_models.txt")

rule blocked_model {
  deny when request.model in blocked_models
  reason "model not offered"
}

rule unverified_new {
  deny when (account.age_days ?? 0) < 1 and account.verification < "phone"
  reason "new unverified account"
}

rule cot_probe {
  flag when contains(lower(request.prompt ?? ""), "step by step")
  reason "asks for step-by-step reasoning"
}

rule shadow_long {
  deny when (request.max_tokens ?? 0) > 8000
  reason "long output"
  shadow
}

limit per_minute {
  key account.id
  count
  window 1m
  max 3
  throttle
  reason "too many requests"
}

limit tokens_day {
  key account.id
  sum request.max_tokens ?? 1000
  usage (usage.prompt_tokens ?? 0) + (usage.completion_tokens ?? 0)
  window 1d
  max 100000
  throttle
  reason "daily token budget"
}
"""


def write_policy(folder: Path, text: str = POLICY) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data").mkdir(exist_ok=True)
    (folder / "data" / "blocked_models.txt").write_text("legacy-model\n")
    (folder / "main.policy").write_text(text)
    return folder


class ServerThread:
    """create_server + start on a private event loop; `stop()` drains it."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-server", daemon=True)
        self.app: ServerApp | None = None
        self.port = 0

    def call(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> ServerThread:
        self.thread.start()

        async def up() -> tuple[ServerApp, int]:
            app, port = await create_server(self.settings)
            await app.start()
            return app, port

        self.app, self.port = self.call(up())
        return self

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self, grace: float = 2.0) -> None:
        if self.loop.is_closed():
            return
        if self.app is not None:
            self.call(self.app.stop(grace))
            self.app = None
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    return write_policy(tmp_path / "policies")


@pytest.fixture
def start_server(policy_dir: Path) -> Iterator[Callable[..., ServerThread]]:
    """start_server(**settings) -> a started ServerThread on port 0 (stopped at teardown)."""
    started: list[ServerThread] = []

    def start(**overrides: Any) -> ServerThread:
        values: dict[str, Any] = {"policies": policy_dir, "port": 0, "reload_debounce_ms": 50, **overrides}
        st = ServerThread(ServerSettings(**values)).start()
        started.append(st)
        return st

    yield start
    for st in started:
        st.stop()


@pytest.fixture
def server(start_server: Callable[..., ServerThread]) -> ServerThread:
    return start_server()
