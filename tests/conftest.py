"""Shared fixtures."""

from __future__ import annotations

# --- Redis: real servers on free loopback ports, started and stopped here ----

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Iterator

import pytest

_REDIS_WAIT = 10.0  # seconds a server or cluster may take to come up


@dataclass
class RedisProc:
    port: int
    dir: Path
    proc: subprocess.Popen[bytes]
    args: list[str]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def cli(self, *args: str) -> str:
        out = subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *args],
            capture_output=True,
            text=True,
            timeout=_REDIS_WAIT,
        )
        return out.stdout

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=_REDIS_WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=_REDIS_WAIT)

    def start(self) -> None:
        """(Re)start the server on the same port and wait until it answers PING."""
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + _REDIS_WAIT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not answer within {_REDIS_WAIT}s")


def _free_port(bus: bool = False) -> int:
    """A free loopback port; with bus=True, port+10000 (the cluster bus) is free too."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not bus:
            return port
        if port + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
                return port
            except OSError:
                continue
    raise RuntimeError("no free loopback port found")


def start_redis(tmp: Path, *extra: str, bus: bool = False) -> RedisProc:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (scripts/setup installs it)")
    port = _free_port(bus)
    d = tmp / f"redis-{port}"
    d.mkdir(parents=True, exist_ok=True)
    args = [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(d),
        *extra,
    ]
    rp = RedisProc(port, d, None, args)  # type: ignore[arg-type]
    rp.start()
    return rp


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisProc]:
    """One real redis-server for the session (tests flush it between uses)."""
    with tempfile.TemporaryDirectory(prefix="pe-redis-") as tmp:
        rp = start_redis(Path(tmp))
        try:
            yield rp
        finally:
            rp.stop()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[list[RedisProc]]:
    """A real 3-primary Redis Cluster on loopback (no replicas)."""
    if shutil.which("redis-cli") is None:
        pytest.skip("redis-cli is not installed (scripts/setup installs it)")
    with tempfile.TemporaryDirectory(prefix="pe-redis-cluster-") as tmp:
        nodes: list[RedisProc] = []
        try:
            for _ in range(3):
                nodes.append(
                    start_redis(
                        Path(tmp),
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "2000",
                        bus=True,
                    )
                )
            subprocess.run(
                [
                    "redis-cli",
                    "--cluster",
                    "create",
                    *[f"127.0.0.1:{n.port}" for n in nodes],
                    "--cluster-replicas",
                    "0",
                    "--cluster-yes",
                ],
                check=True,
                capture_output=True,
                timeout=30,
            )
            deadline = time.monotonic() + 30
            while not all("cluster_state:ok" in n.cli("cluster", "info") for n in nodes):
                if time.monotonic() > deadline:
                    raise RuntimeError("redis cluster did not reach cluster_state:ok within 30s")
                time.sleep(0.1)
            yield nodes
        finally:
            for n in nodes:
                n.stop()


@pytest.fixture
def redis_factory(tmp_path: Path) -> Iterator[Callable[[], RedisProc]]:
    """Start extra private redis-servers (e.g. to kill one mid-test); stopped at teardown."""
    started: list[RedisProc] = []

    def make() -> RedisProc:
        rp = start_redis(tmp_path)
        started.append(rp)
        return rp

    yield make
    for rp in started:
        rp.stop()


class StoreEnv:
    """Builds a fresh, empty limit store of one kind inside the test's event loop."""

    def __init__(self, kind: str, url: str | None) -> None:
        self.kind = kind
        self.url = url

    async def make(self):  # -> Store
        from policy_engine.state.factory import StoreOptions, open_store

        store = open_store(self.url, StoreOptions(deadline=5.0))
        await store.flush()
        return store

    def run(self, fn):
        """asyncio.run(fn(store)) with a fresh store, closed afterwards."""
        import asyncio

        async def main():
            store = await self.make()
            try:
                return await fn(store)
            finally:
                await store.close()

        return asyncio.run(main())


def _store_env(request: pytest.FixtureRequest, kind: str) -> StoreEnv:
    if kind == "memory":
        return StoreEnv(kind, None)
    if kind == "redis":
        return StoreEnv(kind, request.getfixturevalue("redis_server").url)
    nodes = request.getfixturevalue("redis_cluster")
    return StoreEnv(kind, nodes[0].url.replace("redis://", "redis+cluster://"))


@pytest.fixture(params=["memory", "redis", "redis-cluster"])
def store_env(request: pytest.FixtureRequest) -> StoreEnv:
    """Every limit store, for the shared contract suite."""
    return _store_env(request, request.param)


@pytest.fixture(params=["redis", "redis-cluster"])
def redis_store_env(request: pytest.FixtureRequest) -> StoreEnv:
    """The Redis stores only (compared against memory)."""
    return _store_env(request, request.param)


# --- Policies: write a policy folder, compile it, decide requests ------------

from policy_engine.context import Context  # noqa: E402
from policy_engine.engine import Engine  # noqa: E402
from policy_engine.policyset import PolicySet, load_policy_set  # noqa: E402
from policy_engine.state.memory import MemoryStore  # noqa: E402


@dataclass
class PolicyHarness:
    """A compiled policy on a fresh memory store, deciding requests given as dicts."""

    policy: PolicySet
    engine: Engine

    def decide(self, request: dict, now: float | None = None, explain: bool = False):  # type: ignore[no-untyped-def]
        ctx = Context.from_dict(request)
        ts = now if now is not None else (ctx.request_ts or 1_764_300_000.0)
        return self.engine.decide_sync(ctx, ts, explain=explain)


@pytest.fixture
def make_policy(tmp_path: Path) -> Callable[..., PolicyHarness]:
    """make_policy(text, files={"data/x.txt": "..."}) -> PolicyHarness."""

    def make(text: str, files: dict[str, str] | None = None) -> PolicyHarness:
        folder = tmp_path / f"policy{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        (folder / "main.policy").write_text(text)
        for rel, content in (files or {}).items():
            p = folder / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(content)
        policy = load_policy_set(folder)
        return PolicyHarness(policy, Engine(policy, MemoryStore()))

    return make
