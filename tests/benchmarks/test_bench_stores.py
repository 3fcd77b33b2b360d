"""Check+commit cost of one limit on each store, beside the `limits` library
(moving window) measured in the same run; and bursts of 200 concurrent
requests on Redis, with and without shared pipelines.

Run: .venv/bin/python -m pytest tests/benchmarks/test_bench_stores.py --benchmark-enable
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any
from collections.abc import Callable

import pytest
from limits import RateLimitItemPerMinute
from limits.aio.storage import RedisStorage as AioRedisStorage
from limits.aio.strategies import MovingWindowRateLimiter as AioMovingWindow
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from policy_engine.state.base import Hit, Kind, LimitSpec
from policy_engine.state.memory import MemoryStore
from policy_engine.state.redis import RedisStore

SPECS = {
    "count": LimitSpec("rpm", Kind.COUNT, 60.0),
    "sum": LimitSpec("tokens", Kind.SUM, 86400.0, reconcilable=True),
    "distinct": LimitSpec("prompts", Kind.DISTINCT, 3600.0),
}
KEYS = 1000  # accounts cycled through, so that the store holds realistic state
T0 = 1_764_300_000.0


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
