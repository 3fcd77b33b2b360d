"""Measures: always-recorded counters that rules, limits and other measures read
as `measures.NAME`, evaluated level by level (docs/language.md, "Measures")."""

from __future__ import annotations

import asyncio
from typing import Any
from collections.abc import Sequence

import pytest

from policy_engine.context import Context
from policy_engine.decision import Effect
from policy_engine.engine import Engine
from policy_engine.ingress.usage import Usage
from policy_engine.state.base import Hit, HitResult, Store
from policy_engine.state.memory import MemoryStore

T0 = 1_764_300_000.0

CARDS = """
measure card_accounts {
  key account.payment_fingerprint
  distinct account.id
  window 1d
  when account.payment_fingerprint != null
}
"""


def req(
    acct: str = "a1",
    card: str | None = "pf-1",
    age: float = 100,
    prompt: str = "hello",
    rid: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    r: dict[str, Any] = {
        "request": {"id": rid or f"r-{acct}", "ts": T0, "prompt": prompt, "max_tokens": 100},
        "account": {"id": acct, "age_days": age, "payment_fingerprint": card},
    }
    for section, values in extra.items():
        r.setdefault(section, {}).update(values)
    return r


def values(d) -> dict[str, float | None]:  # type: ignore[no-untyped-def]
    return {m.measure: m.value for m in d.measures}


class CountingStore(MemoryStore):
    """The memory store, counting its calls and what each carried."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[list[str], bool]] = []

    def acquire_sync(
        self, hits: Sequence[Hit], now: float, *, admitted: bool = True, request_id: str | None = None
    ) -> list[HitResult]:
        self.calls.append(([h.spec.id for h in hits], admitted))
        return super().acquire_sync(hits, now, admitted=admitted, request_id=request_id)


def test_a_rule_reads_a_measure_including_this_request(make_policy) -> None:
    p = make_policy(
        CARDS
        + """
rule shared_card {
  deny when measures.card_accounts > 3
  reason "card shared by many accounts"
}
"""
    )
    for i in range(1, 4):
        d = p.decide(req(f"a{i}"), now=T0 + i)
        assert d.effect is Effect.ALLOW and values(d) == {"card_accounts": i}
        assert d.measures[0].key == "pf-1" and d.measures[0].charged
    d = p.decide(req("a4"), now=T0 + 4)  # the fourth account on the card: 4 > 3, counted before the rule runs
    assert d.effect is Effect.DENY and values(d) == {"card_accounts": 4}
    # denied requests are recorded too (a measure is evidence, not a budget)
    d = p.decide(req("a5"), now=T0 + 5)
    assert values(d) == {"card_accounts": 5}
    d = p.decide(req("a1"), now=T0 + 6)  # an account already counted adds nothing
    assert values(d) == {"card_accounts": 5} and d.effect is Effect.DENY


def test_when_false_reads_without_charging(make_policy) -> None:
    p = make_policy("""
measure young_requests {
  key account.payment_fingerprint
  count
  window 1h
  when account.age_days < 30
}
rule r {
  flag when measures.young_requests >= 2
  reason "busy young accounts on this card"
}
""")
    assert values(p.decide(req("a", age=1), now=T0)) == {"young_requests": 1}
    d = p.decide(req("b", age=400), now=T0 + 1)  # an old account on the same card: read, not counted
    assert values(d) == {"young_requests": 1} and not d.measures[0].charged and d.effect is Effect.ALLOW
    d = p.decide(req("c", age=2), now=T0 + 2)
    assert values(d) == {"young_requests": 2} and d.measures[0].charged and d.effect is Effect.FLAG
    d = p.decide(req("d", age=500), now=T0 + 3)
    assert values(d) == {"young_requests": 2} and d.effect is Effect.FLAG  # old accounts see the card's count
    # a read of a key never charged creates nothing and reads 0
    d = p.decide(req("e", card="pf-new", age=500), now=T0 + 4)
    assert values(d) == {"young_requests": 0} and not d.measures[0].charged
    assert (
        p.engine.store.acquire_sync(
            [Hit(p.policy.compiled.measures[0].spec, "pf-new", 1e300, 0.0)], T0 + 5, admitted=False
        )[0].used
        == 0
    )


def test_unless_and_null_member_read(make_policy) -> None:
    p = make_policy("""
measure orgs_per_card {
  key account.payment_fingerprint
  distinct account.org
  window 1d
  unless "partner" in account.labels
}
""")
    d = p.decide(req("a", account={"org": "o1", "labels": []}), now=T0)
    assert values(d) == {"orgs_per_card": 1} and d.measures[0].charged
    d = p.decide(req("b", account={"org": "o2", "labels": ["partner"]}), now=T0 + 1)
    assert values(d) == {"orgs_per_card": 1} and not d.measures[0].charged
    d = p.decide(req("c", account={"org": None, "labels": []}), now=T0 + 2)  # no value to count: a read
    assert values(d) == {"orgs_per_card": 1} and not d.measures[0].charged
    d = p.decide(req("c", account={"org": "o3", "labels": []}), now=T0 + 3)
    assert values(d) == {"orgs_per_card": 2}


def test_null_key_reads_as_null(make_policy) -> None:
    p = make_policy(
        CARDS
        + """
rule many {
  deny when measures.card_accounts > 0
  reason "never without a card"
}
rule none {
  flag when (measures.card_accounts ?? 0) == 0
  reason "no card"
}
"""
    )
    d = p.decide(req("a", card=None), now=T0, explain=True)
    assert d.measures == [] and d.effect is Effect.FLAG and d.rules == ["none"]
    assert d.trace is not None and d.trace[0]["measure"] == "card_accounts"
    assert d.trace[0]["status"] == "skipped" and d.trace[0]["why"] == "the key is null" and d.trace[0]["value"] is None
    assert "measures" not in d.to_dict()


def test_levels_a_measure_reads_a_measure(make_policy) -> None:
    store = CountingStore()
    p = make_policy(
        CARDS
        + """
measure suspicion {
  key account.id
  sum (if contains(request.prompt, "step by step") then 3 else 0) + (if measures.card_accounts > 2 then 2 else 0)
  window 6h
}
measure escalations {
  key account.id
  count
  window 1d
  when measures.suspicion >= 5
}
rule escalate {
  throttle when measures.escalations >= 2
  reason "suspicious"
}
limit rpm {
  key account.id
  count
  window 1m
  max 100
  reason "rate"
}
"""
    )
    engine = Engine(p.policy, store)
    levels = {m.id: m.level for m in p.policy.compiled.measures}
    assert levels == {"card_accounts": 0, "suspicion": 1, "escalations": 2}

    def decide(account: str, prompt: str, now: float):  # type: ignore[no-untyped-def]
        return engine.decide_sync(Context.from_dict(req(account, prompt=prompt)), now)

    decide("x1", "hi", T0)
    decide("x2", "hi", T0 + 1)
    store.calls.clear()
    d = decide("a", "hi", T0 + 2)  # third account on the card: +2, no probe
    assert values(d) == {"card_accounts": 3, "suspicion": 2, "escalations": 0}
    # one store call per level (measures record attempts: admitted=False), then the limits' call
    assert store.calls == [
        (["card_accounts"], False),
        (["suspicion"], False),
        (["escalations"], False),
        (["rpm"], True),
    ]
    d = decide("a", "explain step by step", T0 + 3)
    assert values(d) == {"card_accounts": 3, "suspicion": 7, "escalations": 1} and d.effect is Effect.ALLOW
    d = decide("a", "hi", T0 + 4)
    assert values(d) == {"card_accounts": 3, "suspicion": 9, "escalations": 2} and d.effect is Effect.THROTTLE
    assert [m.charged for m in d.measures] == [True, True, True]


def test_a_rule_fires_only_when_two_measures_agree(make_policy) -> None:
    p = make_policy(
        CARDS
        + """
measure template_accounts {
  key template_id(request.prompt)
  distinct account.id
  window 1h
  when account.age_days < 7
}
rule campaign {
  deny when measures.card_accounts > 2 and measures.template_accounts > 2
  reason "shared card and fanned-out template"
}
"""
    )
    prompt = "Translate the following sentence into French: the cat sleeps."
    # three fresh accounts, each with its own card: the template fans out, no card is shared
    for i in range(3):
        d = p.decide(req(f"f{i}", card=f"own-{i}", age=1, prompt=prompt), now=T0 + i)
    assert values(d) == {"card_accounts": 1, "template_accounts": 3} and d.effect is Effect.ALLOW
    # three old accounts on one card with unrelated prompts: the card is shared, no template fans out
    for i in range(3):
        d = p.decide(
            req(f"o{i}", card="pf-shared", age=400, prompt=f"question number {i} about {i * 7} apples"), now=T0 + 10 + i
        )
    assert values(d)["card_accounts"] == 3 and d.effect is Effect.ALLOW
    # a fresh account on the shared card sending the template: both agree
    d = p.decide(req("n", card="pf-shared", age=1, prompt=prompt), now=T0 + 20)
    assert values(d) == {"card_accounts": 4, "template_accounts": 4} and d.effect is Effect.DENY


def test_limits_read_measures_in_when_max_and_key(make_policy) -> None:
    p = make_policy(
        CARDS
        + """
limit per_card_rate {
  key account.payment_fingerprint, measures.card_accounts
  count
  window 1m
  max if measures.card_accounts > 1 then 1 else 100
  when measures.card_accounts != null
  deny
  reason "shared cards get one request a minute"
  header "x-card-accounts" = measures.card_accounts
}
"""
    )
    d = p.decide(req("a"), now=T0)
    assert d.effect is Effect.ALLOW and d.limits[0].key == "pf-1|1" and d.limits[0].max == 100
    d = p.decide(req("b"), now=T0 + 1)
    assert d.effect is Effect.ALLOW and d.limits[0].key == "pf-1|2" and d.limits[0].max == 1
    d = p.decide(req("b"), now=T0 + 2)
    assert d.effect is Effect.DENY and d.headers["x-card-accounts"] == "2"
    assert p.decide(req("c", card=None), now=T0 + 3).limits == []  # when: null != null is false


def test_a_measure_nobody_reads_is_recorded(make_policy) -> None:
    p = make_policy("""
measure prompts_seen {
  key account.id
  count
  window 1d
}
rule embargo {
  deny when client.country == "KP"
  reason "region"
}
""")
    d = p.decide(req("a", client={"country": "KP"}), now=T0)
    assert d.effect is Effect.DENY and values(d) == {"prompts_seen": 1}
    assert values(p.decide(req("a"), now=T0 + 1)) == {"prompts_seen": 2}
    assert d.to_dict()["measures"] == [{"measure": "prompts_seen", "key": "a", "value": 1, "charged": True}]


USAGE_POLICY = """
measure harvested_tokens {
  key account.id
  sum request.max_tokens ?? 1024
  usage usage.completion_tokens ?? 0
  window 1d
}
limit daily_tokens {
  key account.id
  sum request.max_tokens ?? 1024
  usage usage.completion_tokens ?? 0
  window 1d
  max 1M
  reason "budget"
}
rule heavy {
  flag when measures.harvested_tokens > 1000
  reason "harvests many tokens"
}
"""


def test_usage_reconciles_a_sum_measure(make_policy) -> None:
    p = make_policy(USAGE_POLICY)
    d = p.decide(req("a", rid="q1", request={"max_tokens": 800}), now=T0)
    assert values(d) == {"harvested_tokens": 800} and d.effect is Effect.ALLOW
    # the call really produced 50 tokens: the measure and the limit both take back 750
    assert p.engine.report_sync("q1", Usage(None, 50), T0 + 1)
    assert not p.engine.report_sync("q1", Usage(None, 50), T0 + 2)  # once per request id
    d = p.decide(req("a", rid="q2", request={"max_tokens": 600}), now=T0 + 3)
    assert values(d) == {"harvested_tokens": 650} and d.limits[0].used == 650 and d.effect is Effect.ALLOW
    assert asyncio.run(p.engine.report("q2", Usage(None, 2000), T0 + 4))  # the async path reconciles alike
    d = p.decide(req("a", rid="q3", request={"max_tokens": 10}), now=T0 + 5)
    assert values(d) == {"harvested_tokens": 2060} and d.limits[0].used == 2060 and d.effect is Effect.FLAG


def test_a_report_settles_every_receipt_in_two_round_trips_on_redis(make_policy, redis_store_env) -> None:
    """The limit's receipt and the measure level's are read together and adjusted
    together: the same values as on memory, in two pipelines whatever their number."""
    from policy_engine.state.factory import StoreOptions, open_store

    policy = make_policy(USAGE_POLICY).policy

    async def run() -> None:
        store = open_store(redis_store_env.url, StoreOptions())
        try:
            await store.flush()
            engine = Engine(policy, store)
            await engine.decide(Context.from_dict(req("a", rid="q1", request={"max_tokens": 800})), T0)
            before = store.pipelines[0]
            assert await engine.report("q1", Usage(None, 50), T0 + 1)
            if redis_store_env.kind == "redis":  # a cluster pipeline is one per node
                assert store.pipelines[0] - before == 2
            assert not await engine.report("q1", Usage(None, 50), T0 + 2)  # once per request id
            d = await engine.decide(Context.from_dict(req("a", rid="q2", request={"max_tokens": 600})), T0 + 3)
            assert values(d) == {"harvested_tokens": 650} and d.limits[0].used == 650
        finally:
            await store.close()

    asyncio.run(run())


def test_usage_reconciles_a_measure_without_any_limit_usage(make_policy) -> None:
    p = make_policy("""
measure harvested_tokens {
  key account.id
  sum request.max_tokens ?? 1024
  usage usage.completion_tokens ?? 0
  window 1d
}
""")
    p.decide(req("a", rid="q1", request={"max_tokens": 800}), now=T0)
    assert p.engine.report_sync("q1", Usage(None, 50), T0 + 1)
    assert values(p.decide(req("a", rid="q2", request={"max_tokens": 0}), now=T0 + 2)) == {"harvested_tokens": 50}


class FailingStore(MemoryStore):
    """Fails every call that carries a hit of `fail_on`."""

    def __init__(self, fail_on: str) -> None:
        super().__init__()
        self.fail_on = fail_on

    def acquire_sync(
        self, hits: Sequence[Hit], now: float, *, admitted: bool = True, request_id: str | None = None
    ) -> list[HitResult]:
        if any(h.spec.id == self.fail_on for h in hits):
            raise ConnectionError("store unreachable")
        return super().acquire_sync(hits, now, admitted=admitted, request_id=request_id)


class AsyncFailingStore(Store):
    """A store with only the async API (as Redis), failing measure calls."""

    backend = "async-failing"

    def __init__(self, fail_on: str) -> None:
        self.inner = MemoryStore()
        self.fail_on = fail_on

    async def acquire(
        self, hits: Sequence[Hit], now: float, *, admitted: bool = True, request_id: str | None = None
    ) -> list[HitResult]:
        if any(h.spec.id == self.fail_on for h in hits):
            raise ConnectionError("store unreachable")
        return self.inner.acquire_sync(hits, now, admitted=admitted, request_id=request_id)

    async def reconcile(self, request_id: str, actual: dict[str, float], now: float) -> bool:
        return self.inner.reconcile_sync(request_id, actual, now)

    async def close(self) -> None:
        pass


FAIL_POLICY = (
    CARDS
    + """
rule shared {
  deny when measures.card_accounts > 0
  reason "shared"
}
rule unknown {
  flag when measures.card_accounts == null
  reason "card count unknown"
}
limit rpm {
  key account.id
  count
  window 1m
  max 10
  reason "rate"
}
"""
)


def test_store_failure_makes_the_value_null_sync(make_policy) -> None:
    p = make_policy(FAIL_POLICY)
    engine = Engine(p.policy, FailingStore("card_accounts"))
    d = engine.decide_sync(Context.from_dict(req("a")), T0, explain=True)
    assert d.effect is Effect.FLAG and d.rules == ["unknown"]
    (m,) = d.measures
    assert m.value is None and not m.charged and "ConnectionError: store unreachable" in (m.error or "")
    assert d.limits[0].used == 1 and d.limits[0].error is None  # the limits' call is unaffected
    assert d.to_dict()["measures"][0]["error"].startswith("ConnectionError")
    assert d.trace is not None and d.trace[0]["status"] == "error" and d.trace[0]["value"] is None
    assert d.trace[0]["error"].startswith("ConnectionError") and "why" not in d.trace[0]  # it applied


def test_store_failure_makes_the_value_null_async(make_policy) -> None:
    p = make_policy(FAIL_POLICY)
    engine = Engine(p.policy, AsyncFailingStore("card_accounts"))  # type: ignore[arg-type]
    d = asyncio.run(engine.decide(Context.from_dict(req("a")), T0))
    assert d.effect is Effect.FLAG and values(d) == {"card_accounts": None}
    assert d.measures[0].error is not None and d.limits[0].used == 1


def test_async_and_sync_paths_agree(make_policy) -> None:
    p = make_policy(
        CARDS
        + USAGE_POLICY.replace("harvested_tokens > 1000", "harvested_tokens > 1000 and measures.card_accounts > 1")
    )
    sync_engine = Engine(p.policy, MemoryStore())
    async_engine = Engine(p.policy, AsyncFailingStore("nothing"))  # type: ignore[arg-type]
    for i in range(12):
        r = req(f"a{i % 3}", card=f"pf-{i % 2}", rid=f"q{i}", request={"max_tokens": 300 * i})
        want = sync_engine.decide_sync(Context.from_dict(r), T0 + i, explain=True)
        got = asyncio.run(async_engine.decide(Context.from_dict(r), T0 + i, explain=True))
        assert got.to_dict() == want.to_dict()


def test_explain_says_why_a_measure_was_only_read(make_policy) -> None:
    p = make_policy("""
measure young {
  key account.id
  count
  window 1h
  when account.age_days < 30
}
measure not_partner {
  key account.id
  count
  window 1h
  unless "partner" in account.labels
}
""")
    d = p.decide(req("a", age=100, account={"labels": ["partner"]}), now=T0, explain=True)
    assert d.trace is not None
    young, partner = d.trace
    assert young == {
        "measure": "young",
        "kind": "count",
        "window_seconds": 3600.0,
        "level": 0,
        "at": young["at"],
        "status": "read",
        "why": "`when` is false",
        "key": "a",
        "value": 0,
        "charged": False,
    }
    assert partner["status"] == "read" and partner["why"] == "`unless` holds"
    d = p.decide(req("a", age=1, account={"labels": []}), now=T0 + 1, explain=True)
    assert d.trace is not None and [t["status"] for t in d.trace] == ["applied", "applied"]
    assert "why" not in d.trace[0]


def test_a_policy_without_measures_makes_one_store_call(make_policy) -> None:
    p = make_policy("""
limit rpm {
  key account.id
  count
  window 1m
  max 10
  reason "rate"
}
""")
    store = CountingStore()
    engine = Engine(p.policy, store)
    d = engine.decide_sync(Context.from_dict(req("a")), T0)
    assert store.calls == [(["rpm"], True)] and d.measures == () and p.policy.compiled.measure_levels == []


@pytest.mark.parametrize("explain", [False, True])
def test_measures_with_an_unrelated_policy_reload(make_policy, explain: bool) -> None:
    # the values are in the request's own context: a second engine on another policy is unaffected
    a = make_policy(CARDS)
    b = make_policy('rule r {\n  flag when account.age_days < 1\n  reason "r"\n}\n')
    engine = Engine(a.policy, MemoryStore())
    assert values(engine.decide_sync(Context.from_dict(req("a")), T0, explain=explain)) == {"card_accounts": 1}
    engine.swap(b.policy)
    assert engine.decide_sync(Context.from_dict(req("a")), T0 + 1, explain=explain).measures == ()
