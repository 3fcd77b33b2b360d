"""The language server's pieces without the protocol: positions in each encoding,
what completion offers where, quick-fix edits, hover text."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types as T

from dsl.checker import BLOCK_MODES, RECORD_MODES
from dsl.diagnostics import Diagnostic
from dsl.functions import LOADERS
from dsl.navigate import at
from dsl.parser import parse
from policy_engine.lsp import features
from policy_engine.lsp.analysis import analyze_buffer, analyze_folder, policy_root
from policy_engine.lsp.positions import UTF8, UTF16, UTF32, LineIndex, char_index, span_range, units, whole_document

ROOT = Path(__file__).parents[2]


# ------------------------------------------------------------------ positions


@pytest.mark.parametrize("encoding, widths", [(UTF8, [1, 2, 4, 1]), (UTF16, [1, 1, 2, 1]), (UTF32, [1, 1, 1, 1])])
def test_units_and_char_index(encoding: str, widths: list[int]) -> None:
    line = "aé😀b"
    assert [units(ch, encoding) for ch in line] == widths
    offsets = [sum(widths[:i]) for i in range(len(line) + 1)]
    assert [char_index(line, n, encoding) for n in offsets] == list(range(len(line) + 1))
    assert char_index(line, 10_000, encoding) == len(line)  # clamped to the line


def test_line_index_round_trip_with_crlf_and_astral_characters() -> None:
    text = 'let a = "😀"\r\nlet bé = a\rlet c = 1\n'
    index = LineIndex(text)
    assert index.text == 'let a = "😀"\nlet bé = a\nlet c = 1\n'
    for offset in range(len(index.text) + 1):
        for enc in (UTF8, UTF16, UTF32):
            assert index.offset(index.position(offset, enc), enc) == offset
    assert index.position(index.text.index("bé = a") + 2, UTF16) == T.Position(1, 6)
    assert index.position(index.text.index("bé = a") + 2, UTF8) == T.Position(1, 7)
    assert whole_document(text, UTF16) == T.Range(T.Position(0, 0), T.Position(3, 0))
    assert whole_document("a\nb😀", UTF16) == T.Range(T.Position(0, 0), T.Position(1, 3))


def test_diagnostic_span_to_range_after_non_ascii_text() -> None:
    text = 'rule r {\n  deny when "é😀" == account.tierr\n  reason "x"\n}\n'
    a = analyze_buffer("untitled:1", text)
    [d] = a.diagnostics
    assert d.code == "E0202" and (d.line, d.column) == (2, 21)  # 1-based characters, as lint prints
    # 20 characters before the field: 21 UTF-16 units (😀 takes two), 24 UTF-8 bytes.
    assert span_range(d.span, UTF16) == T.Range(T.Position(1, 21), T.Position(1, 34))
    assert span_range(d.span, UTF8) == T.Range(T.Position(1, 24), T.Position(1, 37))
    assert span_range(d.span, UTF32) == T.Range(T.Position(1, 20), T.Position(1, 33))
    assert span_range(None, UTF16) == T.Range(T.Position(0, 0), T.Position(0, 0))


# ----------------------------------------------------------------- completion


def _complete(text: str, a: features.Analysis | None = None) -> set[str]:
    """Completions at the `|` in `text`."""
    offset = text.index("|")
    return {c.label for c in features.completion(text.replace("|", ""), offset, a)}


def test_completion_clause_keywords_come_from_the_grammar() -> None:
    rule = _complete("rule r {\n  deny when true\n  |\n}\n")
    limit = _complete("limit l {\n  key account.id\n  |\n}\n")
    assert {"unless", "reason", "status", "retry_after", "header", "shadow", "deny", "flag"} <= rule
    assert not {"window", "key", "count", "record"} & rule
    assert not {"and", "or", "in"} & rule  # the line above is complete: a new clause, not an operator
    assert {"key", "count", "sum", "distinct", "usage", "window", "max", "when", "record", "on_error", "block"} <= limit
    assert "retry_after" not in limit
    top = _complete("|")
    assert {"policy", "let", "data", "rule", "limit"} <= top and "account" not in top


def test_completion_in_expressions_and_after_clause_words() -> None:
    expr = _complete("rule r {\n  deny when acc|\n}\n")
    assert {"account", "request", "template_id", "ip_prefix", "true", "not", "if"} <= expr
    assert "reason" not in expr
    # After a complete expression on the same line: operators, not clause words.
    after = _complete("rule r {\n  deny when account.age_days < 7 |\n}\n")
    assert {"and", "or"} <= after and not {"reason", "unless", "account"} & after
    assert _complete("rule r {\n  deny |") == {"when"}
    assert _complete("data x = |") == set(LOADERS)
    assert _complete("limit l {\n  record |") == set(RECORD_MODES)
    assert _complete("limit l {\n  block |") == set(BLOCK_MODES)
    assert _complete("let |") == set() and _complete("rule |") == set()
    assert _complete('policy "p" {\n  |') == set()  # header keys are the author's
    assert _complete("rule r {\n  deny when true # acc|") == set()
    assert _complete('rule r {\n  reason "acc|') == set()
    assert _complete("rule r {\n  deny when client.|") == {"ip", "country", "asn", "user_agent"}
    assert _complete("rule r {\n  deny when trusted.|") == set()
    # A declaration broken earlier: everything that could fit, names included.
    assert {"account", "and"} <= _complete("rule r {\n  deny when 1 + * 2\n  unless acc|")
    assert {"account", "reason", "unless"} <= _complete("rule r {\n  deny when 1 + * 2\n  re|")


def test_completion_offers_the_policys_lets_and_data() -> None:
    root = policy_root(ROOT / "policies" / "10-budgets.policy")
    a = analyze_folder(root, {}, None)
    items = {c.label: c for c in features.completion("let x = t", 9, a)}
    assert items["trusted"].kind == T.CompletionItemKind.Variable and items["trusted"].detail == "let: bool"
    assert (
        items["tier_rpm"].kind == T.CompletionItemKind.Constant and items["tier_rpm"].detail == "data: map<string, int>"
    )


def test_policy_root_is_the_folder_of_policy_files(tmp_path: Path) -> None:
    (tmp_path / "p" / "sub").mkdir(parents=True)
    (tmp_path / "p" / "a.policy").write_text("")
    (tmp_path / "p" / "sub" / "b.policy").write_text("")
    assert policy_root(tmp_path / "p" / "sub" / "b.policy") == (tmp_path / "p").resolve()
    assert (
        policy_root(tmp_path / "p" / "sub" / "b.policy", [tmp_path / "p" / "sub"]) == (tmp_path / "p" / "sub").resolve()
    )
    assert policy_root(ROOT / "policies" / "00-identity.policy") == (ROOT / "policies").resolve()


# ----------------------------------------------------------------- quick fixes


def _diag(text: str, code: str) -> Diagnostic:
    a = analyze_buffer("untitled:1", text)
    return next(d for d in a.diagnostics if d.code == code)


def test_did_you_mean_replacements_keep_quotes_for_strings() -> None:
    d = _diag('rule r {\n  deny when account.verification <= "emial"\n  reason "x"\n}\n', "E0208")
    assert features.replacement(d) == '"email"'
    d = _diag('rule r {\n  deny when lowr(request.prompt) == "x"\n  reason "x"\n}\n', "E0203")
    assert features.replacement(d) == "lower"
    d = _diag('rule r {\n  deny when account.ages_days == 1\n  reason "x"\n}\n', "E0202")
    assert features.replacement(d) == "account.age_days"  # the span and the hint cover the whole path
    d = _diag('rule r {\n  deny when account.xyzxyzxyzxyz == "x"\n  reason "x"\n}\n', "E0202")
    assert d.hint is not None and d.hint.startswith("fields of account")
    assert features.replacement(d) is None  # no close name: the hint lists the fields instead


def _apply(text: str, edits: list[features.Edit]) -> str:
    for e in sorted(edits, key=lambda e: e.start, reverse=True):
        text = text[: e.start] + e.text + text[e.end :]
    return text


def test_join_unless_edits() -> None:
    text = (
        "limit l {\n  key account.id\n  count\n  window 1m\n  max 5\n"
        '  unless if account.tier == "pro" then true else false\n'
        "  unless account.age_days > 30\n"
        "  unless account.id == null\n"
        '  reason "x"\n}\n'
    )
    module, _ = parse(text)
    second = text.index("  unless account.age_days") + 2
    out = _apply(text, features.join_unless(module, second))
    assert (
        '  unless (if account.tier == "pro" then true else false) or account.age_days > 30 '
        "or account.id == null\n  reason" in out
    )
    assert [d.code for d in analyze_buffer("untitled:1", out).diagnostics] == []
    # Only for a second `unless`, not for other duplicated clauses of the block.
    assert features.join_unless(module, text.index("  count")) == []


def test_join_unless_needs_a_duplicate_unless() -> None:
    text = 'rule r {\n  deny when true\n  unless false\n  reason "x"\n  reason "y"\n}\n'
    module, _ = parse(text)
    assert features.join_unless(module, text.index('reason "y"')) == []


# ----------------------------------------------------------------------- hover


def test_hover_texts() -> None:
    text = (
        "let young = account.age_days < 7\n"
        'rule r {\n  deny when young and template_id(request.prompt) == "t"\n  reason "young"\n}\n'
        "limit l {\n  key account.id\n  distinct fingerprint(request.prompt)\n  window 1h\n  max 50\n"
        '  reason "many"\n}\n'
    )
    a = analyze_buffer("untitled:1", text)
    m = a.module("untitled:1")
    assert m is not None

    def hover(needle: str, delta: int = 1) -> str:
        h = features.hover(a, m, text.index(needle) + delta)
        assert h is not None, needle
        return h.text

    assert "let young = account.age_days < 7" in hover("young and")
    assert "type `bool`" in hover("young and")
    assert "template_id(string) -> string" in hover("template_id") and "A signal" in hover("template_id")
    assert "request.prompt: string" in hover("prompt)", 2)
    limit = hover("l {", 0)
    assert (
        "- window: `1h`" in limit
        and "- max: `50`" in limit
        and "- measures: distinct `fingerprint(request.prompt)`" in limit
    )
    assert "- effect: throttle (default)" in limit and "- block: new (default)" in limit
    assert '- deny when `young and template_id(request.prompt) == "t"`' in hover("r {", 0)
    assert "type `int`" in hover("50")
    here = at(m, text.index("account.id"))
    assert here is not None and here.clause is not None and here.clause.kind == "key"


# -------------------------------------------------------------------- measures

MEASURED = (
    "measure card_accounts {\n  key account.payment_fingerprint\n  distinct account.id\n  window 1d\n"
    "  when account.payment_fingerprint != null\n}\n"
    "measure suspicion {\n  key account.id\n  sum if measures.card_accounts > 3 then 2 else 0\n  window 6h\n"
    "  when account.id != null\n}\n"
    'rule shared_card {\n  deny when measures.card_accounts > 3 and measures.suspicion >= 10\n  reason "shared"\n}\n'
)


def test_measures_hover_definition_references_completion() -> None:
    a = analyze_buffer("untitled:1", MEASURED)
    assert a.diagnostics == []
    m = a.module("untitled:1")
    assert m is not None
    use = MEASURED.index("measures.card_accounts > 3 and") + len("measures.") + 2
    h = features.hover(a, m, use)
    assert h is not None and "measure card_accounts" in h.text and "- window: `1d`" in h.text
    assert "- measures: distinct `account.id`" in h.text and "- when: `account.payment_fingerprint != null`" in h.text
    decl = MEASURED.index("card_accounts {")
    assert [s.start for s in features.definition(a, m, use)] == [decl]
    refs = features.references(a, m, decl + 1, include_declaration=True)
    assert [s.start for s in refs] == [decl] + [
        i for i in range(len(MEASURED)) if MEASURED.startswith("measures.card_accounts", i)
    ]
    section = features.hover(a, m, MEASURED.index("measures.card_accounts > 3 and") + 1)
    assert section is not None and "`card_accounts`: distinct per `account.payment_fingerprint`" in section.text
    typed = "rule r {\n  deny when measures."
    items = {c.label: c for c in features.completion(typed, len(typed), a)}
    assert set(items) == {"card_accounts", "suspicion"}
    assert items["suspicion"].detail == "measure: sum"
    assert "measures" in _complete("rule r {\n  deny when m|", a)
    assert _complete("measure |") == set()


def test_misspelt_measure_quick_fix_keeps_the_section() -> None:
    d = _diag(MEASURED.replace("measures.suspicion >=", "measures.suspicon >="), "E0201")
    assert d.hint == "did you mean `suspicion`?"
    assert d.span is not None and d.span.text == "measures.suspicon"
    assert features.replacement(d) == "measures.suspicion"


def test_signature_at_and_symbols() -> None:
    def sig(text: str) -> tuple[str, int] | None:
        found = features.signature_at(text.replace("|", ""), text.index("|"))
        return (found[0].name, found[1]) if found else None

    assert sig("rule r {\n  deny when ip_prefix(|") == ("ip_prefix", 0)
    assert sig("rule r {\n  deny when ip_prefix(client.ip, |") == ("ip_prefix", 1)
    assert sig('rule r {\n  deny when contains(lower(request.prompt), "a,(b" + |') == ("contains", 1)
    assert sig("rule r {\n  deny when contains(lower(|") == ("lower", 0)
    assert sig("rule r {\n  deny when contains([1, 2|") is None  # inside a list, not the call's arguments
    assert sig("rule r {\n  deny when (1 + |") is None
    f = features.FUNCTIONS["ip_prefix"]
    label = features.signature(f)
    assert [label[a:b] for a, b in features.parameter_offsets(f)] == ["ip", "int"]

    text = (
        'policy "p" {\n}\nlet a = 1\ndata d = strings("x.txt")\nrule r {\n  deny when a > 0\n  reason "x"\n}\n'
        'limit l {\n  key account.id\n  count\n  window 1m\n  max 5\n  reason "x"\n}\n'
    )
    module, _ = parse(text)
    got = [(s.name, s.kind, s.detail) for s in features.symbols(module)]
    assert got == [
        ("p", T.SymbolKind.Package, "policy"),
        ("a", T.SymbolKind.Variable, "let"),
        ("d", T.SymbolKind.Constant, "data"),
        ("r", T.SymbolKind.Event, "rule deny"),
        ("l", T.SymbolKind.Object, "limit per 1m"),
    ]


def test_field_hover_comes_from_the_field_table() -> None:
    from dsl.schema import BY_PATH

    for path, f in BY_PATH.items():
        doc = features.field_doc(f.section, f.name)
        assert doc is not None and f"{path}: {f.type}" in doc
        assert (f.header is None or f"header `{f.header}`" in doc) and (f.claim is None or f"claim `{f.claim}`" in doc)
    assert "`geo_country(client.ip)`" in (features.field_doc("client", "country") or "")
    assert "Identity: taken only from an authentication step" in features.section_doc("api_key")
    assert features.field_doc("account", "nope") is None


# ---------------------------------------------------------- declared attributes

DECLARED = (
    'attribute account.risk_score: float {\n  header "x-risk-score"\n  envoy_metadata "fraud" "risk"\n}\n'
    'rule risky {\n  deny when account.risk_score > 0.8\n  reason "risky"\n}\n'
)


def test_completion_and_hover_know_declared_attributes() -> None:
    a = analyze_buffer("untitled:1", DECLARED)
    m = a.module("untitled:1")
    assert m is not None and not a.diagnostics
    items = {c.label: c for c in features.completion("let x = account.", 16, a)}
    assert items["risk_score"].detail == "float" and "age_days" in items
    assert "Envoy metadata `fraud` / `risk`" in (items["risk_score"].doc or "")
    h = features.hover(a, m, DECLARED.index("risk_score >") + 1)
    assert h is not None and "account.risk_score: float" in h.text and "header `x-risk-score`" in h.text
    decl = features.hover(a, m, DECLARED.index("account.risk_score:") + 2)
    assert decl is not None and "Declared by the policy" in decl.text
    [sym, _] = features.symbols(m)
    assert (sym.name, sym.detail) == ("account.risk_score", "attribute float")


def test_completion_inside_an_attribute_declaration() -> None:
    assert {"account", "request"} <= _complete("attribute |")
    assert "usage" not in _complete("attribute |")
    assert {"float", "map", "set"} <= _complete("attribute account.x: |")
    assert _complete('attribute account.x: float {\n  header "x"\n  |') == {
        "header",
        "headers",
        "jwt",
        "envoy_metadata",
        "context_extension",
        "api",
        "asgi",
    }


# -------------------------------------------------------------------- prices


def test_prices_hover_and_completion(tmp_path: Path) -> None:
    (tmp_path / "prices.csv").write_text("model,group,input,output\nfrontier,,3,15\nfrontier-large,frontier,,\n")
    text = (
        'data prices = prices("prices.csv")\n'
        'limit l {\n  key account.id, model_group(request.model) ?? "other"\n'
        '  sum price(request.model, "output") * (request.max_tokens ?? 1000) ?? 0\n'
        '  usage (price(usage.model, "output") ?? 0) * (usage.completion_tokens ?? 0)\n'
        '  window 1d\n  max 10.00\n  reason "budget"\n}\n'
    )
    (tmp_path / "main.policy").write_text(text)
    a = analyze_folder(tmp_path, {}, None)
    m = a.module(str((tmp_path / "main.policy").resolve())) or a.module(str(tmp_path / "main.policy"))
    assert m is not None
    h = features.hover(a, m, text.index("price(request") + 1)
    assert h is not None and "price(string, token class) -> float" in h.text
    h = features.hover(a, m, text.index("model_group") + 1)
    assert h is not None and "model_group(string) -> string" in h.text
    h = features.hover(a, m, text.index("usage.model") + 7)
    assert h is not None and "The model that served the call" in h.text
    assert {"price", "model_group"} <= _complete("rule r {\n  deny when pri|\n}\n")
    assert {"cached_input_tokens", "reasoning_tokens", "model"} <= _complete("rule r {\n  deny when usage.|\n}\n")
    # Inside the strings: the table's token classes, its models and groups.
    assert _complete('let p = price(request.model, "out|', a) == {"input", "output"}
    assert _complete('let p = price(usage.model ?? "x", "|', a) == set()  # not a simple first argument
    assert _complete('let p = price("fr|', a) == {"frontier", "frontier-large"}
    assert _complete('let g = model_group("|', a) == {"frontier", "frontier-large"}
    assert _complete('let p = price(request.model, "|') == {"input", "cached_input", "output", "reasoning"}
    assert _complete('rule r {\n  reason "pri|') == set()


def test_guard_null_key_adds_or_joins_a_when() -> None:
    text = "measure m {\n  key account.payment_fingerprint\n  distinct account.id\n  window 1d\n}\n"
    [d] = analyze_buffer("untitled:1", text).diagnostics
    assert d.code == "W0312"
    module, _ = parse(text)
    fixed = _apply(text, features.guard_null_key(module, d.span.start, d.hint))
    assert fixed == text.replace(
        "  key account.payment_fingerprint\n",
        "  key account.payment_fingerprint\n  when account.payment_fingerprint != null\n",
    )
    assert analyze_buffer("untitled:1", fixed).diagnostics == []
    # A block with a `when` already: the guard joins it, brackets where needed.
    with_when = text.replace("  window 1d\n", '  window 1d\n  when account.age_days < 7 or account.tier == "free"\n')
    [d] = analyze_buffer("untitled:1", with_when).diagnostics
    module, _ = parse(with_when)
    fixed = _apply(with_when, features.guard_null_key(module, d.span.start, d.hint))
    assert '  when (account.age_days < 7 or account.tier == "free") and account.payment_fingerprint != null\n' in fixed
    assert analyze_buffer("untitled:1", fixed).diagnostics == []
    assert features.guard_null_key(module, d.span.start, "did you mean `x`?") == []
