"""A limit store that fails is loud and exact: warnings on the first failure and on
recovery (bounded in between), the store's state in health, GetPolicy and metrics, a
start-up check, and the configured fail mode serving on. Bad store URLs exit 2 naming
the setting. Through `policyctl serve` as a process, with real redis-servers."""

from __future__ import annotations

import logging
import re
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any
from collections.abc import Callable

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from policy_engine.client import PolicyClient
from policy_engine.server.app import STORE_HEALTH, free_port
from policy_engine.server.store_health import StoreHealth, StoreState
from policy_engine.state.base import StoreUnavailable
from policy_engine.state.memory import MemoryStore
from process_harness import ctx
from served import Served
from server_harness import write_policy

SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


def _health(target: str, service: str) -> int:
    with grpc.insecure_channel(target) as ch:
        return int(
            health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
        )


def _metrics(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def _wait(cond: Callable[[], bool], what: str, served: Served, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"{what}; server log:\n{served.log.read_text()}"
        time.sleep(0.1)


def _dead_port() -> int:
    port = free_port("127.0.0.1")
    with socket.socket() as s:  # nothing listens there
        assert s.connect_ex(("127.0.0.1", port)) != 0
    return port


def test_unreachable_at_start_then_recovers(
    serve: Any, tmp_path: Path, redis_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rp = redis_factory()
    rp.stop()  # its port, with nothing listening: start-up finds the store down
    monkeypatch.setenv("POLICY_ENGINE_STORE_PROBE_SECONDS", "0.2")
    metrics = free_port("127.0.0.1")
    s = serve("--policies", str(write_policy(tmp_path / "p")), "--store", rp.url, "--metrics-port", str(metrics))
    _wait(lambda: "is unreachable at start-up" in s.log.read_text(), "no start-up warning", s)
    log = s.log.read_text()
    assert f"limit store {rp.url} is unreachable at start-up: cannot reach Redis" in log
    assert "each limit applies its fail mode" in log
    assert _health(s.target, "") == SERVING  # serving on, in the fail mode
    assert _health(s.target, STORE_HEALTH) == NOT_SERVING
    with PolicyClient(s.target, timeout=5) as pe:
        r = pe.check(ctx("acct-1"))
        assert r.effect == "allow"  # every limit fails open here
        assert not any(h.startswith("x-ratelimit") for h in r.headers)  # no "5000000 remaining" made up
        assert {lim.limit_id: lim.error is not None for lim in r.limits} == {"per_minute": True, "tokens_day": True}
        info = pe.get_policy()
    assert info.store is not None and (info.store.backend, info.store.url, info.store.state) == (
        "redis",
        rp.url,
        "failing",
    )
    assert f"127.0.0.1:{rp.port}" in (info.store.last_error or "") and info.store.failing_since is not None
    m = _metrics(metrics)
    assert m["policy_engine_store_up"] == 0 and m["policy_engine_fail_open_decisions_total"] == 1
    assert m["policy_engine_store_errors_total"] == 2  # both limits of the request

    rp.start()
    _wait(lambda: "recovered after" in s.log.read_text(), "no recovery warning", s)
    assert _health(s.target, STORE_HEALTH) == SERVING
    with PolicyClient(s.target, timeout=5) as pe:
        r = pe.check(ctx("acct-1"))
        assert r.headers["x-ratelimit-remaining"] == "2"
        assert pe.get_policy().store.state == "ok"  # type: ignore[union-attr]
    assert _metrics(metrics)["policy_engine_store_up"] == 1
    assert s.stop() == 0
    warnings = [line for line in s.log.read_text().splitlines() if "WARNING" in line]
    assert len(warnings) == 2, warnings  # one failure, one recovery: the probes in between said nothing


def test_redis_killed_under_two_workers(
    serve: Any, tmp_path: Path, redis_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rp = redis_factory()
    monkeypatch.setenv("POLICY_ENGINE_STORE_PROBE_SECONDS", "0.2")
    s = serve("--policies", str(write_policy(tmp_path / "p")), "--store", rp.url, "--workers", "2")
    with PolicyClient(s.target, timeout=5) as pe:
        assert pe.check(ctx("acct-1")).effect == "allow"
    rp.stop()
    _wait(
        lambda: (
            len(re.findall(r"\[worker \d\] policy_engine.store: limit store \S+ is failing", s.log.read_text())) == 2
        ),
        "both workers warn",
        s,
    )
    assert _health(s.target, STORE_HEALTH) == NOT_SERVING
    with PolicyClient(s.target, timeout=5) as pe:
        r = pe.check(ctx("acct-1"))
        assert r.effect == "allow" and "x-ratelimit-remaining" not in r.headers
        assert pe.get_policy().store.state == "failing"  # type: ignore[union-attr]
    rp.start()
    _wait(
        lambda: (
            len(re.findall(r"\[worker \d\] policy_engine.store: limit store \S+ recovered after", s.log.read_text()))
            == 2
        ),
        "both workers recover",
        s,
    )
    assert s.stop() == 0


@pytest.mark.parametrize(
    "flags, setting",
    [
        (["--redis", "localhost:6391"], "redis: 'localhost:6391' is not a store URL"),
        (["--store", "redis://127.0.0.1:notaport"], "store: 'redis://127.0.0.1:notaport': Port could not be cast"),
        (["--store", "redis://127.0.0.1:6379/x"], "store: 'redis://127.0.0.1:6379/x': the database is a number"),
        (
            ["--store", "redis://:hunter2@127.0.0.1:6379/0?color=red"],
            "store: 'redis://:***@127.0.0.1:6379/0?color=red'",
        ),
        (["--store", "memory://?max_keys=0"], "store: 'memory://?max_keys=0': MemoryStore: max_keys"),
    ],
)
def test_bad_store_urls_exit_2_naming_the_setting(serve: Any, tmp_path: Path, flags: list[str], setting: str) -> None:
    s = serve("--policies", str(write_policy(tmp_path / "p")), *flags, wait=False)
    assert s.proc.wait(30) == 2
    out = s.log.read_text()
    assert "invalid server settings" in out and setting in out, out
    assert "Traceback" not in out and "hunter2" not in out


# --- the bounds on logging, with a clock the test moves ----------------------------------


class _Down(MemoryStore):
    down = True

    async def check(self) -> None:
        if self.down:
            raise StoreUnavailable("cannot reach it")


def test_warnings_are_bounded(caplog: pytest.LogCaptureFixture) -> None:
    now = [1000.0]
    h = StoreHealth(_Down(), "redis://h:1", remind_seconds=60, quiet_seconds=10, clock=lambda: now[0])
    changes: list[StoreState] = []
    h.on_change(changes.append)
    with caplog.at_level(logging.INFO, logger="policy_engine.store"):
        h.answered()
        h.failed("timeout")
        for _ in range(100):  # a burst of failures: no more lines
            now[0] += 0.1
            h.failed("timeout")
        now[0] += 60
        h.failed("timeout")  # a reminder, a minute on
        h.answered()  # recovery
        now[0] += 1
        h.failed("timeout")  # flapping within the quiet time: not logged ...
        h.answered()  # ... and so neither is its recovery
        now[0] += 10
        h.failed("refused")  # the quiet time is over: logged
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(" ", 4)[3] for line in lines] == ["answers", "is", "still", "recovered", "is"]
    assert "still failing after 70s: 101 failed calls since the last warning" in lines[2]
    assert "recovered after 70.0s (102 failed calls)" in lines[3]
    assert h.errors == 104 and h.outages == 3
    assert changes == [
        StoreState.OK,
        StoreState.FAILING,
        StoreState.OK,
        StoreState.FAILING,
        StoreState.OK,
        StoreState.FAILING,
    ]
    st = h.status()
    assert (st.state, st.last_error) == (StoreState.FAILING, "refused")
