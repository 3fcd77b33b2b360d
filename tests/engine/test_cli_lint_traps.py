"""The traps issue 17 found, each through `policyctl lint` as a subprocess: a key that
can be null, one cut expression giving one error at the cut, and the hints for
`allow` and for a second `unless`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

POLICYCTL = str(Path(sys.executable).with_name("policyctl"))


def lint(folder: Path, text: str, *args: str) -> subprocess.CompletedProcess[str]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "main.policy").write_text(text, encoding="utf-8")
    return subprocess.run(
        [POLICYCTL, "lint", *args, "main.policy"], capture_output=True, text=True, timeout=60, cwd=folder
    )


CARD_LIMIT_AND_MEASURE = """limit card_rate {
  key account.payment_fingerprint
  count
  window 1m
  max 60
  reason "too many requests on this card"
}

measure card_accounts {
  key account.payment_fingerprint
  distinct account.id
  window 1h
}
"""


def test_a_key_that_can_be_null_warns_for_limits_and_measures(tmp_path: Path) -> None:
    r = lint(tmp_path, CARD_LIMIT_AND_MEASURE)
    assert r.returncode == 0, r.stdout  # a warning
    assert r.stdout == (
        "main.policy:2:7: warning[W0312]: `account.payment_fingerprint` can be null: every request without it "
        "counts in one shared bucket (`-`) of limit `card_rate`\n"
        "  |\n"
        "2 |   key account.payment_fingerprint\n"
        "  |       ^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
        "  = help: guard it: `when account.payment_fingerprint != null`\n"
        "\n"
        "main.policy:10:7: warning[W0312]: `account.payment_fingerprint` can be null: every request without it "
        "counts in one shared bucket (`-`) of measure `card_accounts`\n"
        "   |\n"
        "10 |   key account.payment_fingerprint\n"
        "   |       ^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
        "   = help: guard it: `when account.payment_fingerprint != null`\n"
        "\n"
        "1 file checked: 0 errors, 2 warnings\n"
    )
    assert lint(tmp_path, CARD_LIMIT_AND_MEASURE, "--strict").returncode == 1
    # The guards the hint gives silence it.
    guarded = CARD_LIMIT_AND_MEASURE.replace(
        "  window 1m\n", "  window 1m\n  when account.payment_fingerprint != null\n"
    ).replace("  window 1h\n", "  window 1h\n  unless account.payment_fingerprint == null\n")
    r = lint(tmp_path, guarded, "--strict")
    assert r.returncode == 0 and r.stdout == "1 file checked: 0 errors, 0 warnings\n"


def test_the_shipped_policies_lint_clean_of_null_keys() -> None:
    root = Path(__file__).resolve().parents[2]
    r = subprocess.run(
        [POLICYCTL, "lint", "--format", "json", "policies"], capture_output=True, text=True, timeout=120, cwd=root
    )
    assert r.returncode == 0, r.stdout
    assert [d for d in json.loads(r.stdout)["diagnostics"] if d["code"] == "W0312"] == []


CUT = """let internal_eval = "internal" in account.labels

limit requests_per_minute {
  key account.id
  count
  window 1m
  max 60 +
  unless internal_eval
  reason "too many requests"
}
"""


def test_one_cut_expression_is_one_error_at_the_cut(tmp_path: Path) -> None:
    r = lint(tmp_path, CUT)
    assert r.returncode == 1
    assert r.stdout == (
        "main.policy:7:10: error[E0101]: incomplete expression: nothing after `+`\n"
        "  |\n"
        "7 |   max 60 +\n"
        "  |          ^\n"
        "  = help: `unless` on the next line starts a new clause: finish the expression or remove `+`\n"
        "\n"
        "1 file checked: 1 error, 0 warnings\n"
    )
    # The same with a comment and a blank line between, and a bracket left open.
    r = lint(tmp_path, CUT.replace("  max 60 +\n", "  max (60 * # per tier soon\n\n"))
    assert r.stdout.splitlines()[0] == "main.policy:7:11: error[E0101]: incomplete expression: nothing after `*`"
    assert r.stdout.endswith("1 file checked: 1 error, 0 warnings\n")
    # In a rule's condition, before `reason`.
    rule = 'rule r {\n  deny when account.age_days < 7 and\n  reason "new"\n}\n'
    r = lint(tmp_path, rule)
    assert r.stdout.splitlines()[0] == "main.policy:2:34: error[E0101]: incomplete expression: nothing after `and`"
    assert "`reason` on the next line starts a new clause" in r.stdout


def test_a_keyword_at_the_front_of_a_name_is_reported_as_the_name(tmp_path: Path) -> None:
    r = lint(tmp_path, 'rule r {\n  deny when account.tier == "x" internal_eval\n  reason "x"\n}\n')
    assert r.stdout.splitlines()[0] == "main.policy:2:33: error[E0101]: unexpected name `internal_eval`"
    assert "^^^^^^^^^^^^^" in r.stdout


def test_allow_and_a_second_unless_get_hints(tmp_path: Path) -> None:
    r = lint(tmp_path, 'rule r {\n  allow when account.tier == "pro"\n  reason "x"\n}\n')
    assert r.returncode == 1
    assert "main.policy:2:3: error[E0101]: unexpected name `allow`" in r.stdout
    assert "= help: a rule denies, throttles or flags; to let some requests through it, add `unless" in r.stdout
    assert "declare `exempt NAME { when <condition> }`" in r.stdout
    twice = 'rule r {\n  deny when account.age_days < 2\n  unless account.tier == "pro"\n'
    twice += '  unless account.tier == "team"\n  reason "x"\n}\n'
    r = lint(tmp_path, twice)
    assert "main.policy:4:3: error[E0211]: `unless` given twice in `r`" in r.stdout
    assert '= help: join them with `or`: `unless account.tier == "pro" or account.tier == "team"`' in r.stdout
