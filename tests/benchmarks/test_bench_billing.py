"""Billing benchmarks: what prices and a money budget add to a decision and to a
usage report, on the memory store.

Run: .venv/bin/python -m pytest tests/benchmarks/test_bench_billing.py --benchmark-enable --benchmark-columns=min,median,ops
"""

from __future__ import annotations

from pathlib import Path

import pytest

from policy_engine.context import Context
from policy_engine.engine import Engine
from policy_engine.ingress.usage import Usage
from policy_engine.policyset import PolicySet, load_policy_set
from policy_engine.state.memory import MemoryStore

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "billing"
T0 = 1_770_109_200.0  # 2026-02-03 10:00 Paris, a Tuesday: office hours
REQUEST = {
    "request": {"id": "r", "ts": T0, "model": "frontier-large-2026-06", "max_tokens": 1000, "prompt_tokens": 400},
    "account": {"id": "acct-42", "tier": "pro", "age_days": 400, "verification": "kyc"},
}
USAGE = Usage(400, 300, 200, 100, "frontier-large-2026-06")

# The same shape in tokens: a let-built cost, a keyed monthly sum with usage, a measure, two rules.
TOKENS = """
let reserved = (request.prompt_tokens ?? 0) + (request.max_tokens ?? 4096)
let settled = (usage.prompt_tokens ?? 0) + (usage.completion_tokens ?? 0)
let family = request.model
let hour = local_hour(request.ts, "Europe/Paris")

rule model_required {
  deny when request.model == null
  reason "name the model"
}

rule night {
  throttle when account.tier == "free" and hour >= 9 and hour < 18
  reason "office hours"
}

limit family_budget {
  key account.id, family
  sum reserved
  usage settled
  window calendar month in "Europe/Paris"
  max if account.tier == "pro" then 100M else 2M
  throttle
  reason "budget"
}

measure month_spend {
  key account.id
  sum 0
  usage settled
  window calendar month in "Europe/Paris"
}

rule spend_alert {
  flag when measures.month_spend > 150M
  reason "alert"
}
"""


@pytest.fixture(scope="module")
def billing() -> PolicySet:
    return load_policy_set(EXAMPLE)


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> PolicySet:
    d = tmp_path_factory.mktemp("tokens")
    (d / "tokens.policy").write_text(TOKENS)
    return load_policy_set(d)


def _decide_and_report(policy: PolicySet):  # type: ignore[no-untyped-def]
    engine = Engine(policy, MemoryStore())
    n = [0]

    def step():  # type: ignore[no-untyped-def]
        n[0] += 1
        rid = f"r{n[0]}"
        ctx = Context.from_dict({**REQUEST, "request": {**REQUEST["request"], "id": rid}})
        d = engine.decide_sync(ctx, T0)
        engine.report_sync(rid, USAGE, T0)
        return d

    return step


def test_money_budget_decision_and_report(benchmark, billing: PolicySet) -> None:
    d = benchmark(_decide_and_report(billing))
    assert d.effect.label in ("allow", "flag")


def test_token_budget_decision_and_report(benchmark, tokens: PolicySet) -> None:
    d = benchmark(_decide_and_report(tokens))
    assert d.effect.label in ("allow", "flag")


def test_price_lookup(benchmark, billing: PolicySet) -> None:
    from policy_engine.builtins import implementation

    table = billing.checked.data["prices"].value
    price = implementation("price")
    assert benchmark(price, table, "frontier-large-2026-06", "output") == 15 / 1e6
