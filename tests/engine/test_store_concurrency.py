"""Concurrent acquires never admit more than the maximum."""

from __future__ import annotations

import asyncio
import multiprocessing

from policy_engine.state.base import Hit, Kind, LimitSpec
from policy_engine.state.redis import RedisStore

COUNT = LimitSpec("rpm", Kind.COUNT, 60.0)
TOKENS = LimitSpec("tokens", Kind.SUM, 60.0, reconcilable=True)
NOW = 6000.0
MAX = 40


def _hits(i: int) -> list[Hit]:
    # two limits on different keys (different slots on a cluster): refusals by
    # the token budget refund the count charged in the other slot
    return [Hit(COUNT, "acct", 1e9), Hit(TOKENS, "org", MAX * 10, amount=10)]


async def _burst(store, n: int, offset: int) -> int:
    results = await asyncio.gather(*(store.acquire(_hits(i), NOW, request_id=f"r{offset + i}") for i in range(n)))
    assert all(r.error is None for rs in results for r in rs)
    return sum(1 for rs in results if all(r.committed for r in rs))


def test_concurrent_acquires_respect_max(store_env) -> None:
    async def body(s) -> None:
        admitted = await _burst(s, 3 * MAX, 0)
        assert admitted == MAX
        if hasattr(s, "pipelines"):  # Redis: the burst shared pipelines, and the bound still held
            pipelines, calls = s.pipelines
            assert pipelines < calls / 4, (pipelines, calls)
        # refunds left no trace: the count limit holds exactly the admitted requests
        (r,) = await s.acquire([Hit(COUNT, "acct", 1e9)], NOW)
        assert r.used == MAX + 1

    store_env.run(body)


def _worker(url: str, n: int, offset: int, q: multiprocessing.Queue) -> None:
    async def main() -> int:
        store = RedisStore.from_url(url, deadline=5.0)
        try:
            return await _burst(store, n, offset)
        finally:
            await store.close()

    q.put(asyncio.run(main()))


def test_processes_sharing_redis_respect_max(redis_store_env) -> None:
    async def flush() -> None:
        s = await redis_store_env.make()
        await s.close()

    asyncio.run(flush())
    ctx = multiprocessing.get_context("fork")
    q: multiprocessing.Queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(redis_store_env.url, 30, 1000 * k, q)) for k in range(4)]
    for p in procs:
        p.start()
    counts = [q.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=10)
        assert p.exitcode == 0
    assert sum(counts) == MAX
