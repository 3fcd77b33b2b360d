"""Exemptions (`exempt NAME { when ...; rules ... }`): requests that skip every
limit and the rules named, shown in the decision, the trace and over gRPC."""

from __future__ import annotations

from typing import Any

from policy_engine.decision import Effect
from policy_engine.proto.policyengine.v1 import policy_pb2 as pb
from policy_engine.wire import check_response_to_dict, decision_to_check_response

T0 = 1_764_300_000.0

POLICY = """
data internal_accounts = strings("internal.txt")

exempt internal {
  when account.id in internal_accounts
  unless client.country == "KP"
  rules young
}

exempt load_test {
  when "loadtest" in account.labels
}

rule young {
  deny when account.age_days < 1
  reason "account too new"
}

rule embargo {
  deny when client.country in ["KP", "IR"]
  reason "country not served"
}

limit per_minute {
  key account.id
  count
  window 1m
  max 2
  reason "too many requests"
}

measure requests_per_account {
  key account.id
  count
  window 1h
}
"""


def req(acct: str, age: float = 100, country: str = "FR", labels: list[str] | None = None) -> dict[str, Any]:
    r: dict[str, Any] = {
        "request": {"ts": T0},
        "account": {"id": acct, "age_days": age},
        "client": {"country": country},
    }
    if labels is not None:
        r["account"]["labels"] = labels
    return r


def test_an_exempt_request_skips_every_limit_and_the_rules_named(make_policy) -> None:
    p = make_policy(POLICY, {"internal.txt": "ops-1\n"})
    for i in range(5):  # over per_minute's max of 2, and young: neither applies
        d = p.decide(req("ops-1", age=0.1), now=T0 + i)
        assert (d.effect, d.rules, list(d.exempt)) == (Effect.ALLOW, [], ["internal"])
        assert d.limits == [] and d.rate_limit is None and "x-ratelimit-limit" not in d.headers
        # measures still count it: they are evidence
        assert [(m.measure, m.value, m.charged) for m in d.measures] == [("requests_per_account", i + 1, True)]
    # a rule the exemption does not name still applies
    d = p.decide(req("ops-1", country="IR"), now=T0 + 6)
    assert (d.effect, d.rules, list(d.exempt)) == (Effect.DENY, ["embargo"], ["internal"])
    # `unless`: not exempt from KP; the rules and limits apply, and the five exempt
    # requests were never counted: the limit sees its first request
    d = p.decide(req("ops-1", age=0.1, country="KP"), now=T0 + 7)
    assert list(d.exempt) == [] and set(d.rules) == {"young", "embargo"}
    assert [(s.limit, s.used) for s in d.limits] == [("per_minute", 0)]  # a denied request is not charged


def test_a_request_that_is_not_exempt_counts_as_before(make_policy) -> None:
    p = make_policy(POLICY, {"internal.txt": "ops-1\n"})
    effects = [p.decide(req("cust-1"), now=T0 + i).effect for i in range(3)]
    assert effects == [Effect.ALLOW, Effect.ALLOW, Effect.THROTTLE]
    d = p.decide(req("cust-2", age=0.1), now=T0 + 4)
    assert d.effect is Effect.DENY and d.rules == ["young"] and list(d.exempt) == []


def test_several_exemptions_skip_the_union_of_their_rules(make_policy) -> None:
    p = make_policy(POLICY, {"internal.txt": "ops-1\n"})
    d = p.decide(req("ops-1", age=0.1, labels=["loadtest"]), now=T0)
    assert list(d.exempt) == ["internal", "load_test"] and d.effect is Effect.ALLOW
    d = p.decide(req("lt-1", age=0.1, labels=["loadtest"]), now=T0)  # load_test alone names no rule
    assert list(d.exempt) == ["load_test"] and d.rules == ["young"] and d.limits == []


def test_the_trace_shows_exemptions_and_what_they_skipped(make_policy) -> None:
    p = make_policy(POLICY, {"internal.txt": "ops-1\n"})
    d = p.decide(req("ops-1", age=0.1), now=T0, explain=True)
    assert d.trace is not None
    ex = {e["exempt"]: e for e in d.trace if "exempt" in e}
    assert ex["internal"] == {
        "exempt": "internal",
        "at": ex["internal"]["at"],
        "condition": True,
        "exempted": False,
        "matched": True,
        "rules": ["young"],
    }
    assert ex["load_test"]["matched"] is False and ex["load_test"]["condition"] is False
    young = next(e for e in d.trace if e.get("rule") == "young")
    assert young["condition"] is True and young["matched"] is False and young["exempted_by"] == "internal"
    assert "exempted_by" not in next(e for e in d.trace if e.get("rule") == "embargo")
    lim = next(e for e in d.trace if e.get("limit") == "per_minute")
    assert lim["applied"] is False and lim["exempted_by"] == "internal"
    # the `unless` of an exemption shows as exempted
    d = p.decide(req("ops-1", country="KP"), now=T0 + 1, explain=True)
    assert d.trace is not None
    internal = next(e for e in d.trace if e.get("exempt") == "internal")
    assert (internal["condition"], internal["exempted"], internal["matched"]) == (True, True, False)


def test_the_decision_says_so_in_json_and_over_grpc(make_policy) -> None:
    p = make_policy(POLICY, {"internal.txt": "ops-1\n"})
    d = p.decide(req("ops-1"), now=T0)
    assert d.to_dict()["exempt"] == ["internal"]
    wire = decision_to_check_response(d)
    assert list(pb.CheckResponse.FromString(wire.SerializeToString()).exempt) == ["internal"]
    assert check_response_to_dict(wire)["exempt"] == ["internal"]
    d = p.decide(req("cust-1"), now=T0)
    assert "exempt" not in d.to_dict() and list(decision_to_check_response(d).exempt) == []
