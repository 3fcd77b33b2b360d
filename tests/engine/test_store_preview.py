"""The operator calls of every store (memory, Redis, Redis Cluster): `preview` answers
exactly what `acquire` then answers and writes nothing; `reset` forgets one key."""

from __future__ import annotations

import random

from policy_engine.state.base import Calendar, Hit, HitResult, Kind, LimitSpec, Record

W = 60.0
T0 = 6000.0
SPECS = [
    LimitSpec("rpm", Kind.COUNT, W),
    LimitSpec("tokens", Kind.SUM, W, reconcilable=True),
    LimitSpec("prompts", Kind.DISTINCT, W),
    LimitSpec("probes", Kind.COUNT, W, record=Record.ATTEMPTS),
    LimitSpec("seen", Kind.DISTINCT, W, record=Record.ATTEMPTS),
    # calendar windows: the period's end is the reset
    LimitSpec("daily", Kind.COUNT, 90_000.0, calendar=Calendar("day", "America/New_York")),
    LimitSpec(
        "weekly_cards", Kind.DISTINCT, 608_400.0, record=Record.ATTEMPTS, calendar=Calendar("week", "Asia/Tokyo")
    ),
]


def _row(r: HitResult) -> tuple[float, float, float, bool, bool]:
    return (r.used, r.remaining, round(r.reset, 9), r.over, r.committed)


def _hits(rng: random.Random) -> list[Hit]:
    out = []
    for spec in rng.sample(SPECS, rng.randint(1, len(SPECS))):
        key = rng.choice(["a", "b"])
        if spec.kind is Kind.DISTINCT:
            member = rng.choice([None, *[f"m{i}" for i in range(6)]])
            out.append(Hit(spec, key, rng.choice([2, 4]), member=member, enforce=rng.random() < 0.8))
        else:
            amount = rng.choice([1, 1, 3]) if spec.kind is Kind.COUNT else rng.choice([0, 50, 400])
            out.append(Hit(spec, key, rng.choice([3, 5, 900]), amount=amount, enforce=rng.random() < 0.8))
    return out


def test_preview_is_acquire_without_the_write(store_env) -> None:
    async def body(s) -> None:
        rng = random.Random(7)
        now = T0
        for step in range(150):
            now += rng.choice([0.5, 3.0, 17.0, 45.0, 20_000.0])  # the last crosses calendar days now and then
            hits = _hits(rng)
            admitted = rng.random() < 0.85
            first = await s.preview(hits, now, admitted=admitted)
            again = await s.preview(hits, now, admitted=admitted)  # the first wrote nothing
            real = await s.acquire(hits, now, admitted=admitted)
            assert [_row(r) for r in first] == [_row(r) for r in again] == [_row(r) for r in real], step

    store_env.run(body)


def test_reset_forgets_one_key(store_env) -> None:
    count, distinct = SPECS[0], SPECS[2]

    async def body(s) -> None:
        for i in range(3):
            await s.acquire([Hit(count, "a", 10), Hit(count, "b", 10), Hit(distinct, "a", 10, member=f"m{i}")], T0 + i)
        assert await s.reset(count, "a") is True
        assert await s.reset(count, "a") is False  # nothing left to forget
        assert await s.reset(distinct, "a") is True
        (ra, rb, rd) = await s.preview(
            [Hit(count, "a", 10), Hit(count, "b", 10), Hit(distinct, "a", 10)], T0 + 5, admitted=False
        )
        assert (ra.used, rb.used, rd.used) == (0, 3, 0)  # only the keys reset start afresh

    store_env.run(body)
