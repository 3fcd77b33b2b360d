"""docs/language.md cannot drift from the language: every ```policy block must
lint without errors, every ```policy-error block must be rejected, and every
function, loader, clause and request field appears in a checked example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dsl.checker import check
from dsl.diagnostics import Diagnostic
from dsl.functions import FUNCTIONS, LOADERS
from dsl.parser import parse
from dsl.schema import all_paths

ROOT = Path(__file__).parents[2]
DOC = ROOT / "docs" / "language.md"
EXAMPLES = ROOT / "docs" / "examples"  # data paths in the examples resolve here

_FENCE = re.compile(r"^```(policy|policy-error)\n(.*?)^```\s*$", re.M | re.S)


def blocks() -> list[tuple[str, int, str]]:
    text = DOC.read_text(encoding="utf-8")
    return [(m.group(1), text.count("\n", 0, m.start()) + 2, m.group(2)) for m in _FENCE.finditer(text)]


def lint(text: str, line: int) -> list[Diagnostic]:
    module, diags = parse(text, f"docs/language.md:{line}")
    if any(d.is_error for d in diags):
        return diags
    _, cdiags = check([module], EXAMPLES)
    return diags + cdiags


GOOD = [(line, text) for kind, line, text in blocks() if kind == "policy"]
BAD = [(line, text) for kind, line, text in blocks() if kind == "policy-error"]


def test_the_gateway_guide_policies_lint() -> None:
    text = (ROOT / "docs" / "gateways.md").read_text(encoding="utf-8")
    found = [(text.count("\n", 0, m.start()) + 2, m.group(2)) for m in _FENCE.finditer(text) if m.group(1) == "policy"]
    assert any("attribute " in block for _, block in found)
    for line, block in found:
        module, diags = parse(block, f"docs/gateways.md:{line}")
        errors = [d for d in diags + check([module], EXAMPLES)[1] if d.is_error]
        assert not errors, "\n\n".join(d.render() for d in errors)


def test_the_reference_has_examples() -> None:
    assert len(GOOD) >= 25 and len(BAD) >= 10


@pytest.mark.parametrize("line,text", GOOD, ids=[f"line{line}" for line, _ in GOOD])
def test_example_lints_without_errors(line: int, text: str) -> None:
    errors = [d for d in lint(text, line) if d.is_error]
    assert not errors, "\n\n".join(d.render() for d in errors)


@pytest.mark.parametrize("line,text", BAD, ids=[f"line{line}" for line, _ in BAD])
def test_error_example_is_rejected(line: int, text: str) -> None:
    assert any(d.is_error for d in lint(text, line)), f"the example at docs/language.md:{line} is accepted"


def _good_text() -> str:
    return "\n".join(text for _, text in GOOD)


def test_every_function_and_loader_has_an_example() -> None:
    text = _good_text()
    missing = [f for f in list(FUNCTIONS) + list(LOADERS) if not re.search(rf"\b{f}\(", text)]
    assert not missing, f"no checked example calls {missing}"


def test_every_request_field_appears_in_an_example() -> None:
    text = _good_text()
    missing = [p for p in all_paths() if p not in text]
    assert not missing, f"no checked example reads {missing}"


@pytest.mark.parametrize(
    "clause",
    [
        "unless",
        "reason",
        "status",
        "retry_after",
        "header",
        "shadow",
        "key",
        "count",
        "sum",
        "distinct",
        "usage",
        "window",
        "max",
        "when",
        "record admitted",
        "record attempts",
        "on_error open",
        "on_error closed",
        "block key",
        "deny",
        "throttle",
        "flag",
        "policy",
        "let",
        "data",
        "measure",
    ],
)
def test_every_clause_is_documented(clause: str) -> None:
    doc = DOC.read_text(encoding="utf-8")
    assert f"`{clause}" in doc
    if clause not in ("record admitted", "on_error open"):  # the defaults: documented, not written
        assert re.search(rf"^\s*{clause}\b", _good_text(), re.M), f"no checked example uses `{clause}`"


def test_reading_a_measure_has_examples() -> None:
    # a measure read by a rule, a limit and another measure, and a reconciled measure
    text = _good_text()
    for where in (
        r"^\s*(deny|throttle|flag) when .*measures\.\w+",
        r"^\s*max .*measures\.\w+",
        r"^\s*sum .*measures\.\w+",
        r"^\s*header .*measures\.\w+",
    ):
        assert re.search(where, text, re.M), where
    assert "## Measures" in DOC.read_text(encoding="utf-8")


def test_the_function_table_lists_every_function() -> None:
    doc = DOC.read_text(encoding="utf-8")
    table = doc.split("## Functions", 1)[1].split("String functions", 1)[0]
    assert [f for f in FUNCTIONS if f"`{f}(" not in table] == []
