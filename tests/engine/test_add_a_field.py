"""Adding a request field is one line in dsl/schema.py, then scripts/gen_fields and scripts/gen_protos.

A copy of the code gets one new `Field(...)` line and the two generators; the
new field then works end to end: the checker types it, JSON requests carry and
validate it, policies read it, the gateways read it from a header, a JWT
claim or a rate-limit descriptor, the gRPC wire carries it, and the docs list it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

NEW_FIELD = (
    '    Field("account", "risk", FLOAT, 8, "a risk score from the identity provider", minimum=0,\n'
    '          header="x-account-risk", claim="risk", descriptors=("risk",)),\n'
)

PROBE = textwrap.dedent("""
    import json, tempfile
    from pathlib import Path

    import pytest
    from pydantic import ValidationError

    from policy_engine.context import Context
    from policy_engine.engine import Engine
    from policy_engine.ingress.http import HttpRequest
    from policy_engine.ingress.mapping import RequestMapper
    from policy_engine.ingress.settings import JwtSettings
    from policy_engine.policyset import load_policy_set
    from policy_engine.server.envoy_mapping import EnvoyMappingSettings
    from policy_engine.state.memory import MemoryStore
    from policy_engine.wire import context_from_check_request, context_to_check_request

    d = Path(tempfile.mkdtemp())
    (d / "risk.policy").write_text('rule risky {\\n  deny when account.risk > 0.8\\n  reason "too risky"\\n}\\n')
    engine = Engine(load_policy_set(d), MemoryStore())

    def effect(doc):
        return engine.decide_sync(Context.from_json(json.dumps(doc)), 1.0).effect.label

    assert effect({"account": {"risk": 0.9}}) == "deny" and effect({"account": {"risk": 0.1}}) == "allow"
    assert effect({}) == "allow"
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        Context.from_json('{"account": {"risk": -1}}')

    mapped = RequestMapper().map(HttpRequest("POST", "/v1/chat/completions", {"x-account-risk": "0.9"}))
    assert mapped.context["account"] == {"risk": 0.9}
    assert RequestMapper().map(HttpRequest("POST", "/", {"x-account-risk": "high"})).context == {}
    assert JwtSettings(jwks_file="j").claims["account.risk"] == "risk"
    assert EnvoyMappingSettings().descriptor_keys["risk"] == "account.risk"

    msg = context_to_check_request({"account": {"risk": 0.9}})
    assert context_from_check_request(type(msg).FromString(msg.SerializeToString())).account_risk == 0.9
    msg.account.risk = -2.0
    with pytest.raises(ValidationError, match="account.risk"):
        context_from_check_request(msg)
    print("ok")
""")


def _copy(dst: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("dsl", "policy_engine", "grpc", "docs", "scripts"):
        shutil.copytree(ROOT / name, dst / name, ignore=ignore)


def _run(args: list[str], cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_one_new_line_in_the_table_is_a_working_field(tmp_path: Path) -> None:
    _copy(tmp_path)
    schema = tmp_path / "dsl" / "schema.py"
    text = schema.read_text()
    anchor = 'claim="labels", descriptors=("labels",)),\n'
    assert anchor in text
    schema.write_text(text.replace(anchor, anchor + NEW_FIELD, 1))

    _run([sys.executable, "scripts/gen_fields"], tmp_path)
    _run([sys.executable, "scripts/gen_protos"], tmp_path)
    assert "optional double risk = 8;" in (tmp_path / "grpc/policyengine/v1/policy.proto").read_text()
    assert (
        "| `account.risk` | float | a risk score from the identity provider |"
        in (tmp_path / "docs/language.md").read_text()
    )
    assert "`x-account-risk` (`risk`)" in (tmp_path / "docs/grpc.md").read_text()

    assert _run([sys.executable, "-c", PROBE], tmp_path).strip() == "ok"
