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


def test_invalid_test_file_errors_point_at_what_the_author_wrote(in_data: Path) -> None:
    code, out = policyctl("test", "broken/broken.test.yaml")
    assert code == 1
    f = "broken/broken.test.yaml"
    listed = re.findall(r"^  ERROR (\S+): (.*)$", out, flags=re.M)
    assert listed == [
        (f"{f}:5:22", "`maybe` is not an effect (allow, flag, throttle or deny)"),
        (f"{f}:6:5", "unknown key `acount`"),
        (f"{f}:8:5", "`account` beside `steps:`"),
        (f"{f}:10:17", "`allowed` is not an effect (allow, flag, throttle or deny)"),
        (f"{f}:12:22", "unknown field `age_day`"),
        (f"{f}:13:36", "`rules: []` always holds: it lists what the decision must contain"),
    ]
    # One-step cases never name a `steps[0]` or an `effect` key the author did not write.
    assert "steps[0]" not in out and "expect.effect" not in out
    assert (
        f"{f}:6:5: error[T0402]: unknown key `acount`\n  |\n6 |     acount: {{id: a}}\n  |     ^^^^^^\n"
        "  = help: did you mean `account`?" in out
    )
    assert (
        "= help: a case with `steps:` takes `account` in a step, or under the case's `defaults:` "
        "for every step: `defaults: {account: ...}`" in out
    )
    assert "10 |       - expect: allowed\n   |                 ^^^^^^^\n   = help: did you mean `allow`?" in out
    assert "= help: did you mean `age_days`?" in out
    assert "= help: to assert that no rule or limit fired, write `no_rules: true`" in out
    assert "0 passed, 6 errors" in out


@pytest.mark.parametrize(
    "text,where,message",
    [
        (
            "cases:\n  - name: c\n    expect: {effect: allow\n",
            "4:1",
            "invalid YAML: expected ',' or '}', but got '<stream end>' (while parsing a flow mapping at line 3)",
        ),
        ("- just a list\n", "1:1", "a test file is a mapping with `cases:`"),
        ("cases:\n  - name: c\n    expect: {rules: [r]}\n", "3:13", "missing `effect` in cases[0].expect"),
        ("cases:\n  - name: c\n    every: soon\n", "3:12", "'soon' is not a duration"),
        (
            "cases:\n  - name: c\n    expect: {effect: allow, measures: {m: {at_least: null}}}\n",
            "3:43",
            "a range needs a bound",
        ),
        (
            "cases:\n  - name: c\n    expect: {effect: allow, no_rules: false}\n",
            "3:39",
            "`no_rules: false` asserts nothing",
        ),
        (
            "cases:\n  - name: c\n    expect: {effect: allow, rules: [r], no_rules: true}\n",
            "3:13",
            "give one of `rules` and `no_rules`",
        ),
        (
            "cases:\n  - name: c\n    expect: {effect: allow, limits: {l: {}}}\n",
            "3:41",
            "an empty limit expectation asserts nothing",
        ),
        ("defaults:\n  acount: {id: a}\ncases:\n  - name: c\n", "2:3", "unknown section `acount`"),
        ("cases:\n  - name: c\n    defualts: {}\n", "3:5", "unknown key `defualts`"),
    ],
)
def test_test_file_mistakes_are_located(tmp_path: Path, text: str, where: str, message: str) -> None:
    (tmp_path / "p.policy").write_text((DATA / "demo" / "demo.policy").read_text())
    (tmp_path / "t.test.yaml").write_text(text)
    code, out = policyctl("test", str(tmp_path / "t.test.yaml"))
    assert code == 1, out
    assert f"t.test.yaml:{where}: error[T04" in out and message in out, out


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
        "passes",
        "wrong effect and reason",
        "the fourth request is expected to pass",
        "exact rules and limit state",
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
    (tmp_path / "p.policy").write_text('rule r {\n  deny when nope\n  reason "x"\n}\n')
    (tmp_path / "t.test.yaml").write_text("cases:\n  - name: c\n    expect: allow\n")
    res = run_tests([tmp_path])
    assert not res.ok and len(res.errors) == 1
    assert "does not load" in res.errors[0].message and "E0201" in res.errors[0].render()


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
        'rule r {\n  flag when hot\n  reason "hot"\n}\n'
    )
    (tmp_path / "t.test.yaml").write_text(
        "defaults: {account: {id: a}}\ncases:\n  - name: c\n    steps:\n      - {expect: allow}\n"
        "      - {expect: {effect: flag, rules: [r]}}\n"
    )
    res = run_tests([tmp_path], coverage=True)
    assert res.ok and res.coverage[str(tmp_path)].missing == []


def test_wrong_measure_values_are_shown(tmp_path: Path) -> None:
    (tmp_path / "p.policy").write_text((DATA / "measures" / "measures.policy").read_text())
    (tmp_path / "t.test.yaml").write_text(
        "defaults: {account: {id: a, age_days: 400, payment_fingerprint: pf-1}}\n"
        "cases:\n  - name: off by one\n    steps:\n      - expect: allow\n      - account: {id: b}\n"
        "        expect: {effect: allow, measures: {card_accounts: 3, young_requests: {at_least: 1}}}\n"
    )
    res = run_tests([tmp_path])
    (case,) = res.cases
    assert case.failure is not None and case.failure.step == 2
    (m,) = case.failure.mismatches
    assert (m.field, m.expected, m.actual) == (
        "measures",
        {"card_accounts": 3, "young_requests": {"at_least": 1}},
        {"card_accounts": 2.0, "young_requests": 0.0},
    )
    code, out = policyctl("test", str(tmp_path))
    assert code == 1
    assert (
        "  measures:\n    - expected to include  {card_accounts: 3, young_requests: {at_least: 1}}\n"
        "    + actual               {card_accounts: 2, young_requests: 0}" in out
    )
    assert "measures.card_accounts[pf-1] 2; measures.young_requests[pf-1] 0 (read)" in out


def test_an_unknown_measure_in_expect_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "p.policy").write_text((DATA / "measures" / "measures.policy").read_text())
    (tmp_path / "t.test.yaml").write_text(
        "cases:\n  - name: typo\n    account: {id: a}\n    expect:\n      effect: allow\n"
        "      measures: {card_acounts: 1}\n"
    )
    code, out = policyctl("test", str(tmp_path))
    assert code == 1
    assert "t.test.yaml:6:18: error[T0405]: the policy has no measure `card_acounts`" in out
    assert "= help: did you mean `card_accounts`?" in out
    (tmp_path / "t.test.yaml").write_text(
        "cases:\n  - name: no bound\n    account: {id: a}\n    expect: {effect: allow, measures: {card_accounts: {}}}\n"
    )
    code, out = policyctl("test", str(tmp_path))
    assert code == 1 and "a range needs a bound" in out and "give at_least, at_most or both" in out


def test_lint_warns_about_a_measure_no_test_reads(in_data: Path) -> None:
    code, out = policyctl("lint", "measures")
    assert code == 0
    assert "warning[W0308]: measure `tokens_per_account` has no test" in out
    assert out.count("W0308") == 1


# --- exact forms and limit state ------------------------------------------------------------


LIMITED = """limit per_minute {
  key account.id
  count
  window 1m
  max 2
  reason "too many requests"
}

limit free_tokens {
  key account.id
  sum request.max_tokens ?? 100
  window 1h
  max 1000
  when account.tier == "free"
  reason "free tier tokens"
}

rule tagged {
  flag when "watch" in account.labels
  reason "watched"
}
"""


def test_limit_state_exact_rules_and_no_rules_pass(tmp_path: Path) -> None:
    (tmp_path / "p.policy").write_text(LIMITED)
    (tmp_path / "t.test.yaml").write_text("""
defaults:
  account: {id: a, tier: pro}
  request: {max_tokens: 300}
cases:
  - name: the budget counts, the free tier limit does not apply
    steps:
      - expect:
          effect: allow
          no_rules: true
          limits: {per_minute: {used: 1, remaining: 1, max: 2, over: false, key: a}, free_tokens: null}
      - account: {tier: free}
        expect: {effect: allow, limits: {per_minute: {used: 2, remaining: 0}, free_tokens: {used: 300}}}
      - account: {labels: [watch]}
        expect:
          effect: throttle
          rules_exactly: [tagged, per_minute]
          flags: [tagged]
          limits: {per_minute: {used: {at_least: 2, at_most: 2}, over: true}}
""")
    code, out = policyctl("test", str(tmp_path))
    assert code == 0, out
    assert "1 passed" in out


@pytest.mark.parametrize(
    "expect,field,expected,actual",
    [
        (
            "{effect: allow, limits: {free_tokens: {used: 100}}}",
            "limits",
            "{free_tokens: {used: 100}}",
            "{free_tokens: null}",
        ),
        (
            "{effect: allow, limits: {per_minute: null}}",
            "limits",
            "{per_minute: null}",
            '{per_minute: {key: "a", used: 1, max: 2, over: false}}',
        ),
        ("{effect: flag, rules_exactly: [per_minute]}", "rules_exactly", '["per_minute"]', '["tagged"]'),
        ("{effect: flag, no_rules: true}", "no_rules", "[]", '["tagged"]'),
    ],
)
def test_limit_state_and_exact_rules_fail_with_a_diff(
    tmp_path: Path, expect: str, field: str, expected: str, actual: str
) -> None:
    (tmp_path / "p.policy").write_text(LIMITED)
    labels = "[watch]" if "flag" in expect else "[]"
    (tmp_path / "t.test.yaml").write_text(
        f"cases:\n  - name: c\n    account: {{id: a, labels: {labels}}}\n    expect: {expect}\n"
    )
    code, out = policyctl("test", str(tmp_path))
    assert code == 1, out
    label = "expected exactly" if "rules" in field else "expected to include"
    assert f"  {field}:\n    - {label}  {expected}\n" in out, out
    assert f"    + actual{' ' * (len(label) - 6)}  {actual}\n" in out, out


def test_unknown_rule_and_limit_names_in_expectations(tmp_path: Path) -> None:
    (tmp_path / "p.policy").write_text(LIMITED)
    (tmp_path / "t.test.yaml").write_text(
        "cases:\n  - name: c\n    account: {id: a}\n"
        "    expect: {effect: allow, rules_exactly: [taged], limits: {per_minut: {used: 1}}}\n"
    )
    code, out = policyctl("test", str(tmp_path))
    assert code == 1
    assert "t.test.yaml:4:45: error[T0405]: the policy has no rule or limit `taged`" in out
    assert "t.test.yaml:4:62: error[T0405]: the policy has no limit `per_minut`" in out
    assert out.count("= help: did you mean") == 2
