"""Budgets the way providers sell them, through the commands a user runs:
calendar windows in `policyctl test` and `eval`."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from policy_engine.cli.main import app


def policyctl(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, list(args))
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.stdout


MONTHLY = """
limit monthly_requests {
  key account.id
  count
  window calendar month in "Europe/Paris"
  max 2
  reason "monthly quota reached"
}
"""


def test_policy_tests_cross_a_month_end(tmp_path: Path) -> None:
    (tmp_path / "p.policy").write_text(MONTHLY)
    (tmp_path / "t.test.yaml").write_text(
        """
defaults:
  account: {id: a}
cases:
  - name: the quota comes back at midnight of the 1st, Paris time
    start: 2026-01-31T23:36:40+01:00
    steps:
      - {repeat: 2, expect: allow}
      - expect: {effect: throttle, rules: [monthly_requests], headers: {retry-after: "1400", x-ratelimit-reset: "1400"}}
      - {at: "2026-01-31T23:59:59+01:00", expect: throttle}
      - {at: "2026-01-31T23:00:00Z", expect: allow}
"""
    )
    code, out = policyctl("test", str(tmp_path))
    assert code == 0, out
    assert "PASS  the quota comes back at midnight of the 1st" in out
    (tmp_path / "u.test.yaml").write_text(
        "cases:\n  - name: no offset\n    start: 2026-01-31T23:36:40\n    expect: allow\n"
    )
    code, out = policyctl("test", str(tmp_path / "u.test.yaml"))
    assert code == 1 and "u.test.yaml:3:12: error[T0403]: cases[0].start:" in out, out
    assert "2026-01-31T23:36:40 has no UTC offset: add one, e.g. Z or +01:00" in out


def test_eval_explains_a_calendar_window(tmp_path: Path) -> None:
    (tmp_path / "p.policy").write_text(MONTHLY)
    req = tmp_path / "r.json"
    req.write_text(json.dumps({"request": {"ts": 1769899000.0}, "account": {"id": "a"}}))
    code, out = policyctl("eval", "--policies", str(tmp_path), "--request", str(req), "--explain")
    assert code == 0, out
    doc = json.loads(out)
    (entry,) = [t for t in doc["trace"] if t.get("limit") == "monthly_requests"]
    assert entry["calendar"] == 'calendar month in "Europe/Paris"'
    assert entry["remaining"] == 1
