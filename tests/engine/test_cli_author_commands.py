"""lint, fmt and eval run as subprocesses, the way a user runs them: the new
user's path from a typo to a decision they can read."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
POLICYCTL = str(Path(sys.executable).with_name("policyctl"))


def run(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([POLICYCTL, *args], input=stdin, capture_output=True, text=True, timeout=60, cwd=cwd)


TYPO = """rule young_accounts {
  deny when account.age_day < 7
  reason "account too new"
}
"""

FIXED = """rule   young_accounts{
  deny when account.age_days<7   # fresh accounts
  unless "partner" in account.labels
  reason "account too new"
}
"""

REQUEST = {
    "request": {"id": "r-9", "ts": 1764300000.0, "prompt": "hi", "max_tokens": 10},
    "account": {"id": "acct-1", "age_days": 2, "verification": "email", "labels": []},
    "api_key": {"id": "k", "scopes": ["inference"]},
    "client": {"ip": "203.0.113.9"},
}


def test_new_user_path(tmp_path: Path) -> None:
    pol = tmp_path / "main.policy"
    pol.write_text(TYPO)
    r = run("lint", str(tmp_path))
    assert r.returncode == 1
    assert "main.policy:2:13: error[E0202]: `account` has no field `age_day`" in r.stdout
    assert "did you mean `account.age_days`?" in r.stdout and "^^^^^^^^^^^^^^^" in r.stdout

    pol.write_text(FIXED)
    assert run("lint", str(tmp_path)).returncode == 0
    check = run("fmt", "--check", str(tmp_path))
    assert check.returncode == 1 and "would reformat" in check.stderr
    diff = run("fmt", "--diff", str(tmp_path))
    assert "+rule young_accounts {" in diff.stdout and pol.read_text() == FIXED
    assert run("fmt", str(tmp_path)).returncode == 0
    assert "deny when account.age_days < 7  # fresh accounts" in pol.read_text()
    assert run("fmt", "--check", str(tmp_path)).returncode == 0

    r = run("eval", "--policies", str(tmp_path), "--request", "-", "--explain", stdin=json.dumps(REQUEST))
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["effect"] == "deny" and d["reason"] == "account too new" and d["request_id"] == "r-9"
    assert d["trace"][0]["rule"] == "young_accounts" and d["trace"][0]["condition"] is True


def test_lint_json_and_exit_codes(tmp_path: Path) -> None:
    (tmp_path / "main.policy").write_text(TYPO)
    r = run("lint", "--format", "json", str(tmp_path))
    assert r.returncode == 1
    diag = json.loads(r.stdout)["diagnostics"][0]
    assert diag["code"] == "E0202" and diag["line"] == 2 and diag["column"] == 13
    assert run("lint", str(tmp_path / "missing")).returncode == 2


def test_eval_rejects_bad_requests_with_the_json_path(tmp_path: Path) -> None:
    (tmp_path / "main.policy").write_text(FIXED)
    bad = dict(REQUEST, account={"id": "a", "verification": "gold", "colour": "red"})
    r = run("eval", "--policies", str(tmp_path), "--request", "-", stdin=json.dumps(bad))
    assert r.returncode == 2
    assert "$.account.verification" in r.stderr and "$.account.colour: unknown field" in r.stderr
    r = run("eval", "--policies", str(tmp_path), "--request", "-", stdin="{not json")
    assert r.returncode == 2 and "invalid request context" in r.stderr


def test_eval_refuses_a_broken_policy(tmp_path: Path) -> None:
    (tmp_path / "main.policy").write_text(TYPO)
    r = run("eval", "--policies", str(tmp_path), "--request", "-", stdin=json.dumps(REQUEST))
    assert r.returncode == 1 and "policy not loaded: 1 error" in r.stderr and "Traceback" not in r.stderr


def test_shipped_examples(tmp_path: Path) -> None:
    r = run("eval", "--policies", "policies", "--request", "examples/requests/embargoed.json", cwd=ROOT)
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == 451
    assert run("lint", "--strict", "policies", cwd=ROOT).returncode == 0
    assert run("fmt", "--check", "policies", cwd=ROOT).returncode == 0


def test_shipped_policy_tests_pass_and_cover_every_rule() -> None:
    r = run("test", "policies", "--coverage", cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "FAIL" not in r.stdout
    m = re.search(r"(\d+)/(\d+) rules, limits and measures exercised", r.stdout)
    assert m is not None, r.stdout
    assert m.group(1) == m.group(2)


def test_eval_shares_limit_state_through_redis(tmp_path: Path, redis_server) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "main.policy").write_text(
        'limit per_hour {\n  key account.id\n  count\n  window 1h\n  max 2\n  reason "two an hour"\n}\n'
    )
    effects = []
    for i in range(3):
        req = dict(REQUEST, request={"id": f"r-{i}", "ts": 1764300000.0 + i})
        r = run(
            "eval", "--policies", str(tmp_path), "--request", "-", "--redis", redis_server.url, stdin=json.dumps(req)
        )
        assert r.returncode == 0, r.stderr
        effects.append(json.loads(r.stdout)["effect"])
    # Three separate processes: only a shared store can count to three.
    assert effects == ["allow", "allow", "throttle"]


def test_a_policy_file_linking_outside_its_folder_is_not_read(tmp_path: Path) -> None:
    outside = tmp_path / "outside.policy"
    outside.write_text('rule leaked {\n  deny when true\n  reason "read from outside"\n}\n')
    folder = tmp_path / "pol"
    folder.mkdir()
    (folder / "main.policy").write_text(FIXED)
    (folder / "link.policy").symlink_to(outside)
    r = run("lint", str(folder))
    assert r.returncode == 1 and "link that leaves the policy folder" in r.stdout
    r = run("eval", "--policies", str(folder), "--request", "-", stdin=json.dumps(REQUEST))
    assert r.returncode == 1 and "leaked" not in r.stdout


EXPLAINED = """let fresh = account.age_days < 30

rule young {
  flag when fresh
  reason "young account"
}

rule templated {
  deny when template_id(request.prompt) == "never"
  reason "known template"
}

limit per_account {
  key account.id
  count
  window 1m
  max 1
  reason "one a minute"
}

limit fresh_only {
  key account.id
  count
  window 1h
  max 10
  when fresh and account.tier == "free"
  reason "fresh free accounts"
}

limit partners_exempt {
  key account.id
  count
  window 1h
  max 10
  unless "partner" in account.labels
  reason "non-partners"
}

limit tiered {
  key account.id
  count
  window 1h
  max {"pro": 100}[account.tier]
  reason "per tier"
}

limit per_org_models {
  key account.org
  distinct request.model
  window 1h
  max 5
  reason "models per org"
}

limit per_card {
  key account.payment_fingerprint
  count
  window 1h
  max 50
  reason "per card"
}
"""


def test_explain_says_why_each_limit_did_or_did_not_apply(tmp_path: Path) -> None:
    (tmp_path / "main.policy").write_text(EXPLAINED)
    req = {**REQUEST, "account": {**REQUEST["account"], "tier": "team", "org": "org-1", "labels": ["partner"]}}
    r = run("eval", "--policies", str(tmp_path), "--request", "-", "--explain", stdin=json.dumps(req))
    assert r.returncode == 0, r.stderr
    trace = json.loads(r.stdout)["trace"]
    limits = {t["limit"]: t for t in trace if "limit" in t}
    assert limits["per_account"]["applied"] and "why" not in limits["per_account"]
    assert (limits["fresh_only"]["applied"], limits["fresh_only"]["why"]) == (False, "`when` is false")
    assert (limits["partners_exempt"]["applied"], limits["partners_exempt"]["why"]) == (False, "`unless` holds")
    assert (limits["tiered"]["applied"], limits["tiered"]["why"]) == (False, "the maximum is null")
    assert limits["per_org_models"]["why"] == "the distinct value is null"  # the request names no model
    assert limits["per_card"]["applied"] and limits["per_card"]["key"] == "-"
    assert limits["per_card"]["null_key"] == ["account.payment_fingerprint"]
    computed = [t for t in trace if "signal" in t or "let" in t]
    assert {"signal": "template_id", "args": ["hi"], "value": computed[0]["value"]} in computed


def test_explain_as_text(tmp_path: Path) -> None:
    (tmp_path / "main.policy").write_text(EXPLAINED)
    req = {
        **REQUEST,
        "account": {**REQUEST["account"], "tier": "free", "org": "org-1"},
        "request": {**REQUEST["request"], "model": "m-1", "prompt": "Summarise the ticket " * 10},
    }
    r = run(
        "eval", "--policies", str(tmp_path), "--request", "-", "--explain", "--format", "text", stdin=json.dumps(req)
    )
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith("flag 200: young account\ndecided by rule young (")
    assert "\nrules:\n  young      flag  matched          (" in out
    assert "\n  templated  deny  condition false  (" in out
    assert "\n      [acct-1] 1/1 used, 0 remaining\n" in out
    assert "\n  tiered           count     throttle  (" in out and "\n      not applied: the maximum is null\n" in out
    assert "; account.payment_fingerprint is null: requests without it share this bucket" in out
    assert '\n  template_id("Summarise the ticket Summarise the ticket Summarise the tic… (210 characters)") = "' in out

    second = run("eval", "--policies", str(tmp_path), "--request", "-", "--format", "text", stdin=json.dumps(req))
    assert "\nlimits:\n" in second.stdout and "rules:" not in second.stdout and "computed:" not in second.stdout


def test_fmt_wraps_long_clauses_to_the_line_width(tmp_path: Path) -> None:
    pol = tmp_path / "main.policy"
    cond = " and ".join(f'account.tier != "tier-{i}"' for i in range(6))
    pol.write_text(f'rule r {{\n  deny when account.age_days < 7 and {cond}\n  reason "r"\n}}\n')
    assert run("fmt", "--check", str(tmp_path)).returncode == 1
    assert run("fmt", str(tmp_path)).returncode == 0
    wrapped = pol.read_text()
    assert wrapped.startswith('rule r {\n  deny when account.age_days < 7\n      and account.tier != "tier-0"\n')
    assert max(len(line) for line in wrapped.splitlines()) <= 100
    assert run("fmt", "--check", str(tmp_path)).returncode == 0
    assert run("lint", str(tmp_path)).returncode == 0
    # A narrower width, and a wider one that joins the lines again.
    assert run("fmt", "--line-width", "40", str(tmp_path)).returncode == 0
    assert max(len(line) for line in pol.read_text().splitlines()) <= 40
    assert run("fmt", "--line-width", "400", str(tmp_path)).returncode == 0
    assert pol.read_text().count("\n") == 4
