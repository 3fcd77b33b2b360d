"""Server parts without a server: settings precedence, the fast context reader, the decision log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from policy_engine.context import FIELDS, Context
from policy_engine.decision import Decision, Effect, ShadowMatch
from policy_engine.proto.policyengine.v1 import policy_pb2 as pb
from policy_engine.server.decision_log import DecisionLog
from policy_engine.server.metrics import Metrics
from policy_engine.server.servicers import InvalidRequest, context_from_check_request
from policy_engine.server.settings import SettingsError, load_settings
from policy_engine.wire import check_request_to_model, context_to_check_request

# --- settings -------------------------------------------------------------------------------


def test_flags_beat_environment_beat_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pe.toml").write_text(
        '[server]\npolicies = "pol"\nport = 1111\nmetrics_port = 2222\ndecision_log = "d.jsonl"\n'
        "[server.envoy]\nxff_num_trusted_hops = 2\n"
    )
    monkeypatch.setenv("POLICY_ENGINE_METRICS_PORT", "3333")
    monkeypatch.setenv("POLICY_ENGINE_ENVOY__FLAGS_HEADER", "x-flags")
    s = load_settings(tmp_path / "pe.toml", port=4444, redis=None)
    assert s.port == 4444  # flag
    assert s.metrics_port == 3333  # environment over the file
    assert s.policies == tmp_path / "pol"  # relative to the file
    assert s.decision_log == str(tmp_path / "d.jsonl")
    assert s.envoy.xff_num_trusted_hops == 2 and s.envoy.flags_header == "x-flags"
    assert s.host == "127.0.0.1" and s.redis is None and s.workers == 1


def test_settings_errors_say_what_and_where(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="policies: Field required"):
        load_settings()
    with pytest.raises(SettingsError, match=r"--workers 3 needs --redis URL.*memory store cannot be shared"):
        load_settings(policies=tmp_path, workers=3)
    (tmp_path / "bad.toml").write_text("[server]\npolicies = 'x'\nprot = 1\n")
    with pytest.raises(SettingsError, match="prot: unknown setting"):
        load_settings(tmp_path / "bad.toml")
    (tmp_path / "broken.toml").write_text("[server\n")
    with pytest.raises(SettingsError, match="broken.toml: not valid TOML"):
        load_settings(tmp_path / "broken.toml")
    with pytest.raises(SettingsError, match="cannot read the config file"):
        load_settings(tmp_path / "missing.toml")
    assert load_settings(policies=tmp_path, workers=2, redis="redis://127.0.0.1:1").workers == 2


# --- protobuf -> Context ----------------------------------------------------------------------


def _slots(c: Context) -> dict[str, Any]:
    return {name: getattr(c, name) for name in FIELDS}


opt_text = st.none() | st.text(max_size=20)
contexts = st.fixed_dictionaries(
    {
        "request": st.fixed_dictionaries(
            {
                "id": opt_text,
                "ts": st.none() | st.floats(0, 2e9),
                "model": opt_text,
                "prompt": opt_text,
                "max_tokens": st.none() | st.integers(0, 10**9),
                "prompt_tokens": st.none() | st.integers(0, 10**9),
            }
        ),
        "account": st.fixed_dictionaries(
            {
                "id": opt_text,
                "org": opt_text,
                "age_days": st.none() | st.floats(0, 1e5),
                "verification": st.none() | st.sampled_from(["none", "email", "phone", "kyc"]),
                "tier": opt_text,
                "payment_fingerprint": opt_text,
                "labels": st.none() | st.lists(st.text(max_size=5), max_size=3),
            }
        ),
        "api_key": st.fixed_dictionaries({"id": opt_text, "scopes": st.none() | st.lists(st.text(max_size=5))}),
        "client": st.fixed_dictionaries(
            {"ip": opt_text, "country": opt_text, "asn": st.none() | st.integers(0, 2**32 - 1), "user_agent": opt_text}
        ),
        "usage": st.none()
        | st.fixed_dictionaries(
            {"prompt_tokens": st.none() | st.integers(0, 10**6), "completion_tokens": st.none() | st.integers(0, 10**6)}
        ),
    }
)


@hsettings(max_examples=150, deadline=None)
@given(contexts)
def test_fast_reader_equals_the_pydantic_path(data: dict[str, Any]) -> None:
    msg = context_to_check_request(data)
    assert _slots(context_from_check_request(msg)) == _slots(Context.from_model(check_request_to_model(msg)))


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("verification", "KYC", "$.account.verification"),
        ("age_days", -0.5, "$.account.age_days"),
        ("age_days", float("nan"), "$.account.age_days"),
    ],
)
def test_fast_reader_refuses_what_the_schema_refuses(field: str, value: Any, path: str) -> None:
    msg = pb.CheckRequest()
    setattr(msg.account, field, value)
    with pytest.raises(InvalidRequest, match=path.replace("$", r"\$")):
        context_from_check_request(msg)


# --- decision log -------------------------------------------------------------------------------


def _decision(i: int) -> Decision:
    return Decision(Effect.DENY, 403, reason="r", rules=["x"], policy_version="v", request_id=f"r-{i}")


def test_decision_log_counts_drops_and_never_blocks(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    dl = DecisionLog(str(path), max_pending=3, flush_interval=60)  # the writer sleeps: the queue fills
    c = Context(request_prompt="p", account_id="a")
    for i in range(10):
        dl.submit("check", c, _decision(i), 0.0001)
    assert dl.counts() == (7, 0)
    dl.close()
    assert dl.counts() == (7, 3)
    assert [json.loads(x)["request_id"] for x in path.read_text().splitlines()] == ["r-0", "r-1", "r-2"]


def test_metrics_render() -> None:
    m = Metrics()
    m.observe("check", "deny", ["x"], [ShadowMatch("s", Effect.DENY, "r")], 1, 0.0003)
    m.observe("check", "allow", [], [], 0, 2.0)
    m.reloaded("error", "v1")
    text = m.render().decode()
    assert 'policy_engine_decisions_total{api="check",effect="deny"} 1.0' in text
    assert 'policy_engine_decision_seconds_bucket{api="check",le="0.0005"} 1.0' in text
    assert 'policy_engine_decision_seconds_bucket{api="check",le="+Inf"} 2.0' in text
    assert 'policy_engine_shadow_matches_total{rule="s"} 1.0' in text
    assert "policy_engine_store_errors_total 1.0" in text
    assert 'policy_engine_reloads_total{result="error"} 1.0' in text
    assert "policy_engine_last_reload_error 1.0" in text


# --- Decision -> CheckResponse ---------------------------------------------------------------


def test_the_response_carries_every_part_of_a_decision(make_policy: Any) -> None:
    from server_harness import POLICY

    from policy_engine.wire import check_response_to_dict, decision_to_check_response

    h = make_policy(POLICY, files={"data/blocked_models.txt": "legacy-model\n"})
    acct = {"id": "a", "age_days": 5, "verification": "kyc"}
    requests = [
        {"account": acct, "request": {"id": "r1", "model": "m", "prompt": "hi"}},
        {"account": acct, "request": {"model": "m", "prompt": "go step by step", "max_tokens": 9000}},
        {"account": acct, "request": {"model": "legacy-model"}},
        {"account": {"id": "new", "age_days": 0, "verification": "none"}},
        {"account": acct},
        {"account": acct},  # throttled from here
    ]
    effects = set()
    for explain in (False, True):
        for req in requests:
            d = h.decide(req, explain=explain)
            effects.add(d.effect.label)
            wire = pb.CheckResponse.FromString(decision_to_check_response(d, explain).SerializeToString())
            back = check_response_to_dict(wire)
            assert (back["effect"], back["http_status"], back["reason"]) == (d.effect.label, d.status, d.reason or "")
            assert (back["rule_ids"], back["flags"], back["headers"]) == (d.rules, d.flags, d.headers)
            assert [(m["rule_id"], m["effect"], m["reason"]) for m in back["shadow_matches"]] == [
                (m.rule, m.effect.label, m.reason) for m in d.shadow
            ]
            assert [
                (x["limit_id"], x["key"], x["used"], x["max"], x["remaining"], x["reset_seconds"], x["over"])
                for x in back["limits"]
            ] == [(s.limit, s.key, s.used, s.max, s.remaining, s.reset, s.over) for s in d.limits]
            assert (back["policy_version"], back["request_id"]) == (d.policy_version, d.request_id or "")
            assert back["retry_after_seconds"] == (d.retry_after or 0.0)
            assert back["explanation"] == (json.loads(json.dumps(d.trace, default=str)) if explain else None)
    assert effects == {"allow", "flag", "deny", "throttle"}
    # measures, charged and read
    m = make_policy(
        POLICY.replace(
            "rule cot_probe {",
            "measure seen {\n  key account.id\n  count\n  window 1h\n"
            "  when account.age_days < 10\n}\n\nrule cot_probe {",
        ),
        files={"data/blocked_models.txt": "legacy-model\n"},
    )
    for req in ({"account": acct}, {"account": {**acct, "age_days": 50}}):
        d = m.decide(req)
        back = check_response_to_dict(decision_to_check_response(d))
        assert d.measures and [
            (x["measure_id"], x["key"], x["value"], x["charged"], x["error"]) for x in back["measures"]
        ] == [(s.measure, s.key, s.value, s.charged, s.error) for s in d.measures]
    assert [x.charged for x in d.measures] == [False]
