"""The limit-store contract (docs/limits.md), run against memory, Redis and Redis Cluster."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from policy_engine.state.base import SKETCH_K, Hit, Kind, LimitSpec, Record

W = 60.0
T0 = 6000.0  # a bucket boundary for a 60 s window (simulated clock)

COUNT = LimitSpec("rpm", Kind.COUNT, W)
TOKENS = LimitSpec("tokens", Kind.SUM, W, reconcilable=True)
PROMPTS = LimitSpec("prompts", Kind.DISTINCT, W)
PROBES = LimitSpec("probes", Kind.COUNT, W, record=Record.ATTEMPTS)


def test_count_at_and_over_max(store_env) -> None:
    async def body(s) -> None:
        for i in range(3):
            (r,) = await s.acquire([Hit(COUNT, "a", 3)], T0 + i)
            assert (r.over, r.committed, r.used, r.remaining) == (False, True, i + 1, 2 - i)
        (r,) = await s.acquire([Hit(COUNT, "a", 3)], T0 + 3)
        assert (r.over, r.committed, r.used, r.remaining) == (True, False, 3, 0)
        assert r.reset > 0
        (r,) = await s.acquire([Hit(COUNT, "b", 3)], T0 + 3)  # keys are independent
        assert (r.over, r.used) == (False, 1)

    store_env.run(body)


def test_sum_at_and_over_max(store_env) -> None:
    async def body(s) -> None:
        (r,) = await s.acquire([Hit(TOKENS, "a", 1000, amount=400)], T0)
        assert (r.over, r.used) == (False, 400)
        (r,) = await s.acquire([Hit(TOKENS, "a", 1000, amount=600)], T0 + 1)
        assert (r.over, r.used, r.remaining) == (False, 1000, 0)
        (r,) = await s.acquire([Hit(TOKENS, "a", 1000, amount=1)], T0 + 2)
        assert (r.over, r.committed, r.used) == (True, False, 1000)

    store_env.run(body)


def test_distinct_at_and_over_max(store_env) -> None:
    async def body(s) -> None:
        for i, m in enumerate(["p1", "p2"]):
            (r,) = await s.acquire([Hit(PROMPTS, "a", 2, member=m)], T0 + i)
            assert (r.over, r.used) == (False, i + 1)
        (r,) = await s.acquire([Hit(PROMPTS, "a", 2, member="p1")], T0 + 2)  # a repeat adds nothing
        assert (r.over, r.committed, r.used) == (False, True, 2)
        (r,) = await s.acquire([Hit(PROMPTS, "a", 2, member="p3")], T0 + 3)
        assert (r.over, r.committed, r.used) == (True, False, 2)

    store_env.run(body)


def test_distinct_large_switches_to_estimate(store_env) -> None:
    n = 3 * SKETCH_K

    async def body(s) -> None:
        r = None
        for i in range(n):
            (r,) = await s.acquire([Hit(PROMPTS, "big", 1e9, member=f"m{i}")], T0 + i * 0.001)
        assert r is not None
        # KMV with K=1024: relative standard error ~3.1%; 4 sigma
        assert abs(r.used - n) / n < 0.125, r.used

    store_env.run(body)


def test_window_slides(store_env) -> None:
    async def body(s) -> None:
        for i in range(10):
            await s.acquire([Hit(COUNT, "a", 10)], T0 + i)
        (r,) = await s.acquire([Hit(COUNT, "a", 10)], T0 + 59)
        assert r.over and r.reset == pytest.approx(0.1 * W + 1)  # next bucket, once 1/10 of it has slid out
        # half-way into the next bucket half of the previous one still counts
        (r,) = await s.acquire([Hit(COUNT, "a", 10)], T0 + W + W / 2)
        assert (r.over, r.used) == (False, 6)
        for _ in range(4):
            (r,) = await s.acquire([Hit(COUNT, "a", 10)], T0 + W + W / 2)
        assert (r.over, r.used) == (False, 10)
        (r,) = await s.acquire([Hit(COUNT, "a", 10)], T0 + W + W / 2)
        assert r.over
        (r,) = await s.acquire([Hit(COUNT, "a", 10)], T0 + 2 * W + W / 2)  # 5 of the last bucket, half weighted
        assert (r.over, r.used) == (False, 3.5)
        (r,) = await s.acquire([Hit(COUNT, "a", 10)], T0 + 10 * W)  # long idle: empty
        assert (r.over, r.used) == (False, 1)

    store_env.run(body)


def test_reconcile_adds_refunds_once(store_env) -> None:
    async def body(s) -> None:
        await s.acquire([Hit(TOKENS, "a", 1000, amount=100)], T0, request_id="r1")
        assert await s.reconcile("r1", {"tokens": 300}, T0 + 1)
        assert not await s.reconcile("r1", {"tokens": 300}, T0 + 2)  # duplicate report counts once
        assert not await s.reconcile("nope", {"tokens": 5}, T0 + 2)
        (r,) = await s.acquire([Hit(TOKENS, "a", 1000, amount=500)], T0 + 3, request_id="r2")
        assert r.used == 800
        assert await s.reconcile("r2", {"tokens": 100}, T0 + 4)  # refund 400
        (r,) = await s.acquire([Hit(TOKENS, "a", 1000, amount=0)], T0 + 5)
        assert r.used == 400

    store_env.run(body)


def test_reconcile_goes_to_the_bucket_charged(store_env) -> None:
    async def body(s) -> None:
        await s.acquire([Hit(TOKENS, "a", 1000, amount=100)], T0 + 10, request_id="r1")
        # reported in the next bucket: the charge now sits in the previous bucket (weight 1/2)
        assert await s.reconcile("r1", {"tokens": 300}, T0 + W + W / 2)
        (r,) = await s.acquire([Hit(TOKENS, "a", 1000, amount=0)], T0 + W + W / 2)
        assert r.used == 150
        # reported after the window has passed: nothing left to adjust
        await s.acquire([Hit(TOKENS, "b", 1000, amount=100)], T0, request_id="r2")
        assert not await s.reconcile("r2", {"tokens": 900}, T0 + 5 * W)

    store_env.run(body)


def test_denied_request_does_not_consume_other_limits(store_env) -> None:
    keys = ("acct-1", "acct-2")
    if store_env.kind == "redis-cluster":  # make sure the refund crosses slots
        assert key_slot(f"pe:{{rpm|{keys[0]}}}:c".encode()) != key_slot(f"pe:{{tokens|{keys[1]}}}:c".encode())

    async def body(s) -> None:
        await s.acquire([Hit(TOKENS, keys[1], 100, amount=100)], T0)  # full
        hits = [Hit(COUNT, keys[0], 10), Hit(PROMPTS, keys[0], 10, member="x"), Hit(TOKENS, keys[1], 100, amount=1)]
        r = await s.acquire(hits, T0 + 1, request_id="q")
        assert [x.over for x in r] == [False, False, True]
        assert [x.committed for x in r] == [False, False, False]
        assert [x.used for x in r] == [0, 0, 100]
        assert not await s.reconcile("q", {"tokens": 50}, T0 + 2)  # nothing was charged
        # a request denied by a rule (admitted=False) consumes no ADMITTED budget either
        r = await s.acquire(hits[:2], T0 + 2, admitted=False)
        assert [x.committed for x in r] == [False, False]
        r = await s.acquire(hits[:2], T0 + 3)
        assert [(x.over, x.used) for x in r] == [(False, 1), (False, 1)]

    store_env.run(body)


def test_attempts_always_count(store_env) -> None:
    async def body(s) -> None:
        await s.acquire([Hit(COUNT, "full", 1)], T0)
        r = await s.acquire([Hit(PROBES, "a", 100), Hit(COUNT, "full", 1)], T0 + 1)
        assert (r[0].committed, r[0].used, r[1].over) == (True, 1, True)
        (r0,) = await s.acquire([Hit(PROBES, "a", 100)], T0 + 2, admitted=False)
        assert (r0.committed, r0.used) == (True, 2)
        (r0,) = await s.acquire([Hit(PROBES, "a", 2)], T0 + 3)  # over itself, still recorded
        assert (r0.over, r0.committed, r0.used) == (True, True, 3)

    store_env.run(body)


def test_shadow_hit_never_blocks(store_env) -> None:
    async def body(s) -> None:
        await s.acquire([Hit(COUNT, "s", 1)], T0)
        r = await s.acquire([Hit(COUNT, "s", 1, enforce=False), Hit(TOKENS, "a", 10, amount=5)], T0 + 1)
        assert (r[0].over, r[1].over, r[1].committed) == (True, False, True)

    store_env.run(body)


# --- Reads: what a measure that does not apply to a request sees ------------

MEASURED = LimitSpec("seen", Kind.COUNT, W, record=Record.ATTEMPTS)
MEASURED_READ = LimitSpec("seen", Kind.COUNT, W)  # same state, record admitted
SCORE = LimitSpec("score", Kind.SUM, W, record=Record.ATTEMPTS, reconcilable=True)
SCORE_READ = LimitSpec("score", Kind.SUM, W)
CARDS = LimitSpec("cards", Kind.DISTINCT, W, record=Record.ATTEMPTS)


def test_read_hits_report_the_current_value_and_write_nothing(store_env) -> None:
    async def body(s) -> None:
        # nothing yet: a read says 0 and creates no key
        r = await s.acquire(
            [
                Hit(MEASURED_READ, "a", 1e300, amount=0.0, enforce=False),
                Hit(SCORE_READ, "a", 1e300, amount=0.0, enforce=False),
                Hit(CARDS, "a", 1e300, member=None, enforce=False),
            ],
            T0,
            admitted=False,
            request_id="q0",
        )
        assert [(x.used, x.committed, x.over) for x in r] == [(0, False, False)] * 3
        for spec in (MEASURED, SCORE, CARDS):
            assert await s.ttl(spec, "a", T0) is None
        assert await _receipt_left(s, "q0") is None
        # charges (attempts, in a call that is not admitted: measures record whatever happens)
        for i, card in enumerate(["c1", "c2", "c1"]):
            r = await s.acquire(
                [
                    Hit(MEASURED, "a", 1e300, enforce=False),
                    Hit(SCORE, "a", 1e300, amount=2.5, enforce=False),
                    Hit(CARDS, "a", 1e300, member=card, enforce=False),
                ],
                T0 + 1 + i,
                admitted=False,
            )
            assert all(x.committed and not x.over for x in r)
        assert [x.used for x in r] == [3, 7.5, 2]
        # reads see the same values, and leave them as they are
        for t in (T0 + 5, T0 + 6):
            r = await s.acquire(
                [
                    Hit(MEASURED_READ, "a", 1e300, amount=0.0, enforce=False),
                    Hit(SCORE_READ, "a", 1e300, amount=0.0, enforce=False),
                    Hit(CARDS, "a", 1e300, member=None, enforce=False),
                ],
                t,
                admitted=False,
                request_id="q1",
            )
            assert [(x.used, x.committed) for x in r] == [(3, False), (7.5, False), (2, False)]
        assert await _receipt_left(s, "q1") is None  # a read is never reconciled
        # a distinct read never commits, even with record attempts in an admitted call
        (x,) = await s.acquire([Hit(CARDS, "a", 1e300, member=None, enforce=False)], T0 + 7)
        assert (x.used, x.committed) == (2, False)
        # a read of a key in the next bucket slides like any charge
        (x,) = await s.acquire(
            [Hit(MEASURED_READ, "a", 1e300, amount=0.0, enforce=False)], T0 + W + W / 2, admitted=False
        )
        assert (x.used, x.committed) == (1.5, False)

    store_env.run(body)


def test_ttl_is_set(store_env) -> None:
    async def body(s) -> None:
        assert await s.ttl(COUNT, "a", T0) is None
        await s.acquire([Hit(COUNT, "a", 3)], T0 + 1)
        await s.acquire([Hit(PROMPTS, "a", 3, member="x")], T0 + 1)
        for spec in (COUNT, PROMPTS):
            ttl = await s.ttl(spec, "a", T0 + 1)
            assert ttl is not None and 0 < ttl <= 2 * W + 1

    store_env.run(body)


def test_memory_store_is_bounded() -> None:
    from policy_engine.state.memory import MemoryStore

    s = MemoryStore(max_keys=100)
    for i in range(1000):
        s.acquire_sync([Hit(COUNT, f"k{i}", 5)], T0)
    assert len(s) == 100
    (r,) = s.acquire_sync([Hit(COUNT, "k999", 5)], T0)  # the newest keys survive
    assert r.used == 2
    (r,) = s.acquire_sync([Hit(COUNT, "k0", 5)], T0)  # the oldest were evicted
    assert r.used == 1
    with pytest.raises(ValueError, match="max_keys"):
        MemoryStore(max_keys=0)


# --- Receipts: only for reconcilable SUM limits, kept for receipt_ttl ---------

UNRECONCILED = LimitSpec("score", Kind.SUM, W)  # a sum without a `usage` clause
DAILY = LimitSpec("daily", Kind.SUM, 86400.0, reconcilable=True)


async def _store_with(store_env, **kw):
    """A fresh store of the env's kind with store options (receipt_ttl) set."""
    from policy_engine.state.memory import MemoryStore
    from policy_engine.state.redis import RedisStore

    if store_env.url is None:
        return MemoryStore(**kw)
    s = RedisStore.from_url(store_env.url, deadline=5.0, **kw)
    await s.flush()
    return s


async def _receipt_left(s, request_id: str) -> float | None:
    if hasattr(s, "receipt_ttl_left"):
        return await s.receipt_ttl_left(request_id)
    return s._receipts[request_id][0] if request_id in s._receipts else None  # memory: the expiry time


def test_no_receipt_for_limits_that_cannot_be_reconciled(store_env) -> None:
    async def body(s) -> None:
        r = await s.acquire([Hit(UNRECONCILED, "a", 1000, amount=10), Hit(COUNT, "a", 10)], T0, request_id="q1")
        assert all(x.committed for x in r)
        assert await _receipt_left(s, "q1") is None
        assert not await s.reconcile("q1", {"score": 500}, T0 + 1)
        (x,) = await s.acquire([Hit(UNRECONCILED, "a", 1000, amount=0)], T0 + 2)
        assert x.used == 10  # unchanged
        # a request with both kinds keeps a receipt of the reconcilable charge only
        await s.acquire(
            [Hit(UNRECONCILED, "b", 1000, amount=10), Hit(TOKENS, "b", 1000, amount=10)], T0, request_id="q2"
        )
        assert await _receipt_left(s, "q2") is not None
        assert await s.reconcile("q2", {"score": 500, "tokens": 30}, T0 + 1)
        r = await s.acquire([Hit(UNRECONCILED, "b", 1000, amount=0), Hit(TOKENS, "b", 1000, amount=0)], T0 + 2)
        assert [x.used for x in r] == [10, 30]

    store_env.run(body)


def test_receipts_expire_after_receipt_ttl(store_env) -> None:
    async def main() -> None:
        s = await _store_with(store_env, receipt_ttl=600.0)
        try:
            for rid in ("late", "in-time"):
                await s.acquire([Hit(DAILY, rid, 1e6, amount=100)], T0, request_id=rid)
            if store_env.url is not None:  # Redis expires the key itself (real time, 1 s of slack)
                left = await s.receipt_ttl_left("late")
                assert left is not None and 590 < left <= 601
            assert not await s.reconcile("late", {"daily": 900}, T0 + 600.0)  # a report later than that is ignored
            (x,) = await s.acquire([Hit(DAILY, "late", 1e6, amount=0)], T0 + 601)
            assert x.used == 100
            assert await s.reconcile("in-time", {"daily": 900}, T0 + 599.0)
            (x,) = await s.acquire([Hit(DAILY, "in-time", 1e6, amount=0)], T0 + 601)
            assert x.used == 900
            # a window shorter than half the ttl bounds the receipt instead: its bucket has slid out by then
            await s.acquire([Hit(TOKENS, "short", 1e6, amount=100)], T0, request_id="short")
            if store_env.url is not None:
                left = await s.receipt_ttl_left("short")
                assert left is not None and left <= 2 * W + 1
            assert not await s.reconcile("short", {"tokens": 1}, T0 + 2 * W)
        finally:
            await s.close()

    import asyncio

    asyncio.run(main())


def test_receipt_ttl_defaults_to_an_hour(store_env) -> None:
    async def body(s) -> None:
        assert s.receipt_ttl == 3600.0
        await s.acquire([Hit(DAILY, "a", 1e6, amount=100)], T0, request_id="d1")
        left = await _receipt_left(s, "d1")
        if store_env.url is None:
            assert left == T0 + 3600.0
        else:
            assert left is not None and 3590 < left <= 3601
        assert not await s.reconcile("d1", {"daily": 1}, T0 + 3600.0)

    store_env.run(body)


# --- Calendar windows: periods of a local calendar, reset at local midnight ----

import datetime as _dt  # noqa: E402
from zoneinfo import ZoneInfo  # noqa: E402

from policy_engine.state.base import Calendar  # noqa: E402

PARIS = ZoneInfo("Europe/Paris")
MONTHLY = LimitSpec("monthly", Kind.SUM, 2_682_000.0, reconcilable=True, calendar=Calendar("month", "Europe/Paris"))
DAILY_NY = LimitSpec("daily_ny", Kind.COUNT, 90_000.0, calendar=Calendar("day", "America/New_York"))
WEEKLY_CARDS = LimitSpec(
    "weekly_cards", Kind.DISTINCT, 608_400.0, record=Record.ATTEMPTS, calendar=Calendar("week", "Asia/Tokyo")
)


def _at(zone: ZoneInfo, *fields: int) -> float:
    return _dt.datetime(*fields, tzinfo=zone).timestamp()


def test_calendar_month_resets_at_local_midnight_of_the_first(store_env) -> None:
    jan31 = _at(PARIS, 2026, 1, 31, 23, 0)  # 22:00 UTC: still January in Paris
    feb1 = _at(PARIS, 2026, 2, 1, 0, 0)  # 23:00 UTC on Jan 31

    async def body(s) -> None:
        t = _at(PARIS, 2026, 1, 2, 9, 0)
        (r,) = await s.acquire([Hit(MONTHLY, "acct", 100, amount=60)], t, request_id="q1")
        # another 60 would not fit before February: that is the reset of an admitted request
        assert (r.over, r.used, r.remaining, r.reset) == (False, 60, 40, feb1 - t)
        # a usage report settles the real cost
        assert await s.reconcile("q1", {"monthly": 45}, t + 5)
        (r,) = await s.acquire([Hit(MONTHLY, "acct", 100, amount=60)], jan31)
        # refused: nothing slides out of a calendar month; it fits again when February starts
        assert (r.over, r.committed, r.used) == (True, False, 45)
        assert r.reset == feb1 - jan31 == 3600
        (r,) = await s.acquire([Hit(MONTHLY, "acct", 100, amount=45)], feb1 - 600, request_id="q2")
        assert (r.over, r.used) == (False, 90)
        # a report that arrives in February settles January's charge, which no longer counts
        assert await s.reconcile("q2", {"monthly": 5}, feb1 + 10)
        (r,) = await s.acquire([Hit(MONTHLY, "acct", 100, amount=0)], feb1 + 11)
        assert r.used == 0
        # from local midnight of the 1st, the whole budget is back; January counts for nothing
        (r,) = await s.acquire([Hit(MONTHLY, "acct", 100, amount=50)], feb1 + 12)
        assert (r.over, r.used, r.remaining) == (False, 50, 50)
        (r,) = await s.acquire([Hit(MONTHLY, "acct", 100, amount=60)], feb1 + 60)
        assert (r.over, r.used) == (True, 50)
        assert r.reset == _at(PARIS, 2026, 3, 1) - (feb1 + 60)  # February has 28 days
        # a replica whose clock is late (still January) stays in the stored period
        (r,) = await s.acquire([Hit(MONTHLY, "acct", 100, amount=0)], feb1 - 1)
        assert r.used == 50
        # two months later, a charge starts from zero again
        (r,) = await s.acquire([Hit(MONTHLY, "acct", 100, amount=1)], _at(PARIS, 2026, 4, 1, 0, 0, 1))
        assert r.used == 1

    store_env.run(body)


def test_calendar_reset_is_the_periods_end_and_fits_later(store_env) -> None:
    async def body(s) -> None:
        t = _at(PARIS, 2026, 5, 31, 12)
        # a request larger than the maximum never fits: its reset is still the end of the period
        (r,) = await s.acquire([Hit(MONTHLY, "big", 10, amount=11)], t)
        assert (r.over, r.committed, r.reset) == (True, False, _at(PARIS, 2026, 6, 1) - t)
        # an admitted request that leaves room for another: reset 0; one that fills the budget: the end
        (r,) = await s.acquire([Hit(MONTHLY, "fill", 10, amount=4)], t)
        assert (r.reset, r.remaining) == (0, 6)
        (r,) = await s.acquire([Hit(MONTHLY, "fill", 10, amount=6)], t)
        assert (r.over, r.remaining, r.reset) == (False, 0, _at(PARIS, 2026, 6, 1) - t)

    store_env.run(body)


def test_calendar_day_across_dst_changes(store_env) -> None:
    ny = ZoneInfo("America/New_York")
    # 2026-03-08 lasts 23 hours in New York; 2026-11-01 lasts 25
    spring, fall = _at(ny, 2026, 3, 8), _at(ny, 2026, 11, 1)
    assert _at(ny, 2026, 3, 9) - spring == 23 * 3600 and _at(ny, 2026, 11, 2) - fall == 25 * 3600

    async def body(s) -> None:
        for day, hours in ((spring, 23), (fall, 25)):
            key = f"k{hours}"
            (r,) = await s.acquire([Hit(DAILY_NY, key, 2)], day + 60)
            (r,) = await s.acquire([Hit(DAILY_NY, key, 2)], day + 120)
            (r,) = await s.acquire([Hit(DAILY_NY, key, 2)], day + 180)
            assert (r.over, r.used) == (True, 2)
            assert r.reset == hours * 3600 - 180  # to local midnight, through the clock change
            # one second before local midnight: still the same day; at midnight: a new one
            (r,) = await s.acquire([Hit(DAILY_NY, key, 2)], day + hours * 3600 - 1)
            assert (r.over, r.reset) == (True, 1)
            (r,) = await s.acquire([Hit(DAILY_NY, key, 2)], day + hours * 3600)
            assert (r.over, r.used) == (False, 1)

    store_env.run(body)


def test_calendar_week_counts_distinct_values_from_monday(store_env) -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    sunday_night = _at(tokyo, 2026, 2, 1, 23, 59)  # a Sunday
    monday = _at(tokyo, 2026, 2, 2)

    async def body(s) -> None:
        for i, card in enumerate(["c1", "c2", "c1"]):
            (r,) = await s.acquire([Hit(WEEKLY_CARDS, "acct", 2, member=card)], _at(tokyo, 2026, 1, 26, 10) + i)
        assert (r.used, r.over) == (2, False)
        (r,) = await s.acquire([Hit(WEEKLY_CARDS, "acct", 2, member="c3")], sunday_night)
        assert (r.over, r.committed, r.used) == (True, True, 3)  # attempts: recorded while over
        assert r.reset == monday - sunday_night
        (x,) = await s.acquire([Hit(WEEKLY_CARDS, "acct", 2, member=None)], monday - 1)  # a read
        assert (x.used, x.committed) == (3, False)
        # Monday 00:00 in Tokyo: the week starts empty; nothing of the last week is weighted in
        (r,) = await s.acquire([Hit(WEEKLY_CARDS, "acct", 2, member="c1")], monday)
        assert (r.over, r.used) == (False, 1)

    store_env.run(body)


def test_calendar_state_expires_when_its_period_ends(store_env) -> None:
    async def body(s) -> None:
        t = _at(PARIS, 2026, 10, 31, 23, 0)
        await s.acquire([Hit(MONTHLY, "ttl", 100, amount=5)], t)
        ttl = await s.ttl(MONTHLY, "ttl", t)
        end = _at(PARIS, 2026, 11, 1) - t  # October's last day: 25 hours in Paris
        assert ttl is not None and end - 5 <= ttl <= end + 1

    store_env.run(body)


def test_flush_deletes_everything_under_the_prefix(store_env) -> None:
    """flush empties the store (a replay's scratch prefix), in batches of keys on Redis and
    across a cluster's slots."""

    async def body(s) -> None:
        for i in range(1200):  # more than one batch of deletes
            await s.acquire([Hit(COUNT, f"k{i}", 10)], T0)
        await s.flush()
        for i in (0, 599, 1199):
            (r,) = await s.acquire([Hit(COUNT, f"k{i}", 10, amount=0)], T0, admitted=False)
            assert r.used == 0

    store_env.run(body)
