"""The language of budgets: calendar windows, exemptions, time functions, and the
diagnostics that point a new user to them (`allow`, a second `unless`)."""

from __future__ import annotations

import pytest
from pygments.token import Keyword

from dsl.checker import check
from dsl.diagnostics import Diagnostic
from dsl.formatter import format_source
from dsl.lexer import PolicyLexer
from dsl.parser import parse


def diags_of(text: str) -> list[Diagnostic]:
    module, diags = parse(text, "m.policy")
    if diags:
        return diags
    _, cdiags = check([module])
    return cdiags


def one(text: str) -> Diagnostic:
    (d,) = diags_of(text)
    return d


@pytest.mark.parametrize(
    "text,hint",
    [
        ('allow when account.id in ["ops-1"]\n', "declare `exempt NAME { when <condition> }`"),
        ('rule r {\n  allow when account.id == "x"\n  reason "r"\n}\n', "add `unless <condition>`"),
        ('exempt when account.tier == "internal"\n', "an exemption has a name and a body"),
        ('exempt staff when account.tier == "internal"\n', "an exemption has a name and a body"),
    ],
)
def test_allow_and_one_line_exemptions_point_to_exempt(text: str, hint: str) -> None:
    d = one(text)
    assert d.code == "E0101" and hint in (d.hint or ""), d


def test_a_second_unless_shows_the_joined_form() -> None:
    d = one(
        'rule r {\n  deny when account.age_days < 1\n  unless account.tier == "pro"\n'
        '  unless "partner" in account.labels or account.verification >= "kyc"\n  reason "r"\n}\n'
    )
    assert (d.code, d.line) == ("E0211", 4)
    assert d.hint == (
        'join them with `or`: `unless account.tier == "pro" or "partner" in account.labels '
        'or account.verification >= "kyc"`'
    )
    d = one(
        "limit l {\n  key account.id\n  count\n  window 1m\n  max 3\n"
        '  when account.age_days < 3 or account.tier == "free"\n  when client.country == "US"\n  reason "r"\n}\n'
    )
    assert (
        d.hint
        == 'join them with `and`: `when (account.age_days < 3 or account.tier == "free") and client.country == "US"`'
    )


RULES = """
rule young {
  deny when account.age_days < 1
  reason "r"
}
limit rpm {
  key account.id
  count
  window 1m
  max 3
  reason "r"
}
measure seen {
  key account.id
  count
  window 1h
}
"""


@pytest.mark.parametrize(
    "body,code,message,hint",
    [
        ("rules young", "E0210", "exemption `x` has no `when`", "e.g. `when account.id in internal_accounts`"),
        ("when true\n  rules yung", "E0201", "`yung` is not a rule", "did you mean `young`?"),
        ("when true\n  rules rpm", "E0201", "`rpm` is not a rule", "an exemption skips every limit already"),
        ("when true\n  rules seen", "E0201", "`seen` is not a rule", "measures count exempt requests too"),
        ("when account.tier", "E0205", "`when` must be true or false, not string", None),
    ],
)
def test_exemption_errors(body: str, code: str, message: str, hint: str | None) -> None:
    ds = [d for d in diags_of(RULES + f"exempt x {{\n  {body}\n}}\n") if d.code != "W0303"]
    (d,) = ds
    assert (d.code, d.message) == (code, message)
    assert hint is None or hint in (d.hint or "")


def test_an_exemption_shares_the_namespace_of_rules() -> None:
    d = one(RULES + 'exempt young {\n  when account.tier == "x"\n}\n')
    assert d.code == "E0209" and "a rule; rules, limits, measures and exemptions share names" in (d.hint or "")


@pytest.mark.parametrize(
    "call,message",
    [
        ('local_hour(request.ts, "Europe/Pari") > 3', "unknown time zone `Europe/Pari`"),
        ("local_hour(request.ts, account.tier) > 3", "the time zone must be a constant string"),
        ('local_weekday(request.ts, "UTC") in ["sat", "sunday"]', 'never "sunday"'),
        ('local_weekday(request.ts, "UTC") == "Mon"', 'never "Mon"'),
        ('local_hour(account.tier, "UTC") > 3', "argument of `local_hour` must be float, not string"),
    ],
)
def test_time_function_errors(call: str, message: str) -> None:
    d = one(f'rule r {{\n  flag when {call}\n  reason "r"\n}}\n')
    assert message in d.message, d


def test_time_functions_with_a_constant_zone_check_clean() -> None:
    text = (
        'let zone = "Asia/Tokyo"\nrule r {\n  flag when local_hour(request.ts, zone) >= 9 '
        'and local_weekday(request.ts, "UTC") not in ["sat", "sun"] and local_time(request.ts, zone) < "17:30"\n'
        '  reason "r"\n}\n'
    )
    assert diags_of(text) == []


def test_calendar_windows_and_exemptions_format_and_round_trip() -> None:
    messy = (
        'exempt   internal {\n when account.tier == "internal"\n   rules  young ,young2\n}\n'
        'rule young { deny when account.age_days < 1\n reason "r" }\nrule young2 { deny when account.age_days < 2\n reason "r" }\n'
        'limit m {\n key account.id\n count\n window   calendar   month in "Europe/Paris"\n max 3\n when account.id != null\n reason "r"\n}\n'
    )
    out = format_source(messy)
    assert 'exempt internal {\n  when account.tier == "internal"\n  rules young, young2\n}\n' in out
    assert '  window calendar month in "Europe/Paris"\n' in out
    assert format_source(out) == out
    assert diags_of(out) == []


def test_the_lexer_knows_the_new_words() -> None:
    toks = [t for t in PolicyLexer().get_tokens("exempt x {\n  rules a\n}\n") if t[1].strip()]
    assert toks[0] == (Keyword.Declaration, "exempt") and (Keyword, "rules") in toks
