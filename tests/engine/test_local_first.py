"""Local-first limits (state/local_first.py) against real Redis and Redis Cluster:
decided from local counters, deltas exchanged in rounds (sync.lua)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from policy_engine.state.base import Calendar, Hit, Kind, LimitSpec, StoreUnavailable
from policy_engine.state.factory import StoreOptions, StoreURLError, open_store
from policy_engine.state.local_first import LocalFirstStore
from policy_engine.state.memory import MemoryStore
from policy_engine.state.sync_mode import SyncMode, parse_sync

from test_store_equivalence import SPECS, _traffic

COUNT = LimitSpec("rpm", Kind.COUNT, 60.0)
DISTINCT = LimitSpec("accounts", Kind.DISTINCT, 3600.0)
TOKENS = LimitSpec("tokens", Kind.SUM, 3600.0, reconcilable=True)
DAY = LimitSpec("daily", Kind.COUNT, 90_000.0, calendar=Calendar("day", "Europe/Paris"))
NOW = 1_764_300_000.0
# every limit batched, sums included (they stay exact unless named)
ALL_BATCHED = parse_sync("batched:50ms", {s.id: "batched" for s in [*SPECS, TOKENS]})


def _open(url: str, mode: SyncMode = ALL_BATCHED) -> LocalFirstStore:
    store = open_store(url, StoreOptions(deadline=5.0, sync=mode))
    assert isinstance(store, LocalFirstStore)
    return store


def _run(env, body) -> None:  # type: ignore[no-untyped-def]
    """body(a, b): two local-first stores (two processes' views) on one fresh Redis."""

    async def main() -> None:
        plain = await env.make()
        await plain.close()
        a, b = _open(env.url), _open(env.url)
        try:
            await body(a, b)
        finally:
            await a.close()
            await b.close()

    asyncio.run(main())


def test_counts_meet_after_a_round(redis_store_env) -> None:
    async def body(a: LocalFirstStore, b: LocalFirstStore) -> None:
        for i in range(30):
            (r,) = a.acquire_nowait([Hit(COUNT, "acct", 100)], NOW + i * 0.01)  # type: ignore[misc]
            assert r.committed
        for i in range(20):
            (r,) = await b.acquire([Hit(COUNT, "acct", 100)], NOW + i * 0.01)
        assert r.used == 20  # b has not heard of a yet: the documented lag
        assert await a.sync() and await b.sync()
        (rb,) = await b.preview([Hit(COUNT, "acct", 100)], NOW + 1)
        assert rb.used == 51  # 50 charged + this request
        # a round pulls the keys decided on since the last one: a's view is the one
        # it had after its own round until it decides on the key again
        (ra,) = await a.preview([Hit(COUNT, "acct", 100)], NOW + 1)
        assert ra.used == 31
        assert await a.sync()
        (ra,) = await a.preview([Hit(COUNT, "acct", 100)], NOW + 1)
        assert ra.used == 51
        plain = a.inner
        (exact,) = await plain.preview([Hit(COUNT, "acct", 100)], NOW + 1)
        assert exact.used == 51  # exact mode reads the same keys: one truth

    _run(redis_store_env, body)


def test_distinct_members_meet(redis_store_env) -> None:
    async def body(a: LocalFirstStore, b: LocalFirstStore) -> None:
        for m in ("u1", "u2", "u3"):
            await a.acquire([Hit(DISTINCT, "card", 10, member=m)], NOW)
        await b.acquire([Hit(DISTINCT, "card", 10, member="u4")], NOW)
        await a.sync()
        await b.sync()
        # b knows a's members now: u1 is repeated (adds nothing), u9 is the fifth
        (r,) = await b.acquire([Hit(DISTINCT, "card", 10, member="u1")], NOW + 1)
        assert r.used == 4
        (r,) = await b.acquire([Hit(DISTINCT, "card", 10, member="u9")], NOW + 1)
        assert r.used == 5

    _run(redis_store_env, body)


def test_calendar_window(redis_store_env) -> None:
    async def body(a: LocalFirstStore, b: LocalFirstStore) -> None:
        for i in range(5):
            await a.acquire([Hit(DAY, "acct", 8)], NOW + i)
        await a.sync()
        await b.acquire([Hit(DAY, "acct", 8)], NOW + 10)
        await b.sync()
        (r,) = await b.acquire([Hit(DAY, "acct", 8)], NOW + 11)
        assert r.used == 7 and r.reset == 0.0
        (r,) = await b.acquire([Hit(DAY, "acct", 8)], NOW + 12)
        (r,) = await b.acquire([Hit(DAY, "acct", 8)], NOW + 13)
        assert r.over and not r.committed
        end = DAY.calendar.period(NOW).end  # type: ignore[union-attr]
        assert r.reset == pytest.approx(end - (NOW + 13))
        ttl = await a.inner.ttl(DAY, "acct", NOW)
        assert ttl is not None and 0 < ttl <= end - NOW + 1  # kept until the day ends in Paris
        # the next local day starts afresh, on both
        (r,) = await a.acquire([Hit(DAY, "acct", 8)], end + 1)
        assert r.used == 1

    _run(redis_store_env, body)


def test_alone_it_answers_like_memory(redis_store_env) -> None:
    """One local-first process with rounds in between decides exactly like the memory
    store: the rounds install what Redis merged, and merge what was charged meanwhile."""

    async def main() -> None:
        plain = await redis_store_env.make()
        await plain.close()
        store = _open(redis_store_env.url)
        mem = MemoryStore()
        try:
            for step, (now, hits, admitted, rid, report) in enumerate(_traffic(11, 1200)):
                want = mem.acquire_sync(hits, now, admitted=admitted, request_id=rid)
                got = await store.acquire(hits, now, admitted=admitted, request_id=rid)
                assert got == want, f"step {step} at {now}: {hits}"
                if report is not None:
                    assert await store.reconcile(rid, report, now + 0.5) == mem.reconcile_sync(rid, report, now + 0.5)
                if step % 7 == 0:
                    assert await store.sync()
        finally:
            await store.close()

    asyncio.run(main())


def test_usage_report_on_another_process(redis_store_env) -> None:
    async def body(a: LocalFirstStore, b: LocalFirstStore) -> None:
        (r,) = await a.acquire([Hit(TOKENS, "acct", 10_000, amount=4000)], NOW, request_id="q1")
        assert r.committed
        # not sent yet: a reconciles it itself, once
        assert await a.reconcile("q1", {"tokens": 1000}, NOW + 1)
        assert not await a.reconcile("q1", {"tokens": 1000}, NOW + 1)
        (r,) = await a.acquire([Hit(TOKENS, "acct", 10_000, amount=4000)], NOW + 2, request_id="q2")
        assert r.used == 5000
        await a.sync()
        # sent: the report reaches b, which takes the receipt from Redis, once
        assert await b.reconcile("q2", {"tokens": 500}, NOW + 3)
        assert not await a.reconcile("q2", {"tokens": 500}, NOW + 3)
        await b.sync()
        await a.preview([Hit(TOKENS, "acct", 10_000, amount=0)], NOW + 4)  # a decides on the key again
        await a.sync()
        (ra,) = await a.preview([Hit(TOKENS, "acct", 10_000, amount=0)], NOW + 4)
        (rb,) = await b.preview([Hit(TOKENS, "acct", 10_000, amount=0)], NOW + 4)
        assert ra.used == rb.used == 1500

    _run(redis_store_env, body)


def test_mixed_exact_and_batched(redis_server) -> None:
    """Sums stay exact by default: a request with a batched count and an exact budget
    is decided as a whole, the budget on Redis."""

    async def main() -> None:
        plain = open_store(redis_server.url, StoreOptions(deadline=5.0))
        await plain.flush()
        await plain.close()
        store = _open(redis_server.url, parse_sync("batched:50ms"))
        try:
            hits = [Hit(COUNT, "acct", 100), Hit(TOKENS, "acct", 1000, amount=400)]
            assert store.acquire_nowait(hits, NOW) is None  # needs Redis for the budget
            assert [r.committed for r in await store.acquire(hits, NOW, request_id="m1")] == [True, True]
            assert [r.committed for r in await store.acquire(hits, NOW, request_id="m2")] == [True, True]
            third = await store.acquire(hits, NOW, request_id="m3")
            assert third[1].over and not third[0].committed  # refused by the exact budget: no count
            assert third[0].used == 2
            (exact,) = await store.inner.preview([Hit(TOKENS, "acct", 1000, amount=0)], NOW)
            assert exact.used == 800  # on Redis at once, no round needed
            assert await store.reconcile("m1", {"tokens": 100}, NOW + 1)  # the exact receipt
            (exact,) = await store.inner.preview([Hit(TOKENS, "acct", 1000, amount=0)], NOW)
            assert exact.used == 500
            # a refusal by the batched count charges nothing on the exact budget
            full = [Hit(COUNT, "acct", 2), Hit(TOKENS, "acct", 1000, amount=10)]
            res = await store.acquire(full, NOW + 2)
            assert res[0].over and not res[1].committed
            (exact,) = await store.inner.preview([Hit(TOKENS, "acct", 1000, amount=0)], NOW)
            assert exact.used == 500
        finally:
            await store.close()

    asyncio.run(main())


def test_redis_down_decides_locally_and_catches_up(redis_factory) -> None:
    server = redis_factory()

    async def main() -> None:
        a, b = _open(server.url, parse_sync("batched:50ms")), _open(server.url, parse_sync("batched:50ms"))
        try:
            for i in range(5):
                await a.acquire([Hit(COUNT, "acct", 100)], NOW + i)
            assert await a.sync()
            server.stop()
            for i in range(10):  # no error, no fail mode: decided from a's counters
                (r,) = await a.acquire([Hit(COUNT, "acct", 100)], NOW + 10 + i)
                assert r.error is None and r.committed
            assert r.used == 15
            assert not await a.sync()
            assert a.stats.failed_rounds == 1 and not a.redis_ok
            with pytest.raises(StoreUnavailable, match="deciding batched limits locally"):
                await a.check()
            server.start()
            assert await a.sync()  # the ten charged while Redis was down go out now
            assert a.redis_ok
            await b.acquire([Hit(COUNT, "acct", 100)], NOW + 30)
            await b.sync()
            (r,) = await b.preview([Hit(COUNT, "acct", 100)], NOW + 31)
            # the restarted Redis (no persistence here) lost the first five; the ten charged
            # while it was down reached it, plus b's one and this request
            assert r.used == 12
        finally:
            await a.close()
            await b.close()

    asyncio.run(main())


def test_an_outage_keeps_a_bounded_backlog(redis_factory) -> None:
    server = redis_factory()

    async def main() -> None:
        inner = open_store(server.url, StoreOptions(deadline=0.5))
        store = LocalFirstStore(inner, parse_sync("batched:50ms"), max_pending_keys=3)  # type: ignore[arg-type]
        try:
            server.stop()
            for round_ in range(2):
                for i in range(5):
                    await store.acquire([Hit(COUNT, f"k{i}", 100)], NOW + round_)
                assert not await store.sync()
            assert store.stats.dropped_keys == 2 + 2  # each failed round kept 3 of its 5 keys
            assert len(store._batch.seen) == 3  # the backlog, bounded
        finally:
            await store.close()

    asyncio.run(main())


def test_background_rounds_run_by_themselves(redis_server) -> None:
    async def main() -> None:
        plain = open_store(redis_server.url, StoreOptions(deadline=5.0))
        await plain.flush()
        await plain.close()
        a = _open(redis_server.url, parse_sync("batched:20ms"))
        b = _open(redis_server.url, parse_sync("batched:20ms"))
        try:
            await a.acquire([Hit(COUNT, "k", 100)], NOW)
            await b.acquire([Hit(COUNT, "k", 100)], NOW)
            for _ in range(100):  # bounded: 2 s
                (r,) = await b.preview([Hit(COUNT, "k", 100)], NOW)
                if r.used == 3:
                    break
                await asyncio.sleep(0.02)
            assert r.used == 3 and a.stats.rounds >= 1 and b.stats.rounds >= 1
        finally:
            await a.close()
            await b.close()

    asyncio.run(main())


def test_settings_errors() -> None:
    with pytest.raises(ValueError, match="expected `exact` or `batched:<N>ms`"):
        parse_sync("batched")
    with pytest.raises(ValueError, match="between 1ms and 60s"):
        parse_sync("batched:0ms")
    with pytest.raises(ValueError, match="neither `exact` nor `batched`"):
        parse_sync("batched:50ms", {"rpm": "fast"})
    with pytest.raises(ValueError, match="store_sync is `exact`"):
        parse_sync("exact", {"rpm": "batched"})
    with pytest.raises(StoreURLError, match="shared store"):
        open_store(None, StoreOptions(sync=parse_sync("batched:50ms")))
    mode = parse_sync("batched:0.5s", {"tokens": "batched", "rpm": "exact"})
    assert mode.interval == 0.5 and mode.describe() == "batched:500ms (rpm=exact, tokens=batched)"
    assert mode.is_batched(TOKENS) and not mode.is_batched(COUNT) and mode.is_batched(DISTINCT)
    default = parse_sync("batched:50ms")
    assert not default.is_batched(TOKENS) and default.is_batched(COUNT)
    assert default.is_batched(LimitSpec("harvest", Kind.SUM, 3600.0, measure=True))  # a measure, not a budget


def test_alone_a_report_without_a_receipt_asks_no_one(redis_factory) -> None:
    """solo (a replay): a report for a request that kept no receipt is answered without
    Redis; one whose receipt went out with a round is still found there."""
    server = redis_factory()

    async def main() -> None:
        mode = replace(ALL_BATCHED, solo=True)
        store = _open(server.url, mode)
        try:
            (r,) = await store.acquire([Hit(TOKENS, "acct", 10_000, amount=400)], NOW, request_id="sent")
            assert await store.sync()
            assert await store.reconcile("sent", {"tokens": 100}, NOW + 1)  # from Redis
            server.stop()
            assert not await store.reconcile("never-charged", {"tokens": 100}, NOW + 1)  # no round trip: no error
        finally:
            await store.close()

    asyncio.run(main())


def test_alone_a_round_sends_the_changes_and_pulls_nothing(redis_store_env) -> None:
    """solo (a replay): the process owns every key, so a round writes its changes as
    any round does (exact mode then reads the same counts and sketches) but asks for
    no state back: a key decided on without a change costs nothing, and what the
    process decided between the rounds stays its view."""

    async def main() -> None:
        plain = await redis_store_env.make()
        store = _open(redis_store_env.url, replace(ALL_BATCHED, solo=True))
        try:
            for i in range(12):
                await store.acquire([Hit(COUNT, "acct", 100), Hit(DISTINCT, "card", 100, member=f"u{i % 5}")], NOW)
            (read,) = await store.acquire([Hit(DISTINCT, "other", 100)], NOW)  # a read: no member, no change
            assert read.used == 0
            assert await store.sync()
            assert store.stats.keys_sent == 2  # the two keys that changed; the read one is not pulled
            count, members = await plain.preview(
                [Hit(COUNT, "acct", 100), Hit(DISTINCT, "card", 100, member="u0")], NOW
            )
            assert (count.used, members.used) == (13.0, 5.0)  # in Redis: 12 charged (+1 previewed), 5 members
            (again,) = await store.acquire([Hit(COUNT, "acct", 100)], NOW)
            assert again.used == 13.0  # the local view, as exact mode would answer
        finally:
            await store.close()
            await plain.close()

    asyncio.run(main())
