"""`policyctl serve` as a real process: SIGTERM drains, SIGHUP reloads, --workers share one port."""

from __future__ import annotations

import signal
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest

from policy_engine.client import PolicyClient
from policy_engine.proto.policyengine.v1 import policy_pb2_grpc as pb_grpc
from policy_engine.server.app import free_port
from policy_engine.wire import context_to_check_request
from process_harness import ctx
from server_harness import POLICY, write_policy


def test_sigterm_drains_calls_in_flight(serve: Any, tmp_path: Path, redis_factory: Any) -> None:
    rp = redis_factory()
    policies = write_policy(tmp_path / "p")
    s = serve("--policies", str(policies), "--redis", rp.url, "--store-deadline-ms", "5000", "--grace-seconds", "10")
    with grpc.insecure_channel(s.target) as ch:
        stub = pb_grpc.PolicyServiceStub(ch)
        stub.Check(context_to_check_request(ctx("warm")), timeout=5)
        rp.cli("client", "pause", "1000", "all")  # every Check now waits ~1 s in the store
        futures = [stub.Check.future(context_to_check_request(ctx(f"acct-{i}")), timeout=20) for i in range(40)]
        time.sleep(0.3)
        assert not any(f.done() for f in futures)
        s.proc.send_signal(signal.SIGTERM)
        results = [f.result() for f in futures]  # raises if any call was cut off
    assert all(r.http_status == 200 and not r.limits[0].over for r in results)
    assert all("limit store" not in r.reason for r in results)
    assert s.proc.wait(20) == 0
    log = s.log.read_text()
    assert "draining calls in flight" in log and "stopped" in log


def test_sighup_reloads(serve: Any, tmp_path: Path) -> None:
    policies = write_policy(tmp_path / "p")
    s = serve("--policies", str(policies), "--no-reload")
    with PolicyClient(s.target, timeout=5) as pe:
        v1 = pe.get_policy().version
        (policies / "main.policy").write_text(POLICY.replace("max 3\n", "max 7\n"))
        s.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 15
        while pe.get_policy().version == v1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pe.check(ctx("a")).headers["x-ratelimit-limit"] == "7"
    assert s.stop() == 0


def _decisions(metrics_port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("policy_engine_decisions_total{")
    )


def test_two_workers_share_a_port_and_redis(serve: Any, tmp_path: Path, redis_factory: Any) -> None:
    rp = redis_factory()
    policies = write_policy(tmp_path / "p")
    metrics = free_port("127.0.0.1")
    while True:  # worker 1 serves metrics on metrics + 1
        try:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", metrics + 1))
            break
        except OSError:
            metrics = free_port("127.0.0.1")
    s = serve("--policies", str(policies), "--redis", rp.url, "--workers", "2", "--metrics-port", str(metrics))
    deadline = time.monotonic() + 30
    while True:  # both workers up: each answers on its metrics port
        try:
            _decisions(metrics), _decisions(metrics + 1)
            break
        except OSError:
            assert time.monotonic() < deadline, s.log.read_text()
            time.sleep(0.1)
    effects = []
    for _ in range(24):  # a new connection each time: SO_REUSEPORT spreads them over the workers
        with PolicyClient(s.target, timeout=5) as pe:
            effects.append(pe.check(ctx("shared")).effect)
    assert effects.count("allow") == 3 and effects.count("throttle") == 21  # one budget across workers
    per_worker = [_decisions(metrics), _decisions(metrics + 1)]
    assert sum(per_worker) == 24 and min(per_worker) > 0, per_worker
    assert s.stop() == 0


def test_two_workers_share_the_http_port(serve: Any, tmp_path: Path, redis_factory: Any) -> None:
    import http.client
    import json

    rp = redis_factory()
    policies = write_policy(tmp_path / "p")
    metrics, http_port = free_port("127.0.0.1"), free_port("127.0.0.1")
    while True:  # worker 1 serves metrics on metrics + 1
        try:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", metrics + 1))
            break
        except OSError:
            metrics = free_port("127.0.0.1")
    args = ["--policies", str(policies), "--redis", rp.url, "--workers", "2", "--metrics-port", str(metrics)]
    s = serve(*args, "--http-port", str(http_port))

    def check() -> int:
        conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=5)  # a new connection each time
        try:
            body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
            headers = {"x-account-id": "shared", "x-account-age-days": "30", "x-account-verification": "kyc"}
            conn.request("POST", "/forward-auth", body, headers)
            return conn.getresponse().status
        finally:
            conn.close()

    deadline = time.monotonic() + 30
    while True:  # both workers up
        try:
            _decisions(metrics), _decisions(metrics + 1)
            break
        except OSError:
            assert time.monotonic() < deadline, s.log.read_text()
            time.sleep(0.1)
    statuses = [check() for _ in range(24)]
    assert statuses.count(200) == 3 and statuses.count(429) == 21  # one budget across the workers
    per_worker = [_decisions(metrics), _decisions(metrics + 1)]
    assert sum(per_worker) == 24 and min(per_worker) > 0, per_worker  # SO_REUSEPORT spread them
    assert s.stop() == 0


def test_workers_without_redis_are_refused(serve: Any, tmp_path: Path) -> None:
    policies = write_policy(tmp_path / "p")
    s = serve("--policies", str(policies), "--workers", "2", wait=False)
    assert s.proc.wait(30) == 2
    out = s.log.read_text()
    assert "--workers 2 needs --redis" in out and "cannot be shared" in out


def test_broken_policy_at_startup(serve: Any, tmp_path: Path) -> None:
    policies = write_policy(tmp_path / "p", POLICY.replace("rule cot_probe {", "rule cot_probe {\n  flag whenn"))
    s = serve("--policies", str(policies), wait=False)
    assert s.proc.wait(30) == 1
    out = s.log.read_text()
    assert "does not load" in out and "main.policy:" in out


def test_config_file_and_environment(serve: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    policies = write_policy(tmp_path / "p")
    (tmp_path / "pe.toml").write_text('[server]\npolicies = "p"\nlog_level = "debug"\n')
    monkeypatch.setenv("POLICY_ENGINE_LOG_LEVEL", "warning")
    s = serve("--config", str(tmp_path / "pe.toml"))
    with PolicyClient(s.target, timeout=5) as pe:
        assert pe.get_policy().files == [str(policies / "main.policy")]
    assert s.stop() == 0
    assert "serving policy" not in s.log.read_text()  # env (warning) beat the file (debug)
