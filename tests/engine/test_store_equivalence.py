"""Memory and Redis give identical answers to the same generated traffic."""

from __future__ import annotations

import random

from policy_engine.state.base import Calendar, Hit, Kind, LimitSpec, Record
from policy_engine.state.memory import MemoryStore

SPECS = [
    LimitSpec("c1", Kind.COUNT, 1.0),
    LimitSpec("c60", Kind.COUNT, 60.0),
    LimitSpec("s10", Kind.SUM, 10.0, reconcilable=True),
    LimitSpec("s3600", Kind.SUM, 3600.0, record=Record.ATTEMPTS, reconcilable=True),
    LimitSpec("d60", Kind.DISTINCT, 60.0),
    LimitSpec("d7", Kind.DISTINCT, 7.5, record=Record.ATTEMPTS),
    # calendar days that start 40 minutes into the traffic (local midnight at 04:00 UTC)
    LimitSpec("sday", Kind.SUM, 90_000.0, reconcilable=True, calendar=Calendar("day", "Etc/GMT+4")),
    LimitSpec("dday", Kind.DISTINCT, 90_000.0, record=Record.ATTEMPTS, calendar=Calendar("day", "Etc/GMT+4")),
]
MAXIMA = {"c1": 3, "c60": 25, "s10": 900, "s3600": 20000, "d60": 6, "d7": 4, "sday": 30000, "dday": 8}


def _traffic(seed: int, n: int):
    rnd = random.Random(seed)
    now = 1_764_300_000.0
    for i in range(n):
        now += rnd.choice([0.0, 0.01, 0.2, 0.7, 3.0, 11.0])
        hits = []
        for spec in rnd.sample(SPECS, rnd.randint(1, 3)):
            key = f"k{rnd.randint(0, 4)}"
            amount = float(rnd.randint(1, 300)) if spec.kind is Kind.SUM else 1.0
            # one distinct hit in ten is a read (no member), as measures send
            member = f"m{rnd.randint(0, 9)}" if spec.kind is Kind.DISTINCT and rnd.random() < 0.9 else None
            maximum = MAXIMA[spec.id] * rnd.choice([1, 1, 1, 2])
            hits.append(Hit(spec, key, maximum, amount=amount, member=member, enforce=rnd.random() < 0.9))
        report = {s: float(rnd.randint(0, 400)) for s in ("s10", "s3600", "sday")} if rnd.random() < 0.3 else None
        yield now, hits, rnd.random() < 0.95, f"req-{i}", report


def test_memory_and_redis_agree(redis_store_env) -> None:
    async def body(store) -> None:
        mem = MemoryStore()
        for step, (now, hits, admitted, rid, report) in enumerate(_traffic(7, 2500)):
            want = mem.acquire_sync(hits, now, admitted=admitted, request_id=rid)
            got = await store.acquire(hits, now, admitted=admitted, request_id=rid)
            assert got == want, f"step {step} at {now}: {hits}"
            if report is not None:
                assert await store.reconcile(rid, report, now + 0.5) == mem.reconcile_sync(rid, report, now + 0.5)

    redis_store_env.run(body)
