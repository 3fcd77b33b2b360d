"""`policyctl test`: the runner (policy_engine.testing) and the command."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from policy_engine.cli.main import app
from policy_engine.testing import discover, run_tests

DATA = Path(__file__).parents[1] / "data" / "policytests"
GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


@pytest.fixture
def in_data(monkeypatch: pytest.MonkeyPatch) -> Path:
    # Relative paths in the output, so golden files do not depend on the checkout.
    monkeypatch.chdir(DATA)
    return DATA


def policyctl(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, list(args))
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.stdout


def _untimed(text: str) -> str:
    text = re.sub(r" in \d+\.\d+s ", " in 0.00s ", text)
    return re.sub(r'time="[\d.]+"', 'time="0"', text)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def test_passing_suite_exits_0(in_data: Path) -> None:
    code, out = policyctl("test", "demo")
    assert code == 0, out
    assert out.count("  PASS  ") == 6
    assert "FAIL" not in out
    assert re.search(r"=+ 6 passed in \d+\.\d\ds =+\n$", out)


def test_runner_api_counts_and_lines(in_data: Path) -> None:
    res = run_tests([Path("demo")])
    assert res.ok and len(res.cases) == 6
    burst = next(c for c in res.cases if c.name.startswith("a burst"))
    assert burst.where == "demo/tests/demo.yaml:26"


def test_failing_case_diff_matches_golden(in_data: Path) -> None:
    code, out = policyctl("test", "failing")
    assert code == 1
    check_golden("policy_test_failing.txt", _untimed(out))


def test_invalid_test_file_is_an_error_with_its_line(in_data: Path) -> None:
    code, out = policyctl("test", "broken/broken.test.yaml")
    assert code == 1
    assert "ERROR broken/broken.test.yaml:4: invalid test file" in out
    assert "$.cases[0].steps[0].acount: unknown field" in out
    assert "0 passed, 1 error" in out


def test_junit_xml_parses_and_counts(in_data: Path) -> None:
    code, out = policyctl("test", "failing", "demo", "--format", "junit")
    assert code == 1
    root = ET.fromstring(out.encode())
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("10", "3", "0")
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"failing/failing.test.yaml", "demo/tests/demo.yaml"}
    cases = suites["failing/failing.test.yaml"].findall("testcase")
    assert [c.get("name") for c in cases] == [
        "passes", "wrong effect and reason", "the fourth request is expected to pass", "a typo in a field",
    ]
    fail = cases[1].find("failure")
    assert fail is not None and fail.get("message") == "step 1: wrong effect, reason, rules"
    assert '+ actual    "deny"' in (fail.text or "")
    assert cases[0].find("failure") is None and cases[1].get("line") == "11"
    check_golden("policy_test_failing.junit.xml", _untimed(policyctl("test", "failing", "--format", "junit")[1]))


def test_coverage_lists_rules_and_limits_never_exercised(in_data: Path) -> None:
    code, out = policyctl("test", "demo", "--coverage")
    assert code == 0
    assert "demo: 4/6 rules and limits exercised" in out
    missing = re.findall(r"never (?:matched|exceeded): (rule|limit) (\w+)", out)
    assert missing == [("rule", "blocked_country"), ("rule", "long_prompts")]
    res = run_tests([Path("demo")], coverage=True)
    cov = res.coverage["demo"]
    assert {"new_unverified", "reasoning_probe", "per_minute", "tokens_day"} == cov.exercised


def test_shadow_and_clock_semantics(tmp_path: Path) -> None:
    (tmp_path / "p.policy").write_text((DATA / "demo" / "demo.policy").read_text())
    (tmp_path / "t.test.yaml").write_text(
        """
defaults:
  account: {id: a, age_days: 100, verification: kyc}
cases:
  - name: shadow rules are reported but not enforced
    request: {prompt_tokens: 200000}
    expect: {effect: allow, shadow_rules: [long_prompts]}
  - name: a window slides back under the max
    start: 960
    steps:
      - {repeat: 3, expect: allow}
      - {expect: throttle}
      - {after: 30s, expect: throttle}
      - {request: {ts: 1200}, expect: allow}
"""
    )
    res = run_tests([tmp_path], coverage=True)
    assert res.ok, [c.failure for c in res.cases]
    assert "long_prompts" in res.coverage[str(tmp_path)].exercised


def test_wrong_expectation_on_a_later_repetition_is_reported(tmp_path: Path) -> None:
    (tmp_path / "p.policy").write_text((DATA / "demo" / "demo.policy").read_text())
    (tmp_path / "t.test.yaml").write_text(
        "defaults: {account: {id: a}}\ncases:\n  - name: all allowed?\n    repeat: 5\n    expect: allow\n"
    )
    res = run_tests([tmp_path])
    (case,) = res.cases
    assert case.failure is not None
    assert (case.failure.step, case.failure.repetition, case.failure.repeat) == (1, 4, 5)


def test_discovery(tmp_path: Path) -> None:
    (tmp_path / "a.policy").write_text("")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "x.yaml").write_text("")
    (tmp_path / "y.test.yaml").write_text("")
    (tmp_path / "other.yaml").write_text("")  # neither *.test.yaml nor in tests/
    found = {p.relative_to(tmp_path).as_posix() for p in discover([tmp_path])}
    assert found == {"tests/x.yaml", "y.test.yaml"}
    assert {p.name for p in discover([tmp_path / "a.policy"])} == {"x.yaml", "y.test.yaml"}


def test_no_tests_found_is_a_usage_error(tmp_path: Path) -> None:
    code, _ = policyctl("test", str(tmp_path))
    assert code == 2


def test_policy_that_does_not_load_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "p.policy").write_text("rule r {\n  deny when nope\n  reason \"x\"\n}\n")
    (tmp_path / "t.test.yaml").write_text("cases:\n  - name: c\n    expect: allow\n")
    res = run_tests([tmp_path])
    assert not res.ok and len(res.errors) == 1
    assert "does not load" in res.errors[0].message and "E0201" in res.errors[0].message


# --- measures: expect.measures, coverage, W0308 ---------------------------------------------


def test_expected_measures_pass_and_count_for_coverage(in_data: Path) -> None:
    code, out = policyctl("test", "measures", "--coverage")
    assert code == 0, out
    assert "measures: 4/5 rules, limits and measures exercised" in out
    # card_accounts and young_requests are read by a matched rule, prompts_per_account expected by a case
    assert re.findall(r"never (?:matched|exceeded|read): (\w+) (\w+)", out) == [("measure", "tokens_per_account")]
    cov = run_tests([Path("measures")], coverage=True).coverage["measures"]
    assert cov.exercised == {"shared_card_young", "card_accounts", "young_requests", "prompts_per_account"}


def test_a_rule_reading_a_measure_covers_it_transitively(tmp_path: Path) -> None:
    (tmp_path / "p.policy").write_text(
        "measure base {\n  key account.id\n  count\n  window 1h\n}\n\n"
        "measure score {\n  key account.id\n  sum if measures.base > 1 then 2 else 0\n  window 1h\n}\n\n"
        "let hot = measures.score >= 2\n\n"
        "rule r {\n  flag when hot\n  reason \"hot\"\n}\n")
    (tmp_path / "t.test.yaml").write_text(
        "defaults: {account: {id: a}}\ncases:\n  - name: c\n    steps:\n      - {expect: allow}\n"
        "      - {expect: {effect: flag, rules: [r]}}\n")
    res = run_tests([tmp_path], coverage=True)
    assert res.ok and res.coverage[str(tmp_path)].missing == []


def test_wrong_measure_values_are_shown(tmp_path: Path) -> None:
    (tmp_path / "p.policy").write_text((DATA / "measures" / "measures.policy").read_text())
    (tmp_path / "t.test.yaml").write_text(
        "defaults: {account: {id: a, age_days: 400, payment_fingerprint: pf-1}}\n"
        "cases:\n  - name: off by one\n    steps:\n      - expect: allow\n      - account: {id: b}\n"
        "        expect: {effect: allow, measures: {card_accounts: 3, young_requests: {at_least: 1}}}\n")
    res = run_tests([tmp_path])
    (case,) = res.cases
    assert case.failure is not None and case.failure.step == 2
    (m,) = case.failure.mismatches
    assert (m.field, m.expected, m.actual) == ("measures", {"card_accounts": 3, "young_requests": {"at_least": 1}},
                                               {"card_accounts": 2.0, "young_requests": 0.0})
    code, out = policyctl("test", str(tmp_path))
    assert code == 1
    assert "  measures:\n    - expected to include  {card_accounts: 3, young_requests: {at_least: 1}}\n" \
           "    + actual               {card_accounts: 2, young_requests: 0}" in out
    assert "measures.card_accounts[pf-1] 2; measures.young_requests[pf-1] 0 (read)" in out


def test_an_unknown_measure_in_expect_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "p.policy").write_text((DATA / "measures" / "measures.policy").read_text())
    (tmp_path / "t.test.yaml").write_text(
        "cases:\n  - name: typo\n    account: {id: a}\n    expect:\n      effect: allow\n"
        "      measures: {card_acounts: 1}\n")
    code, out = policyctl("test", str(tmp_path))
    assert code == 1
    assert "t.test.yaml:6: expect.measures: unknown measure `card_acounts` (did you mean `card_accounts`?)" in out
    (tmp_path / "t.test.yaml").write_text(
        "cases:\n  - name: no bound\n    account: {id: a}\n    expect: {effect: allow, measures: {card_accounts: {}}}\n")
    code, out = policyctl("test", str(tmp_path))
    assert code == 1 and "give at_least, at_most or both" in out


def test_lint_warns_about_a_measure_no_test_reads(in_data: Path) -> None:
    code, out = policyctl("lint", "measures")
    assert code == 0
    assert "warning[W0308]: measure `tokens_per_account` has no test" in out
    assert out.count("W0308") == 1
