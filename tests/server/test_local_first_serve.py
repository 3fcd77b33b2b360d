"""Local-first limits through the real server: three `policyctl serve` processes
with `--store-sync batched:50ms` on one Redis, 48 clients each, one budget."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from policy_engine.client import AsyncPolicyClient, PolicyClient
from policy_engine.server.app import free_port
from process_harness import ACCOUNT
from server_harness import write_policy

MAX = 300
INTERVAL = 0.05  # seconds between rounds
PROCESSES = 3
CLIENTS = 48  # per process
CALLS = 12  # per client: 1,728 calls against a budget of 300

POLICY = f"""\
policy "local-first" {{
  owner "tests"
}}

limit shared_budget {{
  key request.model
  count
  window 1h
  max {MAX}
  reason "shared budget spent"
}}
"""


async def _hammer(targets: list[str]) -> tuple[int, int, float]:
    """(admitted, calls, seconds): CLIENTS concurrent clients per process, CALLS each."""

    async def client(pe: AsyncPolicyClient, n: int) -> int:
        admitted = 0
        for i in range(CALLS):
            ctx = {"account": {**ACCOUNT, "id": f"acct-{n}-{i}"}, "request": {"model": "m", "prompt": "hi"}}
            admitted += (await pe.check(ctx, timeout=30)).effect == "allow"
        return admitted

    clients = [AsyncPolicyClient(t) for t in targets]
    try:
        started = time.monotonic()
        counts = await asyncio.gather(*(client(pe, n) for pe in clients for n in range(CLIENTS)))
        seconds = time.monotonic() - started
    finally:
        for pe in clients:
            await pe.close()
    return sum(counts), len(counts) * CALLS, seconds


def test_three_processes_share_one_budget_within_the_bound(serve: Any, tmp_path: Path, redis_factory: Any) -> None:
    rp = redis_factory()
    policies = write_policy(tmp_path / "p", POLICY)
    args = ["--policies", str(policies), "--store", rp.url, "--store-sync", f"batched:{INTERVAL * 1000:g}ms"]
    servers = [serve(*args) for _ in range(PROCESSES)]
    with PolicyClient(servers[0].target, timeout=5) as pe:
        assert pe.get_policy().store.backend == "redis-local-first"
    admitted, calls, seconds = asyncio.run(_hammer([s.target for s in servers]))
    rate = calls / seconds  # every call: an upper bound on the admitted rate while the budget was open
    # docs/limits.md: overshoot <= rate x (2 x interval + d), d the round's own time; d = one
    # interval here (a round trip on loopback, and a busy event loop's late timer)
    bound = rate * (3 * INTERVAL)
    print(
        f"\nlocal-first, {PROCESSES} processes x {CLIENTS} clients, {calls} calls in {seconds:.2f}s "
        f"({rate:,.0f}/s): admitted {admitted} of max {MAX}; documented bound {MAX} + {bound:.0f} = {MAX + bound:.0f}"
    )
    assert MAX <= admitted <= MAX + bound
    assert admitted <= PROCESSES * MAX  # each process admits at most the maximum it sees
    time.sleep(3 * INTERVAL)  # the last rounds
    # after the rounds every process sees the whole count
    for s in servers:
        with PolicyClient(s.target, timeout=5) as pe:
            r = pe.check({"account": {**ACCOUNT, "id": "late"}, "request": {"model": "m", "prompt": "hi"}})
            assert r.effect != "allow"
    for s in servers:
        assert s.stop() == 0
    assert float(rp.cli("hget", "pe:{shared_budget|m}:c", "c")) == admitted  # every admission reached Redis


def test_bad_sync_settings_stop_the_server_with_the_reason(serve: Any, tmp_path: Path, redis_factory: Any) -> None:
    policies = write_policy(tmp_path / "p", POLICY)
    cases = [
        (["--store-sync", "batched:50ms"], 2, "batched limits exchange their counts through a shared store"),
        (["--store", "redis://127.0.0.1:1", "--store-sync", "fast"], 2, "expected `exact` or `batched:<N>ms`"),
        (["--store", "redis://127.0.0.1:1", "--store-sync-limit", "shared_budget=batched"], 2, "store_sync is `exact`"),
        (
            [
                "--store",
                redis_factory().url,
                "--store-sync",
                "batched:50ms",
                "--store-sync-limit",
                "shared_budgt=exact",
            ],
            1,
            "shared_budgt is no limit or measure of the policy (limits and measures: shared_budget)",
        ),
    ]
    for args, code, message in cases:
        s = serve("--policies", str(policies), *args, wait=False)
        assert s.proc.wait(30) == code, s.log.read_text()
        assert message in s.log.read_text()


def test_redis_down_decides_locally_and_says_so(
    serve: Any, tmp_path: Path, redis_factory: Any, monkeypatch: Any
) -> None:
    """Local-first through the server: Redis stops, the budget is still enforced from the
    process's counters (no fail mode), health and the log say so; Redis back, the counts
    made meanwhile reach it."""
    rp = redis_factory()
    monkeypatch.setenv("POLICY_ENGINE_STORE_PROBE_SECONDS", "0.2")
    policies = write_policy(tmp_path / "p", POLICY.replace(f"max {MAX}", "max 5"))
    mport = free_port("127.0.0.1")
    s = serve(
        "--policies", str(policies), "--store", rp.url, "--store-sync", "batched:20ms", "--metrics-port", str(mport)
    )  # fmt: skip
    call = {"account": {**ACCOUNT, "id": "a"}, "request": {"model": "m", "prompt": "hi"}}
    with PolicyClient(s.target, timeout=5) as pe:
        assert pe.check(call).effect == "allow"
        _wait_metric(mport, "policy_engine_local_first_keys_sent_total", lambda v: v >= 1)
        assert _metric(mport, 'policy_engine_local_first_rounds_total{result="failed"}') == 0
        rp.stop()
        effects = [pe.check(call).effect for _ in range(6)]
        assert [e == "allow" for e in effects] == [True] * 4 + [False] * 2  # max 5, enforced with Redis down
        assert all(lim.error is None for lim in pe.check(call).limits)  # decided, not failed open
        deadline = time.monotonic() + 20
        while "is failing" not in s.log.read_text():
            assert time.monotonic() < deadline, s.log.read_text()
            time.sleep(0.1)
        assert "batched limits and measures are decided from this process's counters" in s.log.read_text()
        assert pe.get_policy().store.state == "failing"
        # the operator sees the rounds failing and the changes waiting for Redis
        _wait_metric(mport, 'policy_engine_local_first_rounds_total{result="failed"}', lambda v: v >= 1)
        assert _metric(mport, "policy_engine_local_first_pending_keys") == 1  # the one budget key
        rp.start()  # empty (no persistence here): the four admitted while it was down arrive
        deadline = time.monotonic() + 20
        while rp.cli("hget", "pe:{shared_budget|m}:c", "c").strip() != "4":
            assert time.monotonic() < deadline, s.log.read_text()
            time.sleep(0.1)
        _wait_metric(mport, "policy_engine_local_first_pending_keys", lambda v: v == 0)
    assert s.stop() == 0


def _metric(port: int, name: str) -> float:
    """One sample of the server's /metrics (the exposition's `name value` line)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics:\n{text}")


def _wait_metric(port: int, name: str, ok: Callable[[float], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not ok(value := _metric(port, name)):
        assert time.monotonic() < deadline, f"{name} = {value}"
        time.sleep(0.05)
