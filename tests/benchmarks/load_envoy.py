"""Load through a real Envoy, with and without the engine's ext_authz, measured with wrk.

    .venv/bin/python tests/benchmarks/load_envoy.py [--duration 10s] [--connections 32] [--threads 2]

Starts a stub model server (an Envoy `direct_response` that answers a fixed
chat completion with its `usage` block and `x-usage-*` headers: the Python test
upstream tops out at a few hundred requests/s and would measure itself),
`policyctl serve` (a policy with a rule, a count
limit and a reconciled token budget, none of which refuse this traffic), the
same with `--workers 2` and local-first limits on a Redis
(`store_sync = "batched:50ms"`, the budget batched too), a no-op ext_authz
server (`load_grpc.py noop`: a fixed OK, the usage log read and dropped) and
Envoys from `deploy/envoy/envoy.yaml.template`: the reference one in front of
each of the three, and the same configuration without the ext_authz filter and
the usage access log. Runs wrk against each (`tests/benchmarks/load_envoy.lua`: chat completions from
1000 accounts) at 32 connections (throughput) and at 4 (latency below
saturation), prints a Markdown table (requests/s, p50, p90, p99), the latency
ext_authz adds and Envoy's ext_authz counters, then stops everything.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "e2e"))

from gateway_harness import (  # noqa: E402 - after the path set-up
    HOST,
    EngineProc,
    EnvoyOptions,
    EnvoyProc,
    Proc,
    chat,
    envoy_path,
    render_envoy,
    spawn,
    start_engine,
    wait_until,
    write_policy,
)
from load_grpc import start_redis  # noqa: E402
from policy_engine.server.app import free_port  # noqa: E402

POLICY = """\
rule forbidden_model {
  deny when request.model == "forbidden-model"
  reason "model not offered"
}

limit per_minute {
  key account.id
  count
  window 1m
  max 1000000
  throttle
  reason "too many requests"
}

limit daily_tokens {
  key account.id
  sum (request.prompt_tokens ?? 0) + (request.max_tokens ?? 1024)
  usage (usage.prompt_tokens ?? 0) + (usage.completion_tokens ?? 0)
  window 1d
  max 1000000000
  throttle
  reason "daily token budget exhausted"
}
"""


STUB_BODY = (
    '{"id":"chatcmpl-1","object":"chat.completion","model":"test-model","choices":[{"index":0,'
    '"finish_reason":"stop","message":{"role":"assistant","content":"Paris"}}],'
    '"usage":{"prompt_tokens":13,"completion_tokens":2,"total_tokens":15}}'
)


def stub_model_server(listen: int, admin: int) -> str:
    """An Envoy that answers every request with a fixed chat completion (the load-test model)."""
    doc = {
        "admin": {"address": {"socket_address": {"address": HOST, "port_value": admin}}},
        "static_resources": {
            "listeners": [
                {
                    "name": "stub",
                    "address": {"socket_address": {"address": HOST, "port_value": listen}},
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": {
                                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
                                        ".HttpConnectionManager",
                                        "stat_prefix": "stub",
                                        "route_config": {
                                            "virtual_hosts": [
                                                {
                                                    "name": "stub",
                                                    "domains": ["*"],
                                                    "routes": [
                                                        {
                                                            "match": {"prefix": "/"},
                                                            "direct_response": {
                                                                "status": 200,
                                                                "body": {"inline_string": STUB_BODY},
                                                            },
                                                            "response_headers_to_add": [
                                                                {"header": {"key": k, "value": v}}
                                                                for k, v in (
                                                                    ("content-type", "application/json"),
                                                                    ("x-usage-prompt-tokens", "13"),
                                                                    ("x-usage-completion-tokens", "2"),
                                                                )
                                                            ],
                                                        }
                                                    ],
                                                }
                                            ]
                                        },
                                        "http_filters": [
                                            {
                                                "name": "envoy.filters.http.router",
                                                "typed_config": {
                                                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                                                },
                                            }
                                        ],
                                    },
                                }
                            ]
                        }
                    ],
                }
            ]
        },
    }
    return yaml.safe_dump(doc, sort_keys=False)


def without_engine(config: str) -> str:
    """The reference configuration minus ext_authz and the usage access log."""
    doc = yaml.safe_load(config)
    for listener in doc["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            for f in chain["filters"]:
                hcm = f["typed_config"]
                hcm.pop("access_log", None)
                hcm["http_filters"] = [h for h in hcm["http_filters"] if h["name"] != "envoy.filters.http.ext_authz"]
    return yaml.safe_dump(doc, sort_keys=False)


AUTHZ = "Envoy + ext_authz + usage log (engine, one process)"
LOCAL_FIRST = {"store_sync": "batched:50ms", "store_sync_limits": {"daily_tokens": "batched"}}


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((HOST, port)) == 0


def several_connections(config: str, streams: int = 8) -> str:
    """The engine's cluster with at most `streams` calls per HTTP/2 connection: with one
    connection (the default) the kernel gives every call to the one worker that accepted it."""
    doc = yaml.safe_load(config)
    for cluster in doc["static_resources"]["clusters"]:
        if cluster["name"] == "policy_engine":
            opts = cluster["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
            opts["explicit_http_config"]["http2_protocol_options"]["max_concurrent_streams"] = streams
    return yaml.safe_dump(doc, sort_keys=False)


def start(folder: Path, name: str, config: str, listen: int, admin: int) -> EnvoyProc:
    path = folder / f"envoy-{name}.yaml"
    path.write_text(config)
    p = spawn(
        f"envoy ({name})",
        [str(envoy_path()), "-c", str(path), "--disable-hot-restart", "--log-level", "warn", "--concurrency", "1"],
        folder / f"envoy-{name}.log",
        folder,
    )
    env = EnvoyProc(p, listen, admin, path)
    wait_until(p, env.ready, "ready on its admin port")
    return env


@dataclass
class Result:
    name: str
    rps: float
    p50: float
    p90: float
    p99: float
    non_2xx: int
    errors: str


def _ms(text: str) -> float:
    value, unit = float(re.match(r"[\d.]+", text).group(0)), re.sub(r"[\d.]", "", text)  # type: ignore[union-attr]
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def parse_wrk(name: str, out: str) -> Result:
    pct = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)$", out, re.MULTILINE))
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.MULTILINE)
    if rps is None or len(pct) != 3:
        raise RuntimeError(f"cannot read wrk's output for {name}:\n{out}")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)$", out, re.MULTILINE)
    return Result(
        name,
        float(rps.group(1)),
        _ms(pct["50"]),
        _ms(pct["90"]),
        _ms(pct["99"]),
        int(non2xx.group(1)) if non2xx else 0,
        errors.group(1) if errors else "",
    )


def run_wrk(name: str, port: int, a: argparse.Namespace, connections: int) -> tuple[Result, str]:
    cmd = [
        "wrk",
        f"-t{a.threads}",
        f"-c{connections}",
        f"-d{a.duration}",
        "--latency",
        "-s",
        str(HERE / "load_envoy.lua"),
        f"http://{HOST}:{port}",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True).stdout
    shown = [os.path.relpath(c, HERE.parents[1]) if c.endswith(".lua") else c for c in cmd[:-1]]
    return parse_wrk(name, out), " ".join(shown)


def table(results: list[Result]) -> str:
    rows = ["| path | requests/s | p50 ms | p90 ms | p99 ms | non-2xx |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    rows += [f"| {r.name} | {r.rps:,.0f} | {r.p50:.2f} | {r.p90:.2f} | {r.p99:.2f} | {r.non_2xx} |" for r in results]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="wrk through Envoy with and without the engine's ext_authz")
    ap.add_argument("--duration", default="10s")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--low-connections", type=int, default=4, help="second run, for latency below saturation")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    started: list[Proc] = []
    with tempfile.TemporaryDirectory(prefix="pe-load-envoy-") as tmp:
        folder = Path(tmp)
        try:
            stub_port, stub_admin = free_port(HOST), free_port(HOST)
            stub = start(folder, "model-stub", stub_model_server(stub_port, stub_admin), stub_port, stub_admin)
            started.append(stub.proc)
            policy = write_policy(folder / "policy", POLICY)
            engine: EngineProc = start_engine(folder, policy)
            started.append(engine.proc)
            redis, redis_url = start_redis(folder)
            started.append(Proc("redis", redis, folder / "redis.log"))
            local2 = start_engine(folder, policy, extra={"store": redis_url, "workers": 2, **LOCAL_FIRST})
            started.append(local2.proc)
            noop_port = free_port(HOST)
            noop = spawn(
                "no-op ext_authz",
                [sys.executable, str(HERE / "load_grpc.py"), "noop", "--port", str(noop_port)],
                folder / "noop.log",
                folder,
            )
            started.append(noop)
            wait_until(noop, lambda: _listening(noop_port), "listening")
            opts = EnvoyOptions(authz_timeout="0.2s", usage_flush_interval="0.2s")
            ports = [free_port(HOST) for _ in range(8)]
            bare = without_engine(render_envoy(ports[0], ports[1], engine.port, stub_port, opts))
            gateways = {
                "Envoy -> model": start(folder, "bare", bare, ports[0], ports[1]),
                "Envoy + ext_authz (no-op server)": start(
                    folder, "noop", render_envoy(ports[2], ports[3], noop_port, stub_port, opts), *ports[2:4]
                ),
                AUTHZ: start(
                    folder, "authz", render_envoy(ports[4], ports[5], engine.port, stub_port, opts), *ports[4:6]
                ),
                "Envoy + ext_authz (engine, --workers 2 local-first)": start(
                    folder,
                    "local2",
                    several_connections(render_envoy(ports[6], ports[7], local2.port, stub_port, opts)),
                    *ports[6:8],
                ),
            }
            started += [g.proc for g in gateways.values()]
            for g in gateways.values():  # warm the connection pools; fail early on a broken set-up
                r = chat(g.port, {"x-account-id": "warm-up"})
                if r.status != 200:
                    raise RuntimeError(f"warm-up call answered {r.status}: {r.body!r}")
            results, cmds = [], []
            for connections in (a.connections, a.low_connections):
                for name, g in gateways.items():
                    res, cmd = run_wrk(f"{name}, {connections} connections", g.port, a, connections)
                    results.append(res)
                cmds.append(cmd)
            authz_gw = gateways[AUTHZ]
            authz_stats = {k: authz_gw.stat(f"http.model_api.ext_authz.{k}") for k in ("ok", "denied", "error")}
        finally:
            for p in reversed(started):
                p.stop()
    print(f"machine: {os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}")
    for cmd in cmds:
        print(f"  {cmd} URL")
    print(table(results))
    print()
    n = len(gateways)
    for i in range(0, len(results), n):
        base, rest = results[i], results[i + 1 : i + n]
        noop_row = rest[0]
        for r in rest:
            print(
                f"{r.name}: adds {r.p50 - base.p50:.2f} ms at p50, {r.p99 - base.p99:.2f} ms at p99 to Envoy alone; "
                f"throughput {r.rps / base.rps:.0%} of Envoy alone, {r.rps / noop_row.rps:.0%} of the no-op's"
            )
    print(f"ext_authz decisions (Envoy's counters): {authz_stats}")
    for r in results:
        if r.non_2xx or r.errors:
            print(f"warning: {r.name}: {r.non_2xx} non-2xx responses, socket errors: {r.errors or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
