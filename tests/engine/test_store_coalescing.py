"""The Redis store shares pipelines between concurrent calls: each caller gets
its own answers, deadlines hold for each caller, and abandoned calls are not sent."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time

from policy_engine.state.base import Hit, Kind, LimitSpec, Record
from policy_engine.state.memory import MemoryStore
from policy_engine.state.redis import RedisStore

W = 60.0
T0 = 6000.0
COUNT = LimitSpec("rpm", Kind.COUNT, W)
TOKENS = LimitSpec("tokens", Kind.SUM, W, reconcilable=True)
PROMPTS = LimitSpec("prompts", Kind.DISTINCT, W)
PROBES = LimitSpec("probes", Kind.COUNT, W, record=Record.ATTEMPTS)


def _requests(seed: int, n: int, multi: bool) -> list[list[Hit]]:
    """Small maxima on few keys, so that some requests are over and some not."""
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        key = f"k{rnd.randint(0, 3)}"
        one = [
            Hit(COUNT, key, 5),
            Hit(TOKENS, key, 900, amount=float(rnd.randint(50, 300))),
            Hit(PROMPTS, key, 3, member=f"m{rnd.randint(0, 5)}"),
            Hit(PROBES, key, 4),
        ]
        out.append(rnd.sample(one, rnd.randint(1, 3)) if multi else [rnd.choice(one)])
    return out


def test_coalesced_calls_get_their_own_results(redis_store_env) -> None:
    # On a single Redis a request's hits are one script; on a cluster a refused
    # multi-slot request is refunded in a second round trip, whose order among
    # concurrent requests differs from a serial run: single-hit requests there.
    multi = redis_store_env.kind == "redis"
    reqs = _requests(3, 300, multi)

    async def body(s: RedisStore) -> None:
        mem = MemoryStore()
        want = [mem.acquire_sync(h, T0 + 1, request_id=f"r{i}") for i, h in enumerate(reqs)]
        before = s.pipelines
        # tasks start in order and one pipeline is in flight at a time, so the
        # pipelines carry the calls in this order (concurrent pipelines may not)
        got = await asyncio.gather(*(s.acquire(h, T0 + 1, request_id=f"r{i}") for i, h in enumerate(reqs)))
        pipelines, calls = s.pipelines[0] - before[0], s.pipelines[1] - before[1]
        assert calls >= len(reqs) and pipelines < calls / 10, (pipelines, calls)  # they were shared
        assert [x for x in got] == want
        assert {x.over for rs in got for x in rs} == {True, False}
        # usage reports go through the shared pipelines too, each to its own receipt
        costs = await asyncio.gather(*(s.reconcile(f"r{i}", {"tokens": 1.0}, T0 + 2) for i in range(len(reqs))))
        assert costs == [mem.reconcile_sync(f"r{i}", {"tokens": 1.0}, T0 + 2) for i in range(len(reqs))]
        for k in range(4):
            r = await s.acquire([Hit(TOKENS, f"k{k}", 900, amount=0)], T0 + 3)
            assert r == mem.acquire_sync([Hit(TOKENS, f"k{k}", 900, amount=0)], T0 + 3)

    async def main() -> None:
        s = RedisStore.from_url(redis_store_env.url, deadline=5.0, max_inflight=1)
        await s.flush()
        try:
            await body(s)
        finally:
            await s.close()

    asyncio.run(main())


def test_a_hung_redis_holds_no_caller_past_its_deadline(redis_factory) -> None:
    server = redis_factory()
    store_deadline = 0.4

    async def caller(s: RedisStore, key: str, deadline: float | None) -> tuple[str, float]:
        t = time.monotonic()
        try:
            if deadline is None:  # bounded by the store's own deadline only
                (r,) = await s.acquire([Hit(COUNT, key, 100)], T0)
                outcome = "error" if r.error and "Timeout" in r.error else f"unexpected {r}"
            else:
                async with asyncio.timeout(deadline):  # the engine bounds each call like this
                    await s.acquire([Hit(COUNT, key, 100)], T0)
                outcome = "unexpected answer"
        except TimeoutError:
            outcome = "timeout"
        return outcome, time.monotonic() - t

    async def body() -> None:
        s = RedisStore.from_url(server.url, deadline=store_deadline, max_inflight=2)
        try:
            (r,) = await s.acquire([Hit(COUNT, "warm", 100)], T0)
            assert r.error is None
            os.kill(server.proc.pid, signal.SIGSTOP)
            try:
                # "x" goes out alone; "a" and "b" share the second pipeline; both pipelines hang
                tasks = [asyncio.create_task(caller(s, k, d)) for k, d in (("x", None), ("a", 0.05), ("b", None))]
                await asyncio.sleep(0.02)
                # two pipelines in flight: these queue behind them
                tasks += [asyncio.create_task(caller(s, "late", 0.05)), asyncio.create_task(caller(s, "c", 0.2))]
                results = await asyncio.gather(*tasks)
            finally:
                os.kill(server.proc.pid, signal.SIGCONT)
            (x, tx), (a, ta), (b, tb), (late, tl), (c, tc) = results
            assert (x, a, b, late, c) == ("error", "timeout", "error", "timeout", "timeout")
            slack = 0.25  # a loaded machine; what matters is that nobody waits for the others
            assert ta < 0.05 + slack and tl < 0.05 + slack and tc < 0.2 + slack
            assert tx < store_deadline + slack and tb < store_deadline + slack
            assert ta < tb and tl < tb

            for _ in range(50):  # Redis catches up; bounded
                (r,) = await s.acquire([Hit(COUNT, "after", 100)], T0)
                if r.error is None:
                    break
            assert r.error is None and r.used == 1
            # "late" gave up while queued behind the stuck pipeline: it was never sent
            (r,) = await s.acquire([Hit(COUNT, "late", 100)], T0)
            assert r.used == 1
        finally:
            await s.close()

    asyncio.run(body())


def test_store_errors_reach_every_caller_of_a_pipeline(redis_factory) -> None:
    server = redis_factory()

    async def body() -> None:
        s = RedisStore.from_url(server.url, deadline=0.2)
        try:
            server.stop()
            rs = await asyncio.gather(*(s.acquire([Hit(COUNT, f"k{i}", 10)], T0) for i in range(50)))
            assert all(r.error and "redis store" in r.error and not r.committed for (r,) in rs)
            server.start()
            rs = await asyncio.gather(*(s.acquire([Hit(COUNT, f"k{i % 5}", 10)], T0) for i in range(50)))
            assert sorted(r.used for (r,) in rs) == sorted(float(n) for n in range(1, 11) for _ in range(5))
        finally:
            await s.close()

    asyncio.run(body())
