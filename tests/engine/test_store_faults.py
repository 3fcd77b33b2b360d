"""Redis failures: every call returns within its deadline with an error, and the
store works again once Redis is back on the same port."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
from redis.exceptions import RedisError

from policy_engine.state.base import Hit, Kind, LimitSpec
from policy_engine.state.redis import RedisStore

DEADLINE = 0.05
SPEC = LimitSpec("rpm", Kind.COUNT, 60.0)
TOKENS = LimitSpec("tokens", Kind.SUM, 60.0, reconcilable=True)


async def _acquire(store: RedisStore, now: float):
    # the engine bounds every store call the same way
    return await asyncio.wait_for(store.acquire([Hit(SPEC, "a", 100)], now, request_id=f"r{now}"), DEADLINE * 4)


def test_redis_down_then_back(redis_factory) -> None:
    server = redis_factory()

    async def body() -> None:
        store = RedisStore.from_url(server.url, deadline=DEADLINE)
        try:
            (r,) = await _acquire(store, 1000.0)
            assert r.error is None and r.used == 1

            server.stop()
            for i in range(3):
                (r,) = await _acquire(store, 1001.0 + i)
                assert r.error is not None and "redis store" in r.error
                assert not r.committed and not r.over
            with pytest.raises(RedisError, match="reconcile of request 'r1000.0'"):
                await asyncio.wait_for(store.reconcile("r1000.0", {"rpm": 1}, 1002.0), DEADLINE * 4)

            server.start()  # same port, empty (no persistence): scripts must be loaded again
            (r,) = await _acquire(store, 1010.0)
            assert r.error is None and r.used == 1
            (r,) = await _acquire(store, 1011.0)
            assert r.used == 2
        finally:
            await store.close()

    asyncio.run(body())


def test_redis_hung_times_out(redis_factory) -> None:
    server = redis_factory()

    async def body() -> None:
        store = RedisStore.from_url(server.url, deadline=DEADLINE)
        try:
            (r,) = await _acquire(store, 1000.0)
            assert r.error is None
            os.kill(server.proc.pid, signal.SIGSTOP)  # accepts nothing, answers nothing
            try:
                r2 = await asyncio.wait_for(
                    store.acquire([Hit(SPEC, "a", 100), Hit(TOKENS, "a", 10, amount=1)], 1001.0), DEADLINE * 4
                )
                assert len(r2) == 2 and all(x.error and "Timeout" in x.error for x in r2)
            finally:
                os.kill(server.proc.pid, signal.SIGCONT)
            for i in range(50):  # the server catches up with what was queued; bounded
                (r,) = await _acquire(store, 1002.0 + i)
                if r.error is None:
                    break
            assert r.error is None and r.used >= 2
        finally:
            await store.close()

    asyncio.run(body())
