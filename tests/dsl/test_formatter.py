"""Formatter: golden output, comments kept, idempotence on generated policies."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsl.formatter import LINE_WIDTH, dump, format_source
from dsl.parser import parse

GOLDEN = Path(__file__).parent / "golden" / "format"


@pytest.mark.parametrize("case", sorted(GOLDEN.glob("*.policy")), ids=lambda p: p.stem)
def test_golden(case: Path) -> None:
    got = format_source(case.read_text(), case.name)
    expected = case.with_suffix(".formatted")
    if os.environ.get("UPDATE_GOLDEN"):
        expected.write_text(got)
    assert got == expected.read_text()
    assert format_source(got, case.name) == got


def test_comments_survive() -> None:
    src = (GOLDEN / "messy.policy").read_text()
    out = format_source(src)
    for line in src.splitlines():
        if "#" in line:
            comment = line[line.index("#") :].strip()
            assert comment in out


def test_refuses_broken_input() -> None:
    from dsl.diagnostics import PolicyError

    with pytest.raises(PolicyError):
        format_source("rule x {\n  deny when (\n}\n")


# ---------------------------------------------------------------- generated

FIELDS = ["account.age_days", "request.max_tokens", "request.prompt_tokens", "client.asn", "usage.prompt_tokens"]
STRFIELDS = ["account.tier", "account.id", "request.model", "client.country"]


def _ws() -> st.SearchStrategy[str]:
    return st.sampled_from(["", " ", "  "])


MEASURE_READS = ["measures.m0", "measures.m1"]  # read from rules, limits and later measures

num_atoms = st.one_of(
    st.sampled_from(FIELDS),
    st.sampled_from(MEASURE_READS),
    st.integers(0, 10**6).map(str),
    st.sampled_from(["10k", "2M", "1_000", "0.5", "1e3"]),
)


def _num(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, st.sampled_from(["+", "-", "*", "/", "%", "??"]), children, _ws()).map(
            lambda t: f"({t[0]}{t[3]}{t[1]}{t[3]}{t[2]})"
        ),
        children.map(lambda c: f"-{c}"),
        st.tuples(children, children).map(lambda t: f"least({t[0]}, {t[1]})"),
    )


numbers = st.recursive(num_atoms, _num, max_leaves=6)

comparisons = st.one_of(
    st.tuples(numbers, st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), numbers).map(
        lambda t: f"{t[0]} {t[1]} {t[2]}"
    ),
    st.tuples(st.sampled_from(STRFIELDS), st.sampled_from(['"pro"', '"a\\"b"', 'r"x\\d"'])).map(
        lambda t: f"{t[0]} == {t[1]}"
    ),
    st.sampled_from(STRFIELDS).map(lambda f: f'{f} in ["a", "b"]'),
    st.sampled_from(STRFIELDS).map(lambda f: f'{f} not in ["a"]'),
    st.just('request.prompt matches r"step.by.step"'),
    st.just('account.verification >= "phone"'),
)


def _bool(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, st.sampled_from(["and", "or"]), children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        children.map(lambda c: f"not ({c})"),
        st.tuples(children, children, children).map(lambda t: f"(if {t[0]} then {t[1]} else {t[2]})"),
    )


conditions = st.recursive(comparisons, _bool, max_leaves=6)


@st.composite
def policies(draw: st.DrawFn) -> str:
    parts = []
    for i in range(draw(st.integers(1, 4))):
        cond = draw(conditions)
        effect = draw(st.sampled_from(["deny", "throttle", "flag"]))
        comment = draw(st.sampled_from(["", "  # note", "\n  # lead"]))
        parts.append(f'rule r{i} {{{comment}\n  {effect} when {cond}\n  reason "reason {i}"\n}}\n')
    if draw(st.booleans()):
        parts.append(
            f"limit l {{\n  key account.id\n  sum {draw(numbers)}\n  window 1h\n  max {draw(numbers)}\n"
            '  reason "l"\n}\n'
        )
    for j in range(draw(st.integers(0, 2))):
        what = draw(
            st.one_of(
                st.just("count"),
                numbers.map(lambda n: f"sum {n}"),
                st.sampled_from(STRFIELDS).map(lambda f: f"distinct {f}"),
            )
        )
        guards = "".join(f"\n  {kw} {draw(conditions)}" for kw in ("when", "unless") if draw(st.booleans()))
        comment = draw(st.sampled_from(["", "  # m", "\n  # lead"]))
        parts.append(
            f"measure m{j} {{{comment}\n  key {draw(st.sampled_from(STRFIELDS))}\n  {what}\n"
            f"  window {draw(st.sampled_from(['1h', '30m', '1d']))}{guards}\n}}\n"
        )
    return "\n".join(parts)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies())
def test_idempotent_and_meaning_preserving(src: str) -> None:
    module, diags = parse(src)
    assert not [d for d in diags if d.is_error], src
    once = format_source(src)
    twice = format_source(once)
    assert once == twice
    again, _ = parse(once)
    assert dump(again) == dump(module)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies(), st.sampled_from([20, 40, 60]))
def test_wrapping_to_a_narrow_width_is_idempotent_and_meaning_preserving(src: str, width: int) -> None:
    module, _ = parse(src)
    once = format_source(src, width=width)  # refuses output whose AST differs
    assert format_source(once, width=width) == once
    again, _ = parse(once)
    assert dump(again) == dump(module)
    assert format_source(once) == format_source(src)  # the default width joins the lines again


def test_long_clauses_are_wrapped_to_the_line_width() -> None:
    out = (GOLDEN / "long.formatted").read_text()
    assert max(len(line) for line in out.splitlines()) <= LINE_WIDTH
    src = (GOLDEN / "long.policy").read_text()
    assert max(len(line) for line in src.splitlines()) > LINE_WIDTH
    # Each continuation line starts with its operator, never with a clause word.
    assert "\n      and (measures.card_young >= 3\n        or client.country" in out
    assert '\n  max if account.tier == "enterprise" then null\n      else if account.tier == "pro" then' in out
    # What fits stays on one line.
    assert "\nlet short = account.age_days < 7\n" in out


def test_the_wrapping_example_in_the_language_reference_is_canonical() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "language.md").read_text()
    example = doc.split("each continuation line starting with its operator:\n\n```policy\n", 1)[1].split("```", 1)[0]
    assert "\n      and (" in example
    assert format_source(example) == example
