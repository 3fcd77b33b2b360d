"""Memory store specifics: footprint per tracked key and the distinct sketch."""

from __future__ import annotations

import tracemalloc

from policy_engine.state.base import SKETCH_K, Hit, Kind, LimitSpec
from policy_engine.state.memory import MemoryStore

GIB = 1024**3
SPECS = [
    LimitSpec("requests_per_minute", Kind.COUNT, 60.0),
    LimitSpec("tokens_per_day", Kind.SUM, 86400.0),
    LimitSpec("requests_per_hour", Kind.COUNT, 3600.0),
]


def test_a_million_accounts_with_three_limits_fit_in_a_gib() -> None:
    n = 100_000
    store = MemoryStore()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            key = f"acct-{i:07d}"
            store.acquire_sync(
                [Hit(SPECS[0], key, 100), Hit(SPECS[1], key, 1e6, amount=1234.0), Hit(SPECS[2], key, 1000)],
                1_764_300_000.0 + i * 0.001,
            )
        per_key = (tracemalloc.get_traced_memory()[0] - before) / (3 * n)
    finally:
        tracemalloc.stop()
    assert len(store) == 3 * n
    # extrapolated: 1M accounts x 3 limits
    assert per_key * 3_000_000 < GIB, f"{per_key:.0f} bytes per key"


def test_distinct_is_exact_up_to_k_then_estimates() -> None:
    spec = LimitSpec("templates", Kind.DISTINCT, 3600.0)
    store = MemoryStore()
    r = None
    for i in range(SKETCH_K):
        (r,) = store.acquire_sync([Hit(spec, "asn", 1e9, member=f"t{i}")], 1000.0)
    assert r is not None and r.used == SKETCH_K
    for n in (10 * SKETCH_K, 50 * SKETCH_K):
        for i in range(SKETCH_K, n):
            (r,) = store.acquire_sync([Hit(spec, "asn", 1e9, member=f"t{i}")], 1000.0)
        assert abs(r.used - n) / n < 0.125, (n, r.used)  # 4 sigma of KMV's 1/sqrt(K-2)
        est = r.used
        (r,) = store.acquire_sync([Hit(spec, "asn", 1e9, member="t5")], 1000.0)  # a repeat
        assert r.used == est
