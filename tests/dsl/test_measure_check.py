"""The checker on measures: where `measures.NAME` may be read, names, and the
lint warnings a measure shares with limits (none for a measure nobody reads)."""

from __future__ import annotations

from dsl.checker import check
from dsl.diagnostics import Diagnostic
from dsl.parser import parse

CARDS = """
measure card_accounts {
  key account.payment_fingerprint
  distinct account.id
  window 1d
}
"""


def lint(text: str) -> list[Diagnostic]:
    module, diags = parse(text, "m.policy")
    assert not diags, diags
    _, cdiags = check([module])
    return cdiags


def codes(text: str) -> list[tuple[str, int]]:
    return sorted((d.code, d.line) for d in lint(text))


def test_a_measure_nobody_reads_is_not_a_warning() -> None:
    assert [d.code for d in lint(CARDS)] == ["W0312"]  # only its unguarded key


def test_a_key_that_reads_a_measure_through_a_let() -> None:
    diags = lint(
        CARDS + "let size = measures.card_accounts\nmeasure m {\n  key account.id, size\n  count\n  window 1h\n}\n"
    )
    (d,) = diags
    assert d.code == "E0212" and d.line == 9
    assert "reads `measures.card_accounts` (through a `let`: read at m.policy:7:12)" in d.message


def test_where_a_measure_may_be_read() -> None:
    ok = (
        CARDS
        + """
let big = measures.card_accounts > 3
measure m {
  key account.id
  sum if big then 2 else 1
  window 1h
  when measures.card_accounts != null
  unless measures.card_accounts > 100
}
measure d {
  key account.id
  distinct measures.card_accounts
  window 1h
}
limit l {
  key account.id, measures.m
  sum measures.d ?? 1
  window 1h
  max if big then 1 else measures.card_accounts ?? 10
  when measures.m > 0
  unless measures.d > 5
  reason "l"
  header "x-m" = measures.m
}
rule r {
  flag when big
  unless measures.d > 5
  reason "r"
  header "x-cards" = measures.card_accounts
}
"""
    )
    assert [d for d in lint(ok) if d.is_error] == []
    bad_usage = CARDS + (
        'limit l {\n  key account.id\n  sum 1\n  usage measures.card_accounts\n  window 1h\n  max 5\n  reason "l"\n}\n'
    )
    assert codes(bad_usage) == [("E0212", 10)]


def test_measures_is_reserved_and_shares_the_block_namespace() -> None:
    assert codes(CARDS + "let measures = 1\n") == [("E0209", 7)]
    assert codes(CARDS + 'data measures = strings("x.txt")\n') == [("E0209", 7)]
    dup = lint(CARDS + 'limit card_accounts {\n  key account.id\n  count\n  window 1m\n  max 5\n  reason "l"\n}\n')
    assert [(d.code, d.line, d.message) for d in dup] == [
        ("E0209", 7, "duplicate rule, limit or measure `card_accounts`")
    ]


def test_a_measure_is_typed_as_a_number() -> None:
    (d,) = lint(CARDS + 'rule r {\n  deny when measures.card_accounts == "x"\n  reason "r"\n}\n')
    assert d.code == "E0205"
    (d,) = lint(CARDS + 'rule r {\n  deny when measures.card_accounts\n  reason "r"\n}\n')
    assert d.code == "E0205" and "not float" in d.message


def test_measure_clauses_are_checked_like_a_limits() -> None:
    assert codes("measure m {\n  count\n}\n") == [("E0210", 1), ("E0210", 1)]  # no key, no window
    assert codes("measure m {\n  key account.id\n  window 1h\n}\n") == [("E0210", 1)]  # nothing to measure
    assert codes("measure m {\n  key account.id\n  count\n  sum 1\n  window 1h\n}\n") == [("E0211", 4)]
    assert codes("measure m {\n  key account.id\n  count\n  window 1h\n  when 1 < 2\n  when 1 > 2\n}\n") == [
        ("E0211", 6),
        ("W0303", 5),
        ("W0304", 6),
    ]
    assert codes("measure m {\n  key account.id\n  count\n  usage 1\n  window 90d\n}\n") == [("E0212", 4), ("E0216", 5)]


def test_lint_warnings_a_measure_shares_with_limits() -> None:
    assert codes("measure m {\n  key 1\n  count\n  window 1h\n}\n") == [("W0305", 2)]
    assert codes("measure m {\n  key account.id\n  distinct request.id\n  window 1h\n}\n") == [
        ("W0309", 3),
        ("W0312", 2),  # no guard for requests without an account
    ]
    assert codes(
        "measure m {\n  key account.id\n  count\n  window 1h\n  when account.age_days < 3 and account.age_days > 5\n"
        "  unless account.id == null\n}\n"
    ) == [("W0307", 5)]
