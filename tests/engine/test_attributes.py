"""Declared attributes through the engine: typed by the deciding policy, read like built-in
fields, null with a note when a value does not fit, free for a policy without any."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from policy_engine import wire
from policy_engine.cli.main import app
from policy_engine.context import Context
from policy_engine.ingress.http import HttpRequest
from policy_engine.ingress.mapping import RequestMapper

POLICY = """\
attribute account.risk_score: float {
  header "x-risk-score"
}

attribute request.team: string {
  header "x-team"
  api "team"
}

attribute account.trusted: bool
attribute request.retries: int
attribute account.groups: set<string>
attribute request.headers: map<string, string> {
  headers
}

rule risky {
  deny when account.risk_score > 0.8
  reason "account under review"
}

rule red_team {
  throttle when request.team == "red"
  reason "red team"
}

rule untrusted_retries {
  deny when not (account.trusted ?? false) and (request.retries ?? 0) >= 3
  reason "too many retries"
}

rule ops_only {
  flag when "ops" in (account.groups ?? []) or request.headers["x-debug"] == "1"
  reason "ops"
}
"""


def decide(make_policy: Any, attributes: dict[str, Any], text: str = POLICY) -> Any:
    return make_policy(text).decide({"account": {"id": "a1"}, "attributes": attributes})


@pytest.mark.parametrize(
    "attributes, effect, rules",
    [
        ({"account.risk_score": 0.93}, "deny", ["risky"]),
        ({"account.risk_score": "0.93"}, "deny", ["risky"]),  # a header's text, read as a number
        ({"account.risk_score": 0.2}, "allow", []),
        ({"team": "red"}, "throttle", ["red_team"]),  # renamed by `api "team"`
        ({"request.retries": 3}, "deny", ["untrusted_retries"]),
        ({"request.retries": 3.0, "account.trusted": "true"}, "allow", []),
        ({"account.groups": "ops, dev"}, "flag", ["ops_only"]),
        ({"account.groups": ["ops"]}, "flag", ["ops_only"]),
        ({"request.headers": {"x-debug": "1"}}, "flag", ["ops_only"]),
        ({}, "allow", []),
    ],
)
def test_declared_attributes_decide_like_fields(
    make_policy: Any, attributes: dict[str, Any], effect: str, rules: list[str]
) -> None:
    d = decide(make_policy, attributes)
    assert (d.effect.label, d.rules, list(d.notes)) == (effect, rules, [])


def test_a_value_that_does_not_fit_reads_as_null_with_a_note(make_policy: Any) -> None:
    d = decide(make_policy, {"account.risk_score": "high", "request.retries": 2.5, "request.team": "red", "x": 1})
    assert d.effect.label == "allow"  # risk_score null: `null > 0.8` is false; the team went under `team`
    assert list(d.notes) == [
        "attribute account.risk_score: ignored 'high': expected a number",
        "attribute request.retries: ignored 2.5: expected an integer",
        "attribute 'request.team' is not declared by the policy: ignored",  # its API key is `team`
        "attribute 'x' is not declared by the policy: ignored",
    ]
    assert d.to_dict()["notes"] == list(d.notes)


def test_a_policy_without_declarations_ignores_attributes_and_reads_no_map(make_policy: Any) -> None:
    plain = 'rule r {\n  deny when account.id == "a1"\n  reason "r"\n}\n'
    p = make_policy(plain)
    assert "attrs" not in p.policy.source
    d = p.decide({"account": {"id": "a1"}, "attributes": {"account.risk_score": 1}})
    assert list(d.notes) == ["attribute 'account.risk_score' is not declared by the policy: ignored"]
    assert "c.attrs.get('account.risk_score')" in make_policy(POLICY).policy.source


def test_the_wire_carries_attributes_both_ways() -> None:
    ctx = {"account": {"id": "a"}, "attributes": {"account.risk_score": 0.5, "m": {"k": "v"}, "s": ["a"], "b": True}}
    req = wire.context_to_check_request(ctx)
    fast = wire.context_from_check_request(req)
    assert fast.attributes == {"account.risk_score": 0.5, "m": {"k": "v"}, "s": ["a"], "b": True}
    assert wire.check_request_to_context(req)["attributes"] == fast.attributes
    assert wire.context_from_check_request(wire.context_to_check_request({})).attributes == {}


def test_the_http_mapper_reads_declared_headers_and_identity_only_when_trusted(make_policy: Any) -> None:
    text = POLICY.replace('header "x-risk-score"', 'header "X-Risk-Score"')
    attributes = make_policy(text).policy.attributes
    headers = {"x-risk-score": "0.9", "x-team": "red", "x-debug": "1"}
    mapped = RequestMapper().map(HttpRequest("POST", "/v1/chat/completions", headers), 0.0, attributes)
    raw = mapped.context["attributes"]
    assert raw["account.risk_score"] == "0.9" and raw["team"] == "red"
    assert raw["request.headers"]["x-debug"] == "1"
    # With identity from a JWT, a header cannot fill an identity field (account.*): a caller could forge it.
    raw2: dict[str, Any] = {}
    attributes.from_http(raw2, headers, None, trusted_headers=False)
    assert "account.risk_score" not in raw2 and raw2["team"] == "red"
    attributes.from_http(raw2, headers, {"risk": 0.1}, trusted_headers=False)
    assert "account.risk_score" not in raw2  # no `jwt` source declared for it


def test_eval_cli_reads_attributes_and_prints_notes(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "main.policy").write_text(POLICY)
    request = tmp_path / "r.json"
    request.write_text(json.dumps({"account": {"id": "a"}, "attributes": {"account.risk_score": 0.95, "z": 1}}))
    r = CliRunner().invoke(app, ["eval", "--policies", str(folder), "--request", str(request)])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert (out["effect"], out["rules"]) == ("deny", ["risky"])
    assert out["notes"] == ["attribute 'z' is not declared by the policy: ignored"]
    r = CliRunner().invoke(
        app, ["eval", "--policies", str(folder), "--request", str(request), "--explain", "--format", "text"]
    )
    assert "note: attribute 'z' is not declared by the policy: ignored" in r.output


def test_context_slots_default_to_the_shared_empty_map() -> None:
    c = Context()
    assert c.attributes == {} and c.attrs == {}
    assert Context.from_dict({}).attributes == {}


def test_policy_test_files_take_attributes(tmp_path: Path) -> None:
    (tmp_path / "main.policy").write_text(POLICY)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "attributes.yaml").write_text(
        "defaults:\n"
        "  account: {id: acct-1}\n"
        "  attributes: {account.risk_score: 0.1}\n"
        "cases:\n"
        "  - name: a low score is allowed\n"
        "    expect: allow\n"
        "  - name: a high score is denied\n"
        "    attributes: {account.risk_score: 0.95}\n"
        "    expect: {effect: deny, rules: [risky]}\n"
        "  - name: the default and the step merge\n"
        "    attributes: {team: red}\n"
        "    expect: {effect: throttle, rules: [red_team]}\n"
    )
    r = CliRunner().invoke(app, ["test", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert r.output.count("  PASS  ") == 3


def test_the_litellm_router_passes_attributes_from_its_metadata() -> None:
    from policy_engine.gateway.litellm_callback import sdk_identity

    data = {"user": "u1", "metadata": {"policy_engine": {"attributes": {"account.risk_score": 0.9}}}}
    ctx = sdk_identity(data)
    assert ctx["attributes"] == {"account.risk_score": 0.9}
    assert dict(wire.context_to_check_request(ctx).attributes)["account.risk_score"].number_value == 0.9


@pytest.mark.parametrize(
    "value",
    [
        {"a": {"b": {"c": [1, 2, {"d": None}]}}},
        [[1], {"x": 2}],
        float("nan"),
        float("inf"),
        10**400,
        "x" * 100_000,
        True,
        None,
        "",
    ],
    ids=["nested", "list", "nan", "inf", "huge", "long", "bool", "null", "empty"],
)
def test_values_of_any_shape_never_break_a_decision(make_policy: Any, value: Any) -> None:
    p = make_policy(POLICY)
    attributes = {key: value for key in ("account.risk_score", "team", "account.trusted", "request.retries")}
    attributes.update({"account.groups": value, "request.headers": value, "undeclared": value})
    d = p.decide({"account": {"id": "a1"}, "attributes": attributes})
    assert d.effect.label in ("allow", "deny", "throttle", "flag")


def test_a_limit_keyed_on_a_declared_attribute_warns_that_it_can_be_null(tmp_path: Path) -> None:
    from dsl.load import load

    limit = 'limit per_team {\n  key request.team\n  count\n  window 1m\n  max 5\n  reason "team budget"\n}\n'
    (tmp_path / "main.policy").write_text(POLICY + limit)
    [w] = [d for d in load([tmp_path])[1] if d.code == "W0312"]
    assert "`request.team` can be null" in w.message
    guarded = limit.replace("  count\n", "  count\n  when request.team != null\n")
    (tmp_path / "main.policy").write_text(POLICY + guarded)
    assert not [d for d in load([tmp_path])[1] if d.code == "W0312"]
