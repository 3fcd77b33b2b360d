"""`policyctl lint` for CI: SARIF validated against a schema, GitHub annotations
and text output against golden files, --strict, and W0308 (rule without a test)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from dsl.diagnostics import CODES
from policy_engine.cli.main import app
from policy_engine.cli.report_formats import DOCS_URL

DATA = Path(__file__).parents[1] / "data"
GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
SCHEMA = json.loads((DATA / "sarif-2.1.0-subset.schema.json").read_text())


@pytest.fixture(autouse=True)
def in_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DATA)  # relative paths in the output: golden files stay portable


def lint(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, ["lint", *args])
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.stdout


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def validate(doc: object) -> None:
    v = jsonschema.Draft7Validator(SCHEMA, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    errors = sorted(v.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_schema_is_itself_valid_and_rejects_bad_sarif() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    v = jsonschema.Draft7Validator(SCHEMA)
    good = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": []}]}
    assert v.is_valid(good)
    bad_level = json.loads(json.dumps(good))
    bad_level["runs"][0]["results"] = [{"ruleId": "E1", "level": "fatal", "message": {"text": "m"}}]
    assert not v.is_valid(bad_level)
    bad_line = json.loads(json.dumps(good))
    bad_line["runs"][0]["results"] = [
        {
            "message": {"text": "m"},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": "a"}, "region": {"startLine": 0}}}],
        }
    ]
    assert not v.is_valid(bad_line)
    assert not v.is_valid({**good, "version": "2.0.0"})
    assert not v.is_valid({"version": "2.1.0", "runs": [{"tool": {"driver": {}}}]})


def test_sarif_validates_and_is_consistent() -> None:
    code, out = lint("lint/broken.policy", "lint/warnings.policy", "--format", "sarif")
    assert code == 1
    doc = json.loads(out)
    validate(doc)
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    results = run["results"]
    assert {r["ruleId"] for r in results} == {"W0301", "E0201", "E0206", "W0307", "W0309", "W0312"}
    for r in results:
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]
        rule = rules[r["ruleIndex"]]
        assert rule["helpUri"] == f"{DOCS_URL}diagnostics.md#{r['ruleId'].lower()}"
        assert rule["helpUri"].startswith("https://") and rule["helpUri"] in rule["help"]["text"]
        assert r["level"] == ("error" if r["ruleId"].startswith("E") else "warning")
    check_golden("lint_broken.sarif.json", out)


def test_sarif_message_and_help_are_separate() -> None:
    code, out = lint("lint/broken.policy", "--format", "sarif")
    results = json.loads(out)["runs"][0]["results"]
    unknown = next(r for r in results if r["ruleId"] == "E0201")
    assert unknown["message"]["text"] == "unknown name `acount`"
    assert unknown["properties"]["help"] == "did you mean `account`?"
    assert not any("Help:" in r["message"]["text"] or "did you mean" in r["message"]["text"] for r in results)


def test_sarif_docs_url_is_configurable_and_must_be_absolute(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = lint("lint/broken.policy", "--format", "sarif", "--docs-url", "https://docs.example.org/pe")
    assert code == 1
    doc = json.loads(out)
    validate(doc)
    uris = {r["helpUri"] for r in doc["runs"][0]["tool"]["driver"]["rules"]}
    assert "https://docs.example.org/pe/diagnostics.md#e0201" in uris
    monkeypatch.setenv("POLICY_ENGINE_DOCS_URL", "https://mirror.example.org/docs/")
    doc = json.loads(lint("lint/broken.policy", "--format", "sarif")[1])
    assert doc["runs"][0]["tool"]["driver"]["rules"][0]["helpUri"].startswith("https://mirror.example.org/docs/diagn")
    res = CliRunner().invoke(app, ["lint", "lint/broken.policy", "--format", "sarif", "--docs-url", "docs/"])
    assert res.exit_code == 2 and "expected an absolute URL" in res.output


def test_sarif_rejects_a_relative_help_uri() -> None:
    v = jsonschema.Draft7Validator(SCHEMA)
    doc = {
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "x", "rules": [{"id": "E1", "helpUri": "docs/diagnostics.md#e1"}]}},
                "results": [],
            }
        ],
    }
    assert not v.is_valid(doc)


def test_ci_formats_name_files_relative_to_the_working_directory() -> None:
    absolute = str((DATA / "lint" / "broken.policy").resolve())
    _, out = lint(absolute, "--format", "github")
    assert out.count("::") and all(line.split(",")[0].endswith("file=lint/broken.policy") for line in out.splitlines())
    _, out = lint(absolute, "--format", "sarif")
    locs = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in json.loads(out)["runs"][0]["results"]
    }
    assert locs == {"lint/broken.policy"}


def test_sarif_names_a_file_outside_the_working_directory_by_its_uri(tmp_path: Path) -> None:
    (tmp_path / "p.policy").write_text("let unused = 1\n")
    _, out = lint(str(tmp_path / "p.policy"), "--format", "sarif")
    (result,) = json.loads(out)["runs"][0]["results"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == (tmp_path / "p.policy").as_uri()


def test_sarif_with_no_findings_validates() -> None:
    code, out = lint("policytests/demo/demo.policy", "--format", "sarif")
    assert code == 0
    validate(json.loads(out))


def test_github_annotations_golden() -> None:
    code, out = lint("lint/broken.policy", "lint/warnings.policy", "--format", "github")
    assert code == 1
    lines = out.splitlines()
    assert all(line.startswith(("::error file=", "::warning file=")) for line in lines)
    # message text escapes newlines; property values also escape ':' and ','
    check_golden("lint_broken.github.txt", out)


def test_text_output_golden() -> None:
    code, out = lint("lint/warnings.policy")
    assert code == 0
    check_golden("lint_warnings.txt", out)


def test_strict_turns_warnings_into_errors() -> None:
    code, out = lint("lint/warnings.policy", "--strict", "--format", "json")
    assert code == 1
    assert {d["severity"] for d in json.loads(out)["diagnostics"]} == {"error"}


def test_rule_without_a_test_is_w0308_only_when_tests_exist(tmp_path: Path) -> None:
    code, out = lint("policytests/demo", "--format", "json")
    assert code == 0
    found = [(d["code"], d["line"]) for d in json.loads(out)["diagnostics"]]
    assert found == [("W0308", 18), ("W0308", 23)]  # blocked_country, long_prompts
    # The same policy without tests beside it: no W0308.
    (tmp_path / "p.policy").write_text((DATA / "policytests/demo/demo.policy").read_text())
    code, out = lint(str(tmp_path), "--format", "json")
    assert code == 0 and json.loads(out)["diagnostics"] == []


def test_w0308_can_be_suppressed(tmp_path: Path) -> None:
    text = (DATA / "policytests/demo/demo.policy").read_text()
    text = text.replace("rule blocked_country", "# policy: ignore[W0308]\nrule blocked_country")
    (tmp_path / "p.policy").write_text(text)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "t.yaml").write_text("cases:\n  - name: c\n    expect: allow\n")
    code, out = lint(str(tmp_path), "--format", "json")
    names = [d["message"].split("`")[1] for d in json.loads(out)["diagnostics"]]
    assert names == ["new_unverified", "reasoning_probe", "long_prompts", "per_minute", "tokens_day"]


def test_every_code_is_documented() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "diagnostics.md").read_text()
    for code in CODES:
        assert f'<a id="{code.lower()}"></a>' in doc, f"{code} has no anchor in docs/diagnostics.md"
        assert f"### {code}" in doc


def _doc_examples() -> list[tuple[str, str]]:
    """(code, policy text) for each ```policy block under a `### CODE` heading."""
    import re

    doc = (Path(__file__).parents[2] / "docs" / "diagnostics.md").read_text()
    out = []
    for section in re.split(r"^### ", doc, flags=re.M)[1:]:
        code = section.split(":", 1)[0].strip()
        for block in re.findall(r"^```policy\n(.*?)^```", section, flags=re.M | re.S):
            out.append((code, block))
    return out


@pytest.mark.parametrize("code,text", _doc_examples(), ids=[c for c, _ in _doc_examples()])
def test_documented_example_produces_its_code(code: str, text: str, tmp_path: Path) -> None:
    from dsl.checker import check
    from dsl.parser import parse

    module, diags = parse(text, str(tmp_path / "example.policy"))
    if not any(d.is_error for d in diags):
        _, cdiags = check([module], tmp_path)
        diags = diags + cdiags
    assert code in {d.code for d in diags}, [d.render() for d in diags]


def test_most_codes_have_a_checked_example() -> None:
    documented = {c for c, _ in _doc_examples()}
    # Test-file codes have YAML examples (tests/engine/test_testing_doc.py runs them).
    without = {c for c in CODES if not c.startswith("T")} - documented
    # too large / needs a data file / needs tests / needs a price table
    assert without == {"E0105", "W0302", "W0308", "W0313"}
