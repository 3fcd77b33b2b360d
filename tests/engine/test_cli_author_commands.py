"""lint, fmt and eval run as subprocesses, the way a user runs them: the new
user's path from a typo to a decision they can read."""

from __future__ import annotations

import json
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
    assert "rules and limits exercised" in r.stdout
    covered, total = r.stdout.split("rules and limits exercised")[0].split()[-1].split("/")
    assert covered == total


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
