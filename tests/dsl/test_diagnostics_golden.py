"""Golden diagnostics: each file under golden/diagnostics is a policy with a
mistake; its .out file is exactly what `policyctl lint` prints for it.
Regenerate with UPDATE_GOLDEN=1 after a deliberate change, and review the diff."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dsl.diagnostics import render_all
from dsl.load import load

GOLDEN = Path(__file__).parent / "golden" / "diagnostics"
CASES = sorted(GOLDEN.glob("*.policy"))


def render(path: Path) -> str:
    _, diags = load([path], base_dir=path.parent)
    text = render_all(diags)
    return text.replace(str(GOLDEN) + os.sep, "") + "\n"


def test_enough_kinds_of_mistake() -> None:
    codes = set()
    for case in CASES:
        _, diags = load([case], base_dir=case.parent)
        codes.update(d.code for d in diags)
    assert len(CASES) >= 15
    assert len(codes) >= 15, codes


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_golden(case: Path) -> None:
    out = case.with_suffix(".out")
    got = render(case)
    if os.environ.get("UPDATE_GOLDEN"):
        out.write_text(got)
    assert out.exists(), f"missing golden file {out.name}; run with UPDATE_GOLDEN=1"
    assert got == out.read_text()
    assert got.strip(), "every golden case must produce a diagnostic"
