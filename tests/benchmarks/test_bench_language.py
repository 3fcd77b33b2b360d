"""Language benchmarks: parse+check+compile of a 500-rule policy, and decisions
on the shipped policy, beside Cedar (cedarpy) and Rego (regopy) evaluating an
equivalent policy in the same run.

Run: .venv/bin/python -m pytest tests/benchmarks/test_bench_language.py --benchmark-enable
"""

from __future__ import annotations

import json
from pathlib import Path

import cedarpy
import pytest
from regopy import Interpreter

from policy_engine.context import Context
from policy_engine.engine import Engine, _apply_rules
from policy_engine.policyset import load_policy_set
from policy_engine.state.memory import MemoryStore

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_764_300_000.0

REQUEST = {
    "request": {
        "id": "r-1",
        "ts": T0,
        "model": "frontier-large",
        "prompt": "Summarise this support ticket in two sentences: the customer cannot reset a password.",
        "max_tokens": 256,
        "prompt_tokens": 24,
    },
    "account": {
        "id": "acct-42",
        "org": "org-7",
        "age_days": 412,
        "verification": "kyc",
        "tier": "pro",
        "payment_fingerprint": "pf-9a1",
        "labels": [],
    },
    "api_key": {"id": "key-1", "scopes": ["inference"]},
    "client": {"ip": "203.0.113.9", "country": "US", "asn": 7922, "user_agent": "sdk/1.2"},
}


def _big_policy(n: int) -> str:
    rules = []
    for i in range(n):
        rules.append(
            f"# rule {i}\n"
            f"rule r{i} {{\n"
            f'  {("deny", "throttle", "flag")[i % 3]} when account.tier == "t{i}" and request.max_tokens > {i * 10}'
            f' or client.country in ["C{i}", "D{i}"] and account.age_days < {i % 30}\n'
            f'  unless "partner" in account.labels\n'
            f'  reason "rule {i} matched"\n'
            f"}}\n"
        )
    return "\n".join(rules)


def test_parse_check_compile_500_rules(benchmark, tmp_path: Path) -> None:
    (tmp_path / "big.policy").write_text(_big_policy(500))
    policy = benchmark(load_policy_set, tmp_path)
    assert len(policy.rules) == 500


# --- one equivalent policy in three languages: the identity layer ------------

OURS = """
rule embargoed_region {
  deny when client.country in ["CU", "IR", "KP", "SY"]
  reason "service not available in this region"
}
rule missing_identity {
  deny when account.id == null or api_key.id == null
  reason "missing identity"
}
rule key_scope {
  deny when not ("inference" in api_key.scopes)
  reason "API key lacks the inference scope"
}
rule young_unverified {
  deny when account.age_days < 7 and account.verification <= "email" and not ("partner" in account.labels)
  reason "young unverified account"
}
"""

CEDAR = """
forbid(principal, action, resource) when { ["CU","IR","KP","SY"].contains(context.country) };
forbid(principal, action, resource) unless { context has account_id && context has key_id };
forbid(principal, action, resource) unless { context.scopes.contains("inference") };
forbid(principal, action, resource) when { context.age_days < 7 && context.verification <= 1 && !context.labels.contains("partner") };
permit(principal, action, resource);
"""

REGO = """package policy
import rego.v1
embargoed := {"CU", "IR", "KP", "SY"}
deny contains "embargoed" if embargoed[input.country]
deny contains "identity" if not input.account_id
deny contains "identity" if not input.key_id
deny contains "scope" if not "inference" in input.scopes
deny contains "young" if {
  input.age_days < 7
  input.verification <= 1
  not "partner" in input.labels
}
"""

FLAT = {
    "country": "US",
    "account_id": "acct-42",
    "key_id": "key-1",
    "scopes": ["inference"],
    "age_days": 412,
    "verification": 3,
    "labels": [],
}


@pytest.fixture(scope="module")
def ours(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    d = tmp_path_factory.mktemp("ours")
    (d / "identity.policy").write_text(OURS)
    return load_policy_set(d)


def test_equivalent_policy_ours(benchmark, ours) -> None:
    # What a gateway pays: decode the request, evaluate every rule, build the decision.
    text = json.dumps(REQUEST)

    def decide():  # type: ignore[no-untyped-def]
        ctx = Context.from_json(text)
        matched, _ = ours.compiled.evaluate(ctx)
        return _apply_rules(ours, ctx, matched)[0]

    assert benchmark(decide).effect.label == "allow"


def test_equivalent_policy_ours_evaluate_only(benchmark, ours) -> None:
    ctx = Context.from_dict(REQUEST)

    def decide():  # type: ignore[no-untyped-def]
        matched, _ = ours.compiled.evaluate(ctx)
        return _apply_rules(ours, ctx, matched)[0]

    assert benchmark(decide).effect.label == "allow"


def test_equivalent_policy_cedar(benchmark) -> None:
    policies = cedarpy.PolicySet.from_str(CEDAR)
    entities = cedarpy.Entities.from_json_str("[]")
    req = {
        "principal": 'User::"acct-42"',
        "action": 'Action::"infer"',
        "resource": 'Model::"frontier-large"',
        "context": FLAT,
    }
    assert benchmark(cedarpy.is_authorized, req, policies, entities).allowed


def test_equivalent_policy_rego(benchmark) -> None:
    rego = Interpreter()
    rego.add_module("policy", REGO)
    text = json.dumps(FLAT)

    def decide():  # type: ignore[no-untyped-def]
        rego.set_input_term(text)
        return rego.query("data.policy.deny")

    out = benchmark(decide)
    assert "[]" in str(out) or "set()" in str(out) or "{}" in str(out)


# --- the shipped policy ---------------------------------------------------------


@pytest.fixture(scope="module")
def shipped():  # type: ignore[no-untyped-def]
    return load_policy_set(ROOT / "policies")


def _with_measures(ctx: Context, policy) -> Context:  # type: ignore[no-untyped-def]
    """Rules read measures: give them values (all zero), as the engine would after its store calls."""
    ctx.measures = [0.0] * len(policy.compiled.measures)
    return ctx


def test_shipped_rules_only(benchmark, shipped) -> None:
    """The stateless part of a decision on the shipped policy: every rule, measure values given, no store."""
    ctx = _with_measures(Context.from_dict(REQUEST), shipped)

    def decide():  # type: ignore[no-untyped-def]
        ctx.cache = {}
        return _apply_rules(shipped, ctx, shipped.compiled.evaluate_rules(ctx))[0]

    assert benchmark(decide).effect.label == "allow"


def test_shipped_rules_and_limit_keys(benchmark, shipped) -> None:
    """Every rule plus every limit's key, cost and signals: all but the store."""
    ctx = _with_measures(Context.from_dict(REQUEST), shipped)

    def decide():  # type: ignore[no-untyped-def]
        ctx.cache = {}
        matched, hits = shipped.compiled.evaluate(ctx)
        return _apply_rules(shipped, ctx, matched)[0], hits

    decision, hits = benchmark(decide)
    assert decision.effect.label == "allow" and hits


def test_shipped_full_decision_memory_store(benchmark, shipped) -> None:
    """Rules, signals and every limit on the memory store: the whole decision."""
    engine = Engine(shipped, MemoryStore())
    ctx = Context.from_dict(REQUEST)
    state = {"t": T0}

    def decide():  # type: ignore[no-untyped-def]
        ctx.cache = {}
        state["t"] += 0.01
        return engine.decide_sync(ctx, state["t"])

    assert benchmark(decide).effect.label in ("allow", "flag", "throttle")


# --- declared attributes: what reading one costs --------------------------------

DECLARED = (
    OURS
    + """
attribute account.risk_score: float {
  header "x-risk-score"
}
rule risky_account {
  deny when account.risk_score > 0.8
  reason "account under review"
}
"""
)


@pytest.fixture(scope="module")
def declared(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    d = tmp_path_factory.mktemp("declared")
    (d / "identity.policy").write_text(DECLARED)
    return load_policy_set(d)


def test_declared_attribute_decision(benchmark, declared) -> None:
    # The identity layer plus one rule on a declared float sent as a header's text:
    # JSON decode, typing the attributes map, evaluate, decision.
    text = json.dumps({**REQUEST, "attributes": {"account.risk_score": "0.2"}})

    def decide():  # type: ignore[no-untyped-def]
        ctx = Context.from_json(text)
        declared.attributes.type(ctx)
        matched, _ = declared.compiled.evaluate(ctx)
        return _apply_rules(declared, ctx, matched)[0]

    assert benchmark(decide).effect.label == "allow"
