"""Check+commit cost of one limit on each store, beside the `limits` library
(moving window) measured in the same run; and bursts of 200 concurrent
requests on Redis, with and without shared pipelines.

Run: .venv/bin/python -m pytest tests/benchmarks/test_bench_stores.py --benchmark-enable
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any
from collections.abc import Callable, Sequence

import pytest
from limits import RateLimitItemPerMinute
from limits.aio.storage import RedisStorage as AioRedisStorage
from limits.aio.strategies import MovingWindowRateLimiter as AioMovingWindow
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from policy_engine.policyset import load_policy_set
from policy_engine.replay import replay_memory
from policy_engine.simulate.generator import SimConfig, write
from policy_engine.state.base import Hit, HitResult, Kind, LimitSpec
from policy_engine.state.memory import MemoryStore
from policy_engine.state.redis import RedisStore

SPECS = {
    "count": LimitSpec("rpm", Kind.COUNT, 60.0),
    "sum": LimitSpec("tokens", Kind.SUM, 86400.0, reconcilable=True),
    "distinct": LimitSpec("prompts", Kind.DISTINCT, 3600.0),
}
KEYS = 1000  # accounts cycled through, so that the store holds realistic state
T0 = 1_764_300_000.0
ROOT = Path(__file__).resolve().parents[2]


def _hit_stream(kind: str) -> Callable[[], tuple[list[Hit], float]]:
    spec = SPECS[kind]
    counter = itertools.count()

    def nxt() -> tuple[list[Hit], float]:
        i = next(counter)
        # maxima high enough that every call commits: we measure check + commit
        hit = Hit(
            spec,
            f"acct-{i % KEYS}",
            1e12,
            amount=250.0 if kind == "sum" else 1.0,
            member=f"fp-{i % 300}" if kind == "distinct" else None,
        )
        return [hit], T0 + i * 0.0005

    return nxt


@pytest.mark.parametrize("kind", list(SPECS))
def test_memory_store(benchmark: Any, kind: str) -> None:
    store = MemoryStore()
    nxt = _hit_stream(kind)

    def step() -> None:
        hits, now = nxt()
        store.acquire_sync(hits, now)

    benchmark.group = "stores: memory"
    benchmark(step)


# Seven counters on one account over one day, as the shipped policy's measures and its
# daily token budget: with LimitSpec.group set (one entry per key, looked up once per
# call) and without (an entry per limit), in one call per request.
SHARED = ["requests", "probes", "disguises", "reasoning", "refused", "harvest", "tokens"]


@pytest.mark.parametrize("layout", ["grouped", "entry per limit"])
def test_memory_store_seven_limits_sharing_key_and_window(benchmark: Any, layout: str) -> None:
    group = "\x1eaccount.id\x1e86400.0" if layout == "grouped" else None
    specs = [
        LimitSpec(n, Kind.SUM if n in ("refused", "harvest", "tokens") else Kind.COUNT, 86400.0, group=group)
        for n in SHARED
    ]
    store = MemoryStore()
    counter = itertools.count()

    def step() -> None:
        i = next(counter)
        acct = f"acct-{i % KEYS}"
        store.acquire_sync(
            [Hit(sp, acct, 1e12, 250.0 if sp.kind is Kind.SUM else 1.0) for sp in specs], T0 + i * 0.0005
        )

    benchmark.group = "stores: memory, 7 limits sharing key and window, one call"
    benchmark(step)


class _Recording(MemoryStore):
    """A memory store that keeps every call it answers, to be played again."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[list[Hit], float, bool, str | None]] = []

    def acquire_sync(
        self, hits: Sequence[Hit], now: float, *, admitted: bool = True, request_id: str | None = None
    ) -> list[HitResult]:
        self.calls.append((list(hits), now, admitted, request_id))
        return super().acquire_sync(hits, now, admitted=admitted, request_id=request_id)


def test_memory_store_shipped_policy_calls(benchmark: Any, tmp_path: Path) -> None:
    """The store's share of a decision: the calls the shipped policy makes on 20,000
    simulated requests (26 measures at three levels and 3 limits: four calls a request),
    recorded once through replay, then played on a fresh store per round."""
    traffic = tmp_path / "traffic.jsonl"
    write(SimConfig(seed=1, hours=24 * 20_000 / 230_000), traffic, tmp_path / "truth.jsonl")
    rec = _Recording()
    stats = replay_memory(load_policy_set(ROOT / "policies"), traffic, None, rec)

    def play() -> None:
        acquire = MemoryStore().acquire_sync
        for hits, now, admitted, rid in rec.calls:
            acquire(hits, now, admitted=admitted, request_id=rid)

    benchmark.group = "stores: memory, the shipped policy's calls"
    benchmark.extra_info["requests"] = stats.requests
    benchmark.extra_info["calls"] = len(rec.calls)
    benchmark.extra_info["hits"] = sum(len(c[0]) for c in rec.calls)
    benchmark.pedantic(play, rounds=5, iterations=1, warmup_rounds=1)


def test_limits_memory_moving_window(benchmark: Any) -> None:
    limiter = MovingWindowRateLimiter(MemoryStorage())
    item = RateLimitItemPerMinute(10**9)
    counter = itertools.count()

    def step() -> None:
        limiter.hit(item, f"acct-{next(counter) % KEYS}")

    benchmark.group = "stores: memory"
    benchmark(step)


def _run_async(benchmark: Any, make: Callable[[], Any], step: Callable[[Any], Any], group: str) -> None:
    loop = asyncio.new_event_loop()
    try:
        target = loop.run_until_complete(make())
        loop.run_until_complete(step(target))  # connect, load scripts
        benchmark.group = group
        benchmark(lambda: loop.run_until_complete(step(target)))
        close = getattr(target, "close", None)
        if close is not None:
            loop.run_until_complete(close())
    finally:
        loop.close()


@pytest.mark.parametrize("kind", list(SPECS))
def test_redis_store(benchmark: Any, redis_server: Any, kind: str) -> None:
    nxt = _hit_stream(kind)

    async def make() -> RedisStore:
        store = RedisStore.from_url(redis_server.url, deadline=1.0)
        await store.flush()
        return store

    async def step(store: RedisStore) -> None:
        hits, now = nxt()
        (r,) = await store.acquire(hits, now)
        assert r.error is None

    _run_async(benchmark, make, step, "stores: redis")


def test_limits_redis_moving_window(benchmark: Any, redis_server: Any) -> None:
    item = RateLimitItemPerMinute(10**9)
    counter = itertools.count()

    async def make() -> AioMovingWindow:
        storage = AioRedisStorage(redis_server.url, implementation="redispy", key_prefix="LIMITSBENCH")
        return AioMovingWindow(storage)

    async def step(limiter: AioMovingWindow) -> None:
        assert await limiter.hit(item, f"acct-{next(counter) % KEYS}")

    _run_async(benchmark, make, step, "stores: redis")


# --- 200 requests in flight ----------------------------------------------------

IN_FLIGHT = 200


def _request_stream() -> Callable[[], tuple[list[Hit], float, str]]:
    """A typical request: a count and a reconcilable token budget on one account (a receipt too)."""
    counter = itertools.count()

    def nxt() -> tuple[list[Hit], float, str]:
        i = next(counter)
        acct = f"acct-{i % KEYS}"
        return [Hit(SPECS["count"], acct, 1e12), Hit(SPECS["sum"], acct, 1e12, amount=250.0)], T0 + i * 0.0005, f"r{i}"

    return nxt


@pytest.mark.parametrize("mode", ["shared pipelines", "one pipeline per call"])
def test_redis_store_200_in_flight(benchmark: Any, redis_server: Any, mode: str) -> None:
    """One round = 200 concurrent acquires; per request = the time / 200."""
    nxt = _request_stream()
    opts = {} if mode == "shared pipelines" else {"max_inflight": IN_FLIGHT, "max_batch": 1}

    async def make() -> RedisStore:
        store = RedisStore.from_url(redis_server.url, deadline=2.0, **opts)
        await store.flush()
        return store

    async def one(store: RedisStore) -> None:
        hits, now, rid = nxt()
        rs = await store.acquire(hits, now, request_id=rid)
        assert rs[0].error is None, rs[0].error

    async def burst(store: RedisStore) -> None:
        await asyncio.gather(*(one(store) for _ in range(IN_FLIGHT)))

    _run_async(benchmark, make, burst, "stores: redis, 200 requests in flight")
