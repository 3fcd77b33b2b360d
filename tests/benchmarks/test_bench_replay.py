"""Replay throughput on the memory store: simulated traffic through the
15-rule, 6-limit fixture policy and through the shipped policy set.

Each round replays the same 20,000 simulated requests (the first 2.1 hours
of the default seeded day) from a fresh store, writing decision lines and
gathering the report statistics, as `policyctl replay` does.

Run: .venv/bin/python -m pytest tests/benchmarks/test_bench_replay.py --benchmark-enable
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from policy_engine.policyset import PolicySet, load_policy_set
from policy_engine.replay import ReplayStats, replay_memory
from policy_engine.simulate.generator import SimConfig, write
from policy_engine.state.memory import MemoryStore

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_POLICY = ROOT / "tests" / "engine" / "fixtures" / "replay_policy"
REQUESTS = 20_000


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("bench-replay")
    path = d / "traffic.jsonl"
    write(SimConfig(seed=1, hours=24 * REQUESTS / 230_000), path, d / "truth.jsonl")
    return path


def _bench(benchmark, policy: PolicySet, traffic: Path) -> ReplayStats:  # type: ignore[no-untyped-def]
    def run() -> ReplayStats:
        return replay_memory(policy, traffic, io.BytesIO(), MemoryStore())

    stats = benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info["requests"] = stats.requests
    if benchmark.stats is not None:  # None under --benchmark-disable (the default test run)
        benchmark.extra_info["requests_per_second"] = round(stats.requests / benchmark.stats.stats.min)
    assert stats.requests == REQUESTS and stats.invalid == 0
    return stats


def test_replay_fixture_policy_memory(benchmark, traffic: Path) -> None:
    policy = load_policy_set(FIXTURE_POLICY)
    assert len(policy.rules) == 15 and len(policy.limits) == 6
    stats = _bench(benchmark, policy, traffic)
    assert stats.blocked > 0


def test_replay_shipped_policy_memory(benchmark, traffic: Path) -> None:
    shipped = ROOT / "policies"
    if not any(shipped.glob("*.policy")):
        pytest.skip("the shipped policy set is not there")
    stats = _bench(benchmark, load_policy_set(shipped), traffic)
    assert stats.blocked > 0
