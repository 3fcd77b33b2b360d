"""The semantic lint pass (dsl/semantic.py): conservative warnings with stable codes."""

from __future__ import annotations

import pytest

from dsl.checker import check
from dsl.diagnostics import CODES, Diagnostic
from dsl.parser import parse


# Requests without an account are refused, so a limit keyed on account.id needs no guard (W0312).
IDENTIFIED = 'rule anonymous {\n  deny when account.id == null\n  reason "anonymous"\n}\n'


def lint(text: str, identified: bool = True) -> list[Diagnostic]:
    module, diags = parse(text + (IDENTIFIED if identified else ""), "t.policy")
    assert not diags, diags
    _, cdiags = check([module])
    return cdiags


def codes(text: str) -> list[tuple[str, int]]:
    return [(d.code, d.line) for d in lint(text)]


def rule(name: str, cond: str, effect: str = "deny", extra: str = "") -> str:
    return f'rule {name} {{\n  {effect} when {cond}\n{extra}  reason "{name}"\n}}\n'


def limit(name: str, body: str) -> str:
    return f'limit {name} {{\n  key account.id\n{body}  window 1h\n  reason "{name}"\n}}\n'


@pytest.mark.parametrize(
    "cond",
    [
        'client.country == "US" and client.country == "FR"',
        "account.age_days < 3 and account.age_days > 5",
        "account.age_days <= 3 and account.age_days >= 3.5",
        "account.age_days < 3 and account.age_days >= 3",
        'account.verification >= "kyc" and account.verification < "phone"',
        'account.tier in ["free", "pro"] and account.tier == "team"',
        'account.tier in ["free", "pro"] and account.tier in ["team"]',
        'account.tier == "free" and account.tier != "free"',
        'account.tier == "free" and not (account.tier == "free")',
        "client.asn == 64500 and client.asn > 70000",
        "3 > account.age_days and account.age_days > 5",
    ],
)
def test_contradictions(cond: str) -> None:
    assert codes(rule("r", cond)) == [("W0307", 2)]


@pytest.mark.parametrize(
    "cond",
    [
        'client.country == "US" or client.country == "FR"',
        "account.age_days < 3 or account.age_days > 5",
        "account.age_days <= 3 and account.age_days >= 3",
        "account.age_days > 3 and account.age_days < 5",
        'account.tier in ["free", "pro"] and account.tier == "pro"',
        'account.tier == "free" and client.country == "FR"',
        'account.verification >= "email" and account.verification < "kyc"',
        "account.age_days < 3 and request.max_tokens > 5",
    ],
)
def test_satisfiable_conditions_are_not_flagged(cond: str) -> None:
    assert codes(rule("r", cond)) == []


def test_contradiction_through_lets_and_in_limit_guards() -> None:
    text = "let young = account.age_days < 7\n" + limit(
        "l", "  count\n  max 10\n  when young and account.age_days > 30\n"
    )
    ds = lint(text)
    assert [(d.code, d.line) for d in ds] == [("W0307", 6)]
    assert "the limit never applies" in ds[0].message


def test_shadowed_rule_by_subset_of_conjuncts() -> None:
    text = rule("a", "account.age_days < 7") + rule("b", 'account.age_days < 7 and client.country == "US"', "throttle")
    ds = lint(text)
    assert [(d.code, d.line) for d in ds] == [("W0306", 5)]
    assert "`a` (t.policy:1)" in ds[0].message


def test_identical_conditions_in_other_order_are_shadowed() -> None:
    text = rule("a", 'client.country == "US" and 7 > account.age_days', "flag") + rule(
        "b", 'account.age_days < 7 and "US" == client.country', "flag"
    )
    ds = lint(text)
    assert [d.code for d in ds] == ["W0306"] and "same condition" in ds[0].message


@pytest.mark.parametrize(
    "first,second",
    [
        # a stronger later rule still decides
        (rule("a", "account.age_days < 7", "flag"), rule("b", "account.age_days < 7", "deny")),
        # the earlier rule's condition is narrower
        (rule("a", 'account.age_days < 7 and client.country == "US"'), rule("b", "account.age_days < 7")),
        # the earlier rule has an exemption the later one lacks
        (
            rule("a", "account.age_days < 7", extra='  unless "partner" in account.labels\n'),
            rule("b", "account.age_days < 7"),
        ),
        # a shadow-mode earlier rule enforces nothing
        (rule("a", "account.age_days < 7", extra="  shadow\n"), rule("b", "account.age_days < 7")),
    ],
)
def test_rules_that_still_decide_are_not_shadowed(first: str, second: str) -> None:
    assert "W0306" not in [c for c, _ in codes(first + second)]


def test_shadowed_with_the_same_exemption() -> None:
    ex = '  unless "partner" in account.labels\n'
    text = rule("a", "account.age_days < 7", extra=ex) + rule("b", "account.age_days < 7", extra=ex)
    assert codes(text) == [("W0306", 6)]


def test_suppression_on_the_line_before() -> None:
    text = rule("a", "account.age_days < 7") + "# policy: ignore[W0306]\n" + rule("b", "account.age_days < 7")
    assert codes(text) == []


def test_distinct_over_raw_prompt_or_unique_fields() -> None:
    raw = limit("l", "  distinct request.prompt\n  max 100\n")
    assert codes(raw) == [("W0309", 3)]
    ident = limit("l", "  distinct request.id\n  max 100\n")
    assert codes(ident) == [("W0309", 3)]
    via_let = (
        'let p = lower(request.prompt)\nlet q = request.prompt ?? ""\n'
        + limit("l", "  distinct q\n  max 100\n")
        + limit("m", "  distinct p\n  max 100\n")
    )
    assert codes(via_let) == [("W0309", 2)]


@pytest.mark.parametrize(
    "member", ["fingerprint(request.prompt)", "template_id(request.prompt)", "account.id", "topic(request.prompt)"]
)
def test_bounded_distinct_is_fine(member: str) -> None:
    assert codes(limit("l", f"  distinct {member}\n  max 100\n")) == []


def test_max_zero_on_a_count() -> None:
    assert codes(limit("l", "  count\n  max 0\n")) == [("W0310", 4)]
    assert codes(limit("l", "  count\n  max 1\n")) == []
    assert codes(limit("l", "  sum request.max_tokens ?? 0\n  max 0\n")) == []


def test_redundant_limit() -> None:
    a = limit("a", "  count\n  max 10\n")
    b = limit("b", "  count\n  max 20\n")
    assert codes(a + b) == [("W0306", 8)]
    assert codes(b + a) == []  # the stricter one comes second: it decides


def test_always_true_disjunction() -> None:
    assert codes(rule("r", 'client.country == "US" or not (client.country == "US")')) == [("W0303", 2)]


def test_no_semantic_warnings_when_the_policy_has_errors() -> None:
    text = rule("a", "account.age_days < 3 and account.age_days > 5") + rule("b", "nope")
    assert sorted(c for c, _ in codes(text)) == ["E0201"]


def test_every_semantic_code_is_registered() -> None:
    for code in ("W0303", "W0306", "W0307", "W0309", "W0310", "W0312"):
        assert code in CODES


def test_constant_conjunct_or_disjunct() -> None:
    assert codes("let off = false\n" + rule("r", "off and account.age_days < 1")) == [("W0304", 3)]
    assert codes("let on = 2 > 1\n" + rule("r", "on or account.age_days < 1")) == [("W0303", 3)]
    # wholly constant conditions are the checker's (one warning, not two)
    assert codes("let off = false\n" + rule("r", "off and 1 > 2")) == [("W0304", 3)]
    assert codes("let on = true\n" + rule("r", "on and account.age_days < 1")) == []


def _measure(key: str, extra: str = "") -> str:
    return f"measure m {{\n  key {key}\n  distinct account.id\n  window 1d\n{extra}}}\n"


def null_keys(text: str) -> list[tuple[str, int]]:
    return [(d.code, d.line) for d in lint(text, identified=False) if d.code == "W0312"]


def test_a_key_that_can_be_null_is_w0312_on_limits_and_measures() -> None:
    card = limit("l", "  count\n  max 10\n").replace("account.id", "account.payment_fingerprint")
    ds = [d for d in lint(card, identified=False) if d.code == "W0312"]
    assert [(d.line, d.column) for d in ds] == [(2, 7)]
    assert ds[0].message == (
        "`account.payment_fingerprint` can be null: every request without it counts in one shared bucket (`-`) "
        "of limit `l`"
    )
    assert ds[0].hint == "guard it: `when account.payment_fingerprint != null`"
    assert null_keys(_measure("account.payment_fingerprint")) == [("W0312", 2)]
    # A key read through a function or a let is null when the field is.
    assert null_keys(_measure("fingerprint(request.prompt)")) == [("W0312", 2)]
    assert null_keys("let card = lower(account.payment_fingerprint)\n" + _measure("card")) == [("W0312", 3)]
    # Each nullable part of a key is named once.
    assert null_keys(_measure("account.org, request.model, account.org")) == [("W0312", 2), ("W0312", 2)]


@pytest.mark.parametrize(
    "guard",
    [
        "  when account.payment_fingerprint != null\n",
        '  when account.payment_fingerprint == "pf-1"\n',
        '  when account.payment_fingerprint in ["pf-1", "pf-2"]\n',
        "  when len(account.payment_fingerprint) > 3 and account.age_days < 7\n",
        '  when not (account.payment_fingerprint == null) or account.tier == "x" and card_known\n',
        "  when card_known\n",
        "  unless account.payment_fingerprint == null\n",
        '  unless account.tier == "x" or account.payment_fingerprint == null\n',
    ],
)
def test_a_guard_that_keeps_null_keys_out_silences_w0312(guard: str) -> None:
    let = "let card_known = account.payment_fingerprint != null\n"
    assert null_keys(let + _measure("account.payment_fingerprint", guard)) == []


@pytest.mark.parametrize(
    "guard",
    [
        '  when account.payment_fingerprint != "pf-1"\n',
        "  when account.payment_fingerprint == null or account.age_days < 7\n",
        '  when not (account.payment_fingerprint in ["pf-1"])\n',
        "  unless account.payment_fingerprint != null\n",
        '  when (account.payment_fingerprint ?? "none") != "pf-1"\n',
    ],
)
def test_conditions_that_let_null_keys_through_still_warn(guard: str) -> None:
    assert null_keys(_measure("account.payment_fingerprint", guard)) == [("W0312", 2)]


def test_keys_that_are_never_null() -> None:
    assert null_keys(_measure('account.payment_fingerprint ?? "no-card"')) == []
    assert null_keys(_measure("request.ts")) == []  # the decision time when the request has none
    assert null_keys(_measure('"global"')) == []


def test_a_deny_rule_for_requests_without_the_field_guards_every_key() -> None:
    rule_for = 'rule anonymous {\n  deny when account.id == null or api_key.id == null\n  reason "who?"\n}\n'
    assert null_keys(rule_for + _measure("account.id")) == []
    assert null_keys(rule_for + limit("l", "  count\n  max 10\n")) == []
    # ... but not when it is in shadow mode, has an exemption, or an exemption skips it
    shadow = rule_for.replace('"who?"\n', '"who?"\n  shadow\n')
    assert null_keys(shadow + _measure("account.id")) == [("W0312", 7)]
    unless = rule_for.replace('"who?"\n', '"who?"\n  unless account.tier == "x"\n')
    assert null_keys(unless + _measure("account.id")) == [("W0312", 7)]
    skipped = 'exempt staff {\n  when account.tier == "staff"\n  rules anonymous\n}\n'
    assert null_keys(skipped + rule_for + _measure("account.id")) == [("W0312", 10)]
