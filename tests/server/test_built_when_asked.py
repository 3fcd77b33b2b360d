"""What users see does not depend on when the engine builds a decision's parts.

The engine keeps a request's measures and limits as the store answered them and
builds their states and the caller's headers only when a view reads them (explain,
the decision log, replay files, eval, our Check's answer; Envoy's answer reads
almost none of it). These goldens were written by the engine that built every part
eagerly, for every request, and each test compares a user-facing output with them
byte for byte (floating clock fields aside):

- `policyctl replay` decision file, on traffic with every effect, measures on two
  levels, a limit whose maximum reads a measure, and usage reports;
- `policyctl eval --explain`, JSON and text;
- the server: PolicyService/Check with explain off and on, Envoy ext_authz and
  ShouldRateLimit answers, and the decision log lines, on a frozen clock.

After an intended change of an output, write them again with
`POLICY_ENGINE_RECORD_GOLDEN=1 .venv/bin/pytest tests/server/test_built_when_asked.py`
and review the diff.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from collections.abc import Callable

import grpc
import pytest
from google.protobuf import json_format

import policy_engine.engine
from policy_engine.proto.envoy.service.auth.v3 import external_auth_pb2 as authz
from policy_engine.proto.envoy.service.auth.v3 import external_auth_pb2_grpc as authz_grpc
from policy_engine.proto.envoy.service.ratelimit.v3 import rls_pb2 as rls
from policy_engine.proto.envoy.service.ratelimit.v3 import rls_pb2_grpc as rls_grpc
from policy_engine.proto.policyengine.v1 import policy_pb2_grpc as pb_grpc
from policy_engine.wire import context_to_check_request

from server_harness import ServerThread

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "tests" / "engine" / "fixtures" / "replay_measures"
GOLDEN = Path(__file__).parent / "golden" / "built_when_asked"
RECORD = os.environ.get("POLICY_ENGINE_RECORD_GOLDEN") == "1"
POLICYCTL = str(Path(sys.executable).with_name("policyctl"))
T0 = 1_764_300_000.0


def contexts(n: int = 90) -> list[dict[str, Any]]:
    """Requests that reach every effect of the policy: seven accounts on three cards
    (a card shared by more than five young accounts is denied), a request a second
    (over six a minute is throttled, one a minute after 20k tokens), prompts that
    ask for steps (suspicion: throttled when one template fans out to young accounts,
    flagged for an old account on its own), some answered with a usage report."""
    out = []
    for i in range(n):
        card = f"pf-{i % 3}" if i % 5 else None
        prompt = f"Think step by step about case {i % 4}." if i % 2 else f"Hello there, item {i % 3}"
        age = (i % 4) * 12
        if i % 7 == 6:
            card, prompt, age = None, "Walk me step by step through my own tax return.", 400
        c: dict[str, Any] = {
            "request": {"id": f"r-{i}", "ts": T0 + 3 * i, "prompt": prompt, "max_tokens": 4000 if i % 3 == 0 else 150},
            "account": {"id": f"acct-{i % 7}", "age_days": age, "payment_fingerprint": card},
        }
        if i % 4 == 1:
            c["usage"] = {"prompt_tokens": 20, "completion_tokens": 700 + i}
        out.append(c)
    return out


def check_golden(name: str, text: str) -> None:
    text = text.replace(str(ROOT), "<repo>")  # explain names the policy file's path: the same in any checkout
    path = GOLDEN / name
    if RECORD:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"no golden {name}: record it (see this module's docstring)"
    assert text == path.read_text(), f"{name} differs from its golden"


def run(*args: str, stdin: str | None = None) -> str:
    r = subprocess.run([POLICYCTL, *args], input=stdin, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_replay_decision_file_is_unchanged(tmp_path: Path) -> None:
    traffic = tmp_path / "traffic.jsonl"
    traffic.write_text("".join(json.dumps(c) + "\n" for c in contexts()))
    out = tmp_path / "decisions.jsonl"
    run("replay", str(traffic), "--policies", str(POLICY), "--out", str(out), "--quiet")
    text = out.read_text()
    assert {json.loads(line)["effect"] for line in text.splitlines()} == {"allow", "flag", "throttle", "deny"}
    check_golden("replay.jsonl", text)


def test_eval_explain_is_unchanged() -> None:
    shown = []
    for c in contexts()[:4]:
        for fmt in ("json", "text"):
            shown.append(
                run("eval", "--policies", str(POLICY), "--request", "-", "--explain", "-f", fmt, stdin=json.dumps(c))
            )
    check_golden("eval.txt", "\n".join(shown))


def _ext_authz(c: dict[str, Any]) -> authz.CheckRequest:
    acct, req = c["account"], c["request"]
    headers = {"x-request-id": req["id"], "x-account-id": acct["id"], "x-account-age-days": str(acct["age_days"])}
    if acct["payment_fingerprint"] is not None:
        headers["x-payment-fingerprint"] = acct["payment_fingerprint"]
    r = authz.CheckRequest()
    http = r.attributes.request.http
    http.id, http.method, http.path = req["id"], "POST", "/v1/chat/completions"
    http.headers.update(headers)
    http.raw_body = json.dumps(
        {"max_tokens": req["max_tokens"], "messages": [{"role": "user", "content": req["prompt"]}]}
    ).encode()
    r.attributes.source.address.socket_address.address = "198.51.100.7"
    return r


def _shown(msg: Any) -> dict[str, Any]:
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


class _FrozenClock:
    """The engine's clock: one second per decision from T0, whatever the wall clock says."""

    def __init__(self) -> None:
        self.now = T0

    def time(self) -> float:
        self.now += 1.0
        return self.now


def test_server_answers_and_decision_log_are_unchanged(
    start_server: Callable[..., ServerThread], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(policy_engine.engine, "time", _FrozenClock())
    log = tmp_path / "decisions.log"
    st = start_server(policies=POLICY, decision_log=str(log))
    answers = []
    with grpc.insecure_channel(st.target) as ch:
        check = pb_grpc.PolicyServiceStub(ch).Check
        ext_authz = authz_grpc.AuthorizationStub(ch).Check
        rate_limit = rls_grpc.RateLimitServiceStub(ch).ShouldRateLimit
        for i, c in enumerate(contexts()):
            if i % 3 == 2:
                answers.append({"ext_authz": _shown(ext_authz(_ext_authz(c), timeout=5))})
                continue
            resp = check(context_to_check_request(c, explain=i % 3 == 1), timeout=5)
            answers.append({"check": _shown(resp)})
        for n, acct in enumerate(("acct-1", "acct-2", "acct-1")):
            entries = [{"key": "account_id", "value": acct}, {"key": "request_id", "value": f"rl-{n}"}]
            req = rls.RateLimitRequest(domain="llm", descriptors=[{"entries": entries}])
            answers.append({"ratelimit": _shown(rate_limit(req, timeout=5))})
    st.stop()
    effects = {a["check"].get("effect") for a in answers if "check" in a}
    assert {"EFFECT_FLAG", "EFFECT_THROTTLE", "EFFECT_DENY"} <= effects
    check_golden("server_answers.json", json.dumps(answers, indent=1, sort_keys=True) + "\n")
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == len(answers)
    for line in lines:  # the wall clock's: neither the frozen one nor the same twice
        del line["ts"], line["latency_us"]
    check_golden("decision_log.jsonl", "".join(json.dumps(line, sort_keys=True) + "\n" for line in lines))
