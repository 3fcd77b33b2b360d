"""What a decision's measure states cost when nobody reads them, and when a view does.

The engine keeps a request's measures as the store answered them (MeasureStates)
and builds their states only when read: Envoy's answer never reads them, explain,
the decision log, replay and our Check do. Each round decides the same 3,000
simulated requests on the shipped policy (~25 measures a request) from a fresh
memory store, through the engine's synchronous API:

    decide            what the ext_authz path pays
    decide_and_read   the same, then every measure state built (what a view pays)

Run: .venv/bin/python -m pytest tests/benchmarks/test_bench_built_when_asked.py --benchmark-enable
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from policy_engine.context import Context
from policy_engine.decision import Decision
from policy_engine.engine import Engine
from policy_engine.policyset import load_policy_set
from policy_engine.simulate.generator import SimConfig, write
from policy_engine.state.memory import MemoryStore

ROOT = Path(__file__).resolve().parents[2]
REQUESTS = 3_000


@pytest.fixture(scope="module")
def lines(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    if not any((ROOT / "policies").glob("*.policy")):
        pytest.skip("the shipped policy set is not there")
    d = tmp_path_factory.mktemp("bench-built-when-asked")
    path = d / "traffic.jsonl"
    write(SimConfig(seed=1, hours=0.5), path, d / "truth.jsonl")
    return path.read_bytes().splitlines()[:REQUESTS]


def _bench(benchmark: Any, lines: list[bytes], read: Callable[[Decision], object]) -> None:
    policy = load_policy_set(ROOT / "policies")

    def setup() -> tuple[tuple[Engine, list[Context]], dict[str, Any]]:
        return (Engine(policy, MemoryStore()), [Context.from_json(line) for line in lines]), {}

    def run(engine: Engine, contexts: list[Context]) -> int:
        measures = 0
        for c in contexts:
            d = engine.decide_sync(c, c.request_ts)
            read(d)
            measures += len(d.measures)
        return measures

    measures = benchmark.pedantic(run, setup=setup, rounds=9, iterations=1, warmup_rounds=1)
    assert len(lines) == REQUESTS and measures > 20 * REQUESTS  # the shipped policy's ~25 a request
    if benchmark.stats is not None:  # None under --benchmark-disable (the default test run)
        benchmark.extra_info["us_per_decision"] = round(benchmark.stats.stats.min / REQUESTS * 1e6, 1)


def test_decide(benchmark: Any, lines: list[bytes]) -> None:
    _bench(benchmark, lines, lambda d: None)


def test_decide_and_read(benchmark: Any, lines: list[bytes]) -> None:
    _bench(benchmark, lines, lambda d: list(d.measures))
