"""Editor support: the Pygments lexer (entry point `policy`) and the TextMate grammar."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import pygments.lexers
import pytest
from pygments.token import Comment, Error, Keyword, Name, Number, Operator, Punctuation, String, Text, Whitespace

from dsl.functions import FUNCTIONS, LOADERS
from dsl.keywords import DECLARATIONS
from dsl.lexer import PolicyLexer
from dsl.schema import ATTRIBUTE_SOURCES, MEASURES, SCHEMA, TYPE_WORDS

ROOT = Path(__file__).parents[2]
TM = ROOT / "dsl" / "policy.tmLanguage.json"

SAMPLE = r"""# budgets  policy: ignore[W0305]
policy "sample" { owner "t&s" }
let big = 10_000 + 2k * 1.5e3
data hosting = ints("data/hosting_asns.txt")
rule probe {
  flag when request.prompt matches r"(?i)step\s+by\s+step" and not (account.tier in ["pro", "team"])
  unless account.verification >= "kyc" or client.asn in hosting
  reason "say \"why\"\n"
  header "x-probe" = if true then 1 else null
  shadow
}
limit tokens {
  key account.id, ip_prefix(client.ip, 24)
  sum (request.max_tokens ?? 1000) / 2 - usage.prompt_tokens % 3
  usage usage.prompt_tokens + usage.completion_tokens
  window 1d
  max {"pro": 2M, "free": 100k}[account.tier] ?? 50k
  when request.ts >= 0 and request.max_tokens != 0
  record attempts
  on_error closed
  throttle
  status 429
  reason "budget"
}
measure card_accounts {
  key account.payment_fingerprint
  distinct account.id
  window 1d
  when measures.other > 2
}
limit monthly {
  key account.id
  count
  window calendar month in "Europe/Paris"
  max 10
  reason "r"
}
"""


def tokens(text: str) -> list[tuple[Any, str]]:
    return list(PolicyLexer().get_tokens(text))


def test_entry_point_finds_the_lexer() -> None:
    lexer = pygments.lexers.get_lexer_by_name("policy")
    assert isinstance(lexer, PolicyLexer)
    assert isinstance(pygments.lexers.get_lexer_for_filename("x.policy"), PolicyLexer)


def test_sample_has_no_error_tokens() -> None:
    toks = tokens(SAMPLE)
    assert [t for t in toks if t[0] in Error] == []
    assert "".join(v for _, v in toks) == SAMPLE


def test_shipped_policies_lex_without_errors() -> None:
    files = sorted((ROOT / "policies").glob("*.policy"))
    for f in files:
        assert [t for t in tokens(f.read_text()) if t[0] in Error] == [], f


@pytest.mark.parametrize(
    "text,kind",
    [
        ("deny", Keyword.Reserved),
        ("limit", Keyword.Declaration),
        ("window", Keyword),
        ("matches", Operator.Word),
        ("null", Keyword.Constant),
        ("30s", Number.Float),
        ("10k", Number.Integer),
        ("1.5e3", Number.Float),
        ('r"\\d+"', String.Regex),
        ("# c", Comment.Single),
        ("??", Operator),
        ("measure", Keyword.Declaration),
    ],
)
def test_token_classes(text: str, kind: Any) -> None:
    (tok, value), *_ = tokens(text)
    assert (tok, value) == (kind, text)


def test_calendar_window_words() -> None:
    toks = [t for t in tokens('window calendar week in "UTC"') if t[0] not in (Whitespace, Text)]
    assert toks[:4] == [(Keyword, "window"), (Keyword, "calendar"), (Name.Constant, "week"), (Operator.Word, "in")]
    assert _scopes(json.loads(TM.read_text()), "calendar month") == {}  # a capture rule: scopes per group
    rule = json.loads(TM.read_text())["repository"]["keywords"]["patterns"][1]
    m = re.match(rule["match"], "calendar month")
    assert m is not None and m.group(2) == "month"


def test_every_function_and_section_is_highlighted() -> None:
    for f in list(FUNCTIONS) + list(LOADERS):
        (tok, _), *_ = tokens(f"{f}(x)")
        assert tok is Name.Function, f
    for s, fields in SCHEMA.items():
        for fld in fields:
            toks = tokens(f"{s}.{fld}")
            assert toks[0] == (Name.Builtin, s) and toks[2] == (Name.Attribute, fld)
    toks = tokens("measures.card_accounts > 3")
    assert toks[:3] == [(Name.Builtin.Pseudo, "measures"), (Punctuation, "."), (Name.Variable, "card_accounts")]


# ------------------------------------------------------------------ TextMate


def _patterns(node: Any) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("match", "begin", "end") and isinstance(v, str):
                yield k, v
            else:
                yield from _patterns(v)
    elif isinstance(node, list):
        for x in node:
            yield from _patterns(x)


def _scopes(grammar: dict[str, Any], text: str) -> dict[str, str]:
    """Which scope each top-level pattern gives the first word it matches."""
    out: dict[str, str] = {}
    for rule in grammar["repository"].values():
        for p in rule["patterns"]:
            if "match" in p and "name" in p:
                m = re.search(p["match"], text)
                if m and m.start() == 0 and m.group(0) == text:
                    out.setdefault(text, p["name"])
    return out


def test_textmate_grammar_loads_and_compiles() -> None:
    grammar = json.loads(TM.read_text())
    assert grammar["scopeName"] == "source.policy" and grammar["fileTypes"] == ["policy"]
    pats = list(_patterns(grammar))
    assert len(pats) > 15
    for _, rx in pats:
        re.compile(rx)  # these patterns use only syntax Oniguruma and Python share
    for inc in grammar["patterns"]:
        assert inc["include"].lstrip("#") in grammar["repository"]


@pytest.mark.parametrize(
    "text,scope",
    [
        ("deny", "keyword.control.effect.policy"),
        ("rule", "storage.type.declaration.policy"),
        ("30s", "constant.numeric.duration.policy"),
        ("2M", "constant.numeric.integer.policy"),
        ('r"a+"', "string.regexp.raw.policy"),
        ("# x", "comment.line.number-sign.policy"),
        ("# policy: ignore[W0301]", "comment.line.suppression.policy"),
        ("attempts", "constant.other.mode.policy"),
        ("and", "keyword.operator.word.policy"),
        ("measure", "storage.type.declaration.policy"),
    ],
)
def test_textmate_scopes(text: str, scope: str) -> None:
    assert _scopes(json.loads(TM.read_text()), text)[text] == scope


def test_textmate_word_lists_follow_the_language() -> None:
    grammar = json.loads(TM.read_text())
    loaders, calls = grammar["repository"]["functions"]["patterns"]
    assert set(re.findall(r"\w+", loaders["match"].split("(")[1])) == set(LOADERS)
    # Any call is a function (the checker names the unknown ones), so adding one changes no grammar.
    for f in FUNCTIONS:
        m = re.match(calls["match"], f"{f}(x)")
        assert m is not None and m.group(0) == f, f
    fields = grammar["repository"]["fields"]["patterns"][0]["match"]
    assert set(fields.split("(")[1].split(")")[0].split("|")) == set(SCHEMA)
    measures = grammar["repository"]["fields"]["patterns"][1]
    m = re.match(measures["match"], "measures.card_accounts")
    assert m is not None and m.group(1) == MEASURES and m.group(3) == "card_accounts"
    assert measures["captures"]["3"]["name"] == "entity.name.measure.policy"
    decl = grammar["repository"]["keywords"]["patterns"][0]["match"]
    assert set(decl.split("(")[1].split(")")[0].split("|")) == set(DECLARATIONS)


def test_textmate_fields_come_before_keywords() -> None:
    # `usage.prompt_tokens` is a field although `usage` is a clause keyword
    order = [p["include"] for p in json.loads(TM.read_text())["patterns"]]
    assert order.index("#fields") < order.index("#keywords")


def test_attribute_declaration_words() -> None:
    text = 'attribute account.risk_score: map<string, float> {\n  envoy_metadata "fraud" "risk"\n  headers\n}\n'
    toks = [t for t in tokens(text) if t[0] not in (Whitespace, Text)]
    assert toks[:6] == [
        (Keyword.Declaration, "attribute"),
        (Name.Builtin, "account"),
        (Punctuation, "."),
        (Name.Attribute, "risk_score"),
        (Punctuation, ":"),
        (Keyword.Type, "map"),
    ]
    assert (Keyword, "envoy_metadata") in toks and (Keyword, "headers") in toks
    assert all(t is not Error for t, _ in toks)


def test_textmate_attribute_words_follow_the_language() -> None:
    grammar = json.loads(TM.read_text())
    sources, types = grammar["repository"]["keywords"]["patterns"][-2:]
    assert set(sources["match"].split("(")[1].split(")")[0].split("|")) == set(ATTRIBUTE_SOURCES)
    assert set(types["match"].split("(")[2].split(")")[0].split("|")) == set(TYPE_WORDS)
    for word in ATTRIBUTE_SOURCES:
        assert re.search(sources["match"], f'  {word} "x"', re.M), word
    assert re.search(types["match"], "attribute account.x: float {")
    assert not re.search(sources["match"], "deny when api > 1")
