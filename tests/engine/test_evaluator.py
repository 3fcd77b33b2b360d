"""Evaluator semantics, construct by construct, through compiled policies."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from policy_engine.context import Context
from policy_engine.decision import Effect
from policy_engine.engine import Engine
from policy_engine.ingress.usage import Usage
from policy_engine.state.base import Store

T0 = 1_764_300_000.0


def req(**sections: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "request": {
            "id": "r-1",
            "ts": T0,
            "model": "frontier-large",
            "prompt": "hello",
            "max_tokens": 100,
            "prompt_tokens": 10,
        },
        "account": {
            "id": "acct-1",
            "org": "org-1",
            "age_days": 100,
            "verification": "kyc",
            "tier": "pro",
            "labels": [],
        },
        "client": {"ip": "203.0.113.9", "country": "US", "asn": 64500},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return base


def test_effect_precedence_and_reason(make_policy) -> None:
    p = make_policy(
        """
rule f {
  flag when account.tier == "pro"
  reason "flagged"
}
rule t {
  throttle when account.tier == "pro"
  reason "slow down"
  retry_after 30s
}
rule d {
  deny when account.age_days < 7
  reason "too new"
}
"""
    )
    d = p.decide(req())
    assert d.effect is Effect.THROTTLE and d.status == 429 and d.reason == "slow down"
    assert d.rules == ["f", "t"] and d.flags == ["f"]
    assert d.headers["retry-after"] == "30"
    d = p.decide(req(account={"age_days": 1}))
    assert d.effect is Effect.DENY and d.status == 403 and d.reason == "too new"
    d = p.decide(req(account={"tier": "free"}))
    assert d.effect is Effect.ALLOW and d.rules == [] and d.status == 200


def test_unless_and_shadow(make_policy) -> None:
    p = make_policy(
        """
rule region {
  deny when client.country in ["KP", "IR"]
  unless "partner" in account.labels
  reason "region"
  status 451
}
rule trial {
  deny when account.tier == "free"
  reason "would deny free"
  shadow
}
"""
    )
    assert p.decide(req(client={"country": "KP"})).status == 451
    assert p.decide(req(client={"country": "KP"}, account={"labels": ["partner"]})).effect is Effect.ALLOW
    d = p.decide(req(account={"tier": "free"}))
    assert d.effect is Effect.ALLOW and d.shadow_rules == ["trial"] and d.rules == []


def test_null_semantics(make_policy) -> None:
    p = make_policy(
        """
rule young {
  deny when account.age_days < 7
  reason "young"
}
rule unknown_age {
  flag when (account.age_days ?? -1) < 0
  reason "age unknown"
}
rule big {
  flag when request.max_tokens + 1000 > 5000
  reason "big"
}
rule no_org {
  flag when account.org == null
  reason "no org"
}
"""
    )
    d = p.decide(req(account={"age_days": None, "org": None}, request={"max_tokens": None}))
    # null < 7 is false; ?? supplies a default; null + 1000 is null, and null > 5000 is false.
    assert d.effect is Effect.FLAG and d.rules == ["unknown_age", "no_org"]


def test_verification_order_and_lists(make_policy) -> None:
    p = make_policy(
        """
rule weak {
  throttle when account.verification < "phone"
  reason "verify"
}
rule listed {
  flag when account.verification in ["email", "phone"]
  reason "middle"
}
"""
    )
    assert p.decide(req(account={"verification": "email"})).rules == ["weak", "listed"]
    assert p.decide(req(account={"verification": "phone"})).rules == ["listed"]
    assert p.decide(req(account={"verification": "kyc"})).effect is Effect.ALLOW
    assert p.decide(req(account={"verification": None})).effect is Effect.ALLOW


def test_data_lists(make_policy) -> None:
    p = make_policy(
        """
data blocked = strings("data/blocked.txt")
data hosting = ints("data/hosting_asns.txt")
data nets = cidrs("data/nets.txt")
data rpm = csv("data/tiers.csv")
data models = json("data/models.json")
rule blocked_account {
  deny when account.id in blocked
  reason "blocked"
}
rule hosting_asn {
  flag when client.asn in hosting
  reason "hosting"
}
rule bad_net {
  deny when client.ip in nets
  reason "net"
}
rule tier_known {
  flag when rpm[account.tier] ?? 0 > 100
  reason "big tier"
}
rule model_allowed {
  deny when not (request.model in models)
  reason "unknown model"
}
""",
        files={
            "data/blocked.txt": "# blocked accounts\nacct-bad\n",
            "data/hosting_asns.txt": "16509\n14061\n",
            "data/nets.txt": "198.51.100.0/24\n2001:db8::/32\n",
            "data/tiers.csv": "tier,rpm\nfree,20\npro,600\n",
            "data/models.json": '["frontier-large", "frontier-small"]',
        },
    )
    assert p.decide(req(account={"id": "acct-bad"})).reason == "blocked"
    assert p.decide(req(client={"asn": 16509})).rules == ["hosting_asn", "tier_known"]
    assert p.decide(req(client={"ip": "198.51.100.7"})).reason == "net"
    assert p.decide(req(client={"ip": "2001:db8::1"})).reason == "net"
    assert p.decide(req(account={"tier": "free"})).effect is Effect.ALLOW
    assert p.decide(req(request={"model": "other"})).reason == "unknown model"


def test_regex_strings_arithmetic_and_conditionals(make_policy) -> None:
    p = make_policy(
        r"""
let budget = {"free": 1k, "pro": 2M}
rule cot {
  flag when lower(request.prompt) matches r"step[- ]by[- ]step"
  reason "cot"
  header "x-risk" = "cot:" + account.tier
}
rule over {
  deny when request.max_tokens * 2 > (budget[account.tier] ?? 0)
  reason "over"
}
rule score {
  flag when (if contains(request.prompt, "reason") then 2 else 0) + len(request.prompt) % 5 >= 3
  reason "score"
}
"""
    )
    d = p.decide(req(request={"prompt": "Explain Step-by-Step"}))
    assert d.rules == ["cot"] and d.headers["x-risk"] == "cot:pro"
    assert p.decide(req(account={"tier": "free"}, request={"max_tokens": 600})).reason == "over"
    assert p.decide(req(request={"prompt": "reason"})).rules == ["score"]  # 2 + 6 % 5 = 3


def test_count_limit_throttles_with_headers(make_policy) -> None:
    p = make_policy(
        """
limit rpm {
  key account.id
  count
  window 1m
  max 3
  reason "too many requests"
}
"""
    )
    effects = [p.decide(req(), now=T0 + i).effect for i in range(5)]
    assert effects == [Effect.ALLOW] * 3 + [Effect.THROTTLE] * 2
    d = p.decide(req(), now=T0 + 5)
    assert d.status == 429 and d.rules == ["rpm"] and d.reason == "too many requests"
    assert d.headers["x-ratelimit-limit"] == "3" and d.headers["x-ratelimit-remaining"] == "0"
    assert int(d.headers["retry-after"]) >= 1
    # Another key is independent; the window slides.
    assert p.decide(req(account={"id": "acct-2"}), now=T0 + 5).effect is Effect.ALLOW
    assert p.decide(req(), now=T0 + 200).effect is Effect.ALLOW


def test_denied_request_does_not_consume_budgets(make_policy) -> None:
    p = make_policy(
        """
rule banned_model {
  deny when request.model == "secret"
  reason "no"
}
limit rpm {
  key account.id
  count
  window 1h
  max 2
  reason "rate"
}
limit probes {
  key account.id
  count
  window 1h
  max 100
  record attempts
  flag
  reason "probe count"
}
"""
    )
    for i in range(5):
        d = p.decide(req(request={"model": "secret", "id": f"s{i}"}), now=T0 + i)
        assert d.effect is Effect.DENY
    d = p.decide(req(), now=T0 + 10)
    state = {s.limit: s for s in d.limits}
    assert d.effect is Effect.ALLOW
    assert state["rpm"].used == 1  # denied requests did not eat the budget
    assert state["probes"].used == 6  # the attempts counter saw all of them


def test_sum_limit_reconciles_usage(make_policy) -> None:
    p = make_policy(
        """
limit tokens {
  key account.id
  sum request.prompt_tokens + request.max_tokens
  usage usage.prompt_tokens + usage.completion_tokens
  window 1d
  max 1000
  reason "token budget"
}
"""
    )
    d = p.decide(req(request={"id": "a", "prompt_tokens": 100, "max_tokens": 400}), now=T0)
    assert d.effect is Effect.ALLOW and d.limits[0].used == 500
    # The call really used 150 tokens: 350 are refunded, once.
    assert p.engine.report_sync("a", Usage(100, 50), T0 + 1) is True
    assert p.engine.report_sync("a", Usage(100, 50), T0 + 2) is False
    d = p.decide(req(request={"id": "b", "prompt_tokens": 100, "max_tokens": 700}), now=T0 + 3)
    assert d.effect is Effect.ALLOW and d.limits[0].used == 950
    d = p.decide(req(request={"id": "c", "prompt_tokens": 10, "max_tokens": 100}), now=T0 + 4)
    assert d.effect is Effect.THROTTLE and d.reason == "token budget"


def test_distinct_limit_and_guard(make_policy) -> None:
    p = make_policy(
        """
limit diversity {
  key account.id
  distinct request.model
  window 1h
  max 2
  when account.tier != "enterprise"
  deny
  reason "too many models"
}
"""
    )
    assert p.decide(req(request={"model": "a"}), now=T0).effect is Effect.ALLOW
    assert p.decide(req(request={"model": "b"}), now=T0 + 1).effect is Effect.ALLOW
    assert p.decide(req(request={"model": "a"}), now=T0 + 2).effect is Effect.ALLOW  # seen before
    d = p.decide(req(request={"model": "c"}), now=T0 + 3)
    assert d.effect is Effect.DENY and d.reason == "too many models"
    ent = req(request={"model": "z"}, account={"tier": "enterprise"})
    assert p.decide(ent, now=T0 + 4).limits == []


def test_shadow_and_flag_limits_never_refuse(make_policy) -> None:
    p = make_policy(
        """
limit shadow_rpm {
  key account.id
  count
  window 1m
  max 1
  reason "shadow"
  shadow
}
limit flag_rpm {
  key account.id
  count
  window 1m
  max 1
  flag
  reason "busy"
}
"""
    )
    p.decide(req(), now=T0)
    d = p.decide(req(), now=T0 + 1)
    assert d.effect is Effect.FLAG and d.shadow_rules == ["shadow_rpm"] and d.flags == ["flag_rpm"]
    assert d.headers["x-policy-flags"] == "flag_rpm"


class _BrokenStore(Store):
    backend = "broken"

    async def acquire(self, hits, now, *, admitted=True, request_id=None):  # type: ignore[no-untyped-def]
        raise ConnectionError("store down")

    async def reconcile(self, request_id, actual, now):  # type: ignore[no-untyped-def]
        raise ConnectionError("store down")

    async def close(self) -> None:
        return None


class _SlowStore(_BrokenStore):
    async def acquire(self, hits, now, *, admitted=True, request_id=None):  # type: ignore[no-untyped-def]
        await asyncio.sleep(5)


@pytest.mark.parametrize("store", [_BrokenStore(), _SlowStore()], ids=["error", "timeout"])
def test_fail_open_and_closed(make_policy, store) -> None:
    p = make_policy(
        """
limit open_limit {
  key account.id
  count
  window 1m
  max 10
  reason "open"
}
limit closed_limit {
  key account.id
  count
  window 1m
  max 10
  on_error closed
  deny
  reason "closed"
}
"""
    )
    engine = Engine(p.policy, store, store_deadline=0.05)
    d = asyncio.run(engine.decide(Context.from_dict(req()), T0))
    assert d.effect is Effect.DENY and d.reason.startswith("closed")
    assert all(s.error for s in d.limits)
    assert [s.over for s in d.limits] == [False, True]


def test_explain_trace(make_policy) -> None:
    p = make_policy(
        """
rule young {
  deny when account.age_days < 7
  unless "partner" in account.labels
  reason "young"
}
limit rpm {
  key account.id
  count
  window 1m
  max 5
  reason "rate"
}
"""
    )
    d = p.decide(req(account={"age_days": 1, "labels": ["partner"]}), explain=True)
    assert d.trace is not None
    rule, limit = d.trace
    assert rule == {
        "rule": "young",
        "effect": "deny",
        "at": rule["at"],
        "condition": True,
        "exempted": True,
        "matched": False,
    }
    assert rule["at"].endswith("main.policy:2")
    assert limit["limit"] == "rpm" and limit["applied"] and limit["used"] == 1 and limit["remaining"] == 4


def test_a_key_with_a_default_compiles_and_explains(make_policy) -> None:  # type: ignore[no-untyped-def]
    # `??` compiles to an assignment expression; the explanation of why a limit did not
    # apply must not put one inside a comprehension (a SyntaxError when the policy loads).
    p = make_policy(
        """
limit per_minute {
  key account.id ?? "anonymous", (account.org ?? "none")
  count
  window 1m
  max 2
  when (account.tier ?? "free") == "free"
  reason "two a minute"
}
"""
    )
    d = p.decide(req(account={"tier": "pro"}), explain=True)
    assert d.trace is not None
    (limit,) = d.trace
    assert limit["limit"] == "per_minute" and not limit["applied"]
    d = p.decide(req(account={"id": None, "org": None, "tier": None}), explain=True)
    assert d.trace is not None and d.trace[0]["applied"]
    assert d.limits[0].key == "anonymous|none"


def test_generated_code_is_inspectable_and_deterministic(make_policy) -> None:
    p = make_policy(
        """
let fresh = account.age_days < 7
let threshold = 2 * 1k
rule a {
  deny when fresh and request.max_tokens > threshold
  reason "a"
}
"""
    )
    assert "def evaluate(c):" in p.policy.source
    assert "2000" in "".join(str(v) for v in p.policy.compiled.source.split()) or "_L_threshold" in p.policy.source
    results = {p.decide(req(account={"age_days": 1}, request={"max_tokens": 3000})).effect for _ in range(3)}
    assert results == {Effect.DENY}


def test_block_key_refuses_every_value_once_over(make_policy) -> None:
    p = make_policy(
        """
limit accounts_per_card {
  key account.payment_fingerprint
  distinct account.id
  window 1d
  max 2
  record attempts
  block key
  deny
  reason "shared card"
}
"""
    )
    card = {"payment_fingerprint": "pf-1"}
    assert p.decide(req(account={**card, "id": "a"}), now=T0).effect is Effect.ALLOW
    assert p.decide(req(account={**card, "id": "b"}), now=T0 + 1).effect is Effect.ALLOW
    assert p.decide(req(account={**card, "id": "a"}), now=T0 + 2).effect is Effect.ALLOW
    assert p.decide(req(account={**card, "id": "c"}), now=T0 + 3).effect is Effect.DENY
    # The card is now over its maximum: the accounts admitted before are refused too.
    assert p.decide(req(account={**card, "id": "a"}), now=T0 + 4).effect is Effect.DENY
    assert p.decide(req(account={"payment_fingerprint": "pf-2", "id": "a"}), now=T0 + 5).effect is Effect.ALLOW


def test_a_let_that_calls_a_function_runs_once_per_request(make_policy, monkeypatch) -> None:
    from policy_engine import builtins as B

    calls = []
    real = B.BUILTINS["lower"]
    monkeypatch.setitem(B.BUILTINS, "lower", lambda s: calls.append(s) or real(s))
    p = make_policy(
        """
let text = lower(request.prompt)
rule a {
  flag when contains(text, "alpha")
  reason "a"
}
rule b {
  flag when contains(text, "beta")
  reason "b"
}
"""
    )
    assert p.decide(req(request={"prompt": "ALPHA and BETA"})).rules == ["a", "b"]
    assert len(calls) == 1
