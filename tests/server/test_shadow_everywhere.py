"""Shadow matches say what the rule or limit would have done, on every interface.

The regression: over gRPC a shadow `deny` came back as `effect: allow` with an
empty reason (only rule names reached the converter), while `eval` and `replay`
said "deny (shadow)". Here one shadow deny rule and one shadow throttle limit
are matched through our API, Envoy's ext_authz (dynamic metadata), the decision
log, `policyctl eval` and `policyctl replay`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from collections.abc import Callable

import grpc

from policy_engine.client import PolicyClient
from policy_engine.proto.envoy.service.auth.v3 import attribute_context_pb2 as attr
from policy_engine.proto.envoy.service.auth.v3 import external_auth_pb2 as authz
from policy_engine.proto.envoy.service.auth.v3 import external_auth_pb2_grpc as authz_grpc

from server_harness import ServerThread

POLICY = """\
rule long_output {
  deny when (request.max_tokens ?? 0) > 8000
  reason "long output"
  shadow
}

limit per_minute_trial {
  key account.id
  count
  window 1m
  max 1
  throttle
  reason "trial: one request a minute"
  shadow
}
"""
SHADOW_DENY = ("long_output", "deny", "long output")
SHADOW_THROTTLE = ("per_minute_trial", "throttle", "trial: one request a minute")
POLICYCTL = str(Path(sys.executable).with_name("policyctl"))


def _request(account: str) -> dict[str, Any]:
    return {"account": {"id": account}, "request": {"model": "m", "prompt": "hi", "max_tokens": 9000}}


def _policy(tmp_path: Path) -> Path:
    folder = tmp_path / "shadow"
    folder.mkdir()
    (folder / "main.policy").write_text(POLICY)
    return folder


def test_our_api_and_the_decision_log(start_server: Callable[..., ServerThread], tmp_path: Path) -> None:
    log = tmp_path / "decisions.jsonl"
    st = start_server(policies=_policy(tmp_path), decision_log=str(log))
    with PolicyClient(st.target, timeout=5) as pe:
        first = pe.check(_request("acct-1"))
        second = pe.check(_request("acct-1"))  # over the shadow limit too
    for r in (first, second):
        assert (r.effect, r.http_status, r.rule_ids) == ("allow", 200, [])  # shadow never enforces
    assert [(m["rule_id"], m["effect"], m["reason"]) for m in first.shadow_matches] == [SHADOW_DENY]
    assert [(m["rule_id"], m["effect"], m["reason"]) for m in second.shadow_matches] == [SHADOW_DENY, SHADOW_THROTTLE]
    st.stop()
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [[(s["rule"], s["effect"], s["reason"]) for s in x["shadow"]] for x in lines] == [
        [SHADOW_DENY],
        [SHADOW_DENY, SHADOW_THROTTLE],
    ]
    assert [x["effect"] for x in lines] == ["allow", "allow"]


def test_ext_authz_metadata(start_server: Callable[..., ServerThread], tmp_path: Path) -> None:
    st = start_server(policies=_policy(tmp_path))
    http = attr.AttributeContext.HttpRequest(
        id="e-1",
        method="POST",
        path="/v1/chat/completions",
        host="api.example",
        headers={"x-account-id": "acct-env"},
        raw_body=json.dumps(
            {"model": "m", "max_tokens": 9000, "messages": [{"role": "user", "content": "x"}]}
        ).encode(),
    )
    req = authz.CheckRequest()
    req.attributes.request.http.CopyFrom(http)
    with grpc.insecure_channel(st.target) as ch:
        resp = authz_grpc.AuthorizationStub(ch).Check(req, timeout=5)
    assert resp.HasField("ok_response")  # admitted: the deny is only a shadow
    meta = json.loads(json.dumps(dict(resp.dynamic_metadata), default=list))
    shadow = [dict(s) for s in resp.dynamic_metadata["shadow"]]
    assert [(s["rule"], s["effect"], s["reason"]) for s in shadow] == [SHADOW_DENY]
    assert meta["effect"] == "allow"


def test_eval_and_replay(tmp_path: Path) -> None:
    folder = _policy(tmp_path)
    req = tmp_path / "req.json"
    req.write_text(json.dumps(_request("acct-1")))
    out = subprocess.run(
        [POLICYCTL, "eval", "--policies", str(folder), "--request", str(req)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    decision = json.loads(out.stdout)
    assert decision["effect"] == "allow" and decision["shadow_rules"] == ["long_output"]

    traffic = tmp_path / "traffic.jsonl"
    timed = [
        {**_request("acct-1"), "request": {**_request("acct-1")["request"], "ts": 1_800_000_000 + i}} for i in range(2)
    ]
    traffic.write_text("\n".join(json.dumps(r) for r in timed) + "\n")
    lines = tmp_path / "decisions.jsonl"
    out = subprocess.run(
        [POLICYCTL, "replay", "--policies", str(folder), str(traffic), "--out", str(lines)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert [json.loads(x)["shadow_rules"] for x in lines.read_text().splitlines()] == [
        ["long_output"],
        ["long_output", "per_minute_trial"],
    ]
    rows = [" ".join(line.split()) for line in out.stderr.splitlines()]
    assert any("long_output" in r and "deny (shadow)" in r for r in rows), out.stderr
    assert any("per_minute_trial" in r and "throttle (shadow)" in r for r in rows), out.stderr
