"""What the language server answers, as plain functions of a checked policy and
an offset: hover text, completions, definitions, references and quick fixes.
The server turns offsets and spans into LSP positions; nothing here knows
about the protocol's encodings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lsprotocol import types as T

from dsl import ast as A
from dsl import formatter as F
from dsl import keywords as K
from dsl.checked import BLOCK_MODES, DEFAULT_BLOCK, DEFAULT_LIMIT_EFFECT, DEFAULT_ON_ERROR, DEFAULT_RECORD
from dsl.checked import FAIL_MODES, RECORD_MODES
from dsl.diagnostics import Diagnostic
from dsl.data import PRICE_CLASSES, PriceTable
from dsl.functions import FUNCTIONS, LOADERS, Func
from dsl.navigate import At, at, field_uses, name_uses
from dsl.parser import declaration_start, expected, keywords, parse
from dsl.schema import (
    ATTRIBUTE_SECTIONS,
    ATTRIBUTE_SOURCES,
    BY_PATH,
    BY_SECTION,
    FIELDS,
    MEASURES,
    SCHEMA,
    TYPE_WORDS,
    Field,
)
from dsl.types import ANY
from policy_engine.decision import DEFAULT_STATUS, Effect
from policy_engine.lsp.analysis import Analysis

MAX_SHOWN = 400  # characters of an expression shown in a hover
_DID_YOU_MEAN = re.compile(r"did you mean `([^`]+)`\?")
_STRINGS = re.compile(r'r"[^"\n]*"|"(?:\\.|[^"\\\n])*"')
_WORD_END = re.compile(r"[A-Za-z_]\w*$")
_DOTTED_END = re.compile(r"([A-Za-z_]\w*)\s*\.\s*([A-Za-z_]\w*)?$")
_PREV_WORDS = re.compile(r"([A-Za-z_]\w*)\s+(?:([A-Za-z_]\w*)\s*=\s*)?$")
# Words that start a declaration or a clause: offered only where a line starts.
_LINE_STARTS = set(K.DECLARATIONS) | set(K.CLAUSES) | set(K.EFFECTS)
# The value after these clause words is a mode, not an expression.
_MODES = {"record": RECORD_MODES, "on_error": FAIL_MODES, "block": BLOCK_MODES}
_NAMING = {"let", "data", "rule", "limit", "measure"}


def _code(text: str) -> str:
    return f"```policy\n{text}\n```"


def _short(e: A.Expr) -> str:
    s = F.expr(e)
    return s if len(s) <= MAX_SHOWN else s[: MAX_SHOWN - 3] + "..."


def _where(a: Analysis, span: A.Span) -> str:
    """`file:line`, the file relative to the policy folder."""
    name = Path(span.source.name)
    if a.root is not None and a.root in name.parents:
        name = name.relative_to(a.root)
    return f"{name}:{span.line}"


# ------------------------------------------------------------------------ hover


def signature(f: Func) -> str:
    return f"{f.name}({', '.join(map(str, f.params))}) -> {f.returns}"


def parameter_offsets(f: Func) -> list[tuple[int, int]]:
    """Where each parameter stands in `signature(f)` (start, end), for signature help."""
    out, pos = [], len(f.name) + 1
    for p in f.params:
        out.append((pos, pos + len(str(p))))
        pos += len(str(p)) + 2
    return out


def function_doc(f: Func) -> str:
    extra = "\n\nA signal: computed once per request, however often the policy calls it." if f.signal else ""
    return f"{_code(signature(f))}\n\n{f.doc}{extra}"


def field_doc(section: str, name: str, declared: tuple[Field, ...] = ()) -> str | None:
    """A field from the field table (or declared by the policy): type, what it holds,
    where gateways take it from."""
    path = f"{section}.{name}"
    f = BY_PATH.get(path) or next((d for d in declared if d.path == path), None)
    if f is None:
        return None
    if f.declared:
        return attribute_doc(f)
    lines = [f"{f.doc[0].upper()}{f.doc[1:]}." if f.doc else "A field of the request context."]
    if f.minimum is not None:
        lines.append(f"At least {f.minimum:g}.")
    if f.derived is not None:
        lines.append(f"When the request leaves it out: `{f.derived}(client.ip)`.")
    carriers = [f"header `{f.header}`" if f.header else None, f"JWT claim `{f.claim}`" if f.claim else None]
    if any(carriers):
        lines.append("Gateways read it from " + " or ".join(c for c in carriers if c) + " by default.")
    lines.append("Null when missing.")
    return f"{_code(f'{f.path}: {f.type}')}\n\n" + " ".join(lines)


def attribute_doc(f: Field) -> str:
    """A field the policy declares (`attribute ...`): its type and its source per ingress."""
    sources = [
        f"header `{f.header}`" if f.header else None,
        "every request header" if f.all_headers else None,
        f"JWT claim `{f.claim}`" if f.claim else None,
        f"Envoy metadata `{f.metadata[0]}` / `{f.metadata[1]}`" if f.metadata else None,
        f"ext_authz context extension `{f.context_extension}`" if f.context_extension else None,
        f"ASGI scope `{f.asgi}`" if f.asgi else None,
        f"our API's attributes map as `{f.api or f.path}`",
    ]
    return (
        f"{_code(f'{f.path}: {f.type}')}\n\nDeclared by the policy. Read from "
        + ", ".join(s for s in sources if s)
        + ". Null when missing or not of its type (the decision notes why)."
    )


def section_doc(section: str) -> str:
    s = BY_SECTION[section]
    notes = [f"{s.doc[0].upper()}{s.doc[1:]}."]
    if s.identity:
        notes.append("Identity: taken only from an authentication step (a trusted filter's headers or a JWT).")
    if s.nullable:
        notes.append("The whole section may be null.")
    fields = "\n".join(
        f"- `{f.name}`: {f.type}" + (f" ({f.note})" if f.note else "") for f in FIELDS if f.section == section
    )
    return f"{_code(section)}\n\n{' '.join(notes)} Fields:\n\n{fields}"


def measures_doc(a: Analysis) -> str:
    names = "\n".join(
        f"- `{name}`: {_kind(m)} per `{_short(k.exprs[0]) if (k := m.find('key')) and k.exprs else '?'}`"
        for name, m in _measures(a).items()
    )
    return f"{_code(MEASURES)}\n\nThe policy's measures, read as `{MEASURES}.NAME`:\n\n{names or '(none declared)'}"


def _kind(m: A.Block) -> str:
    c = _measuring(m)
    return c.kind if c is not None else "?"


def _measures(a: Analysis) -> dict[str, A.Measure]:
    out: dict[str, A.Measure] = {}
    for m in a.checked.measure_decls:
        out.setdefault(m.name, m)
    return out


def let_doc(a: Analysis, let: A.Let) -> str:
    body = _short(let.expr) if let.expr is not None else "..."
    t = a.checked.type_of(let.expr) if let.expr is not None else ANY
    typ = f"type `{t}`, " if t != ANY else ""
    return f"{_code(f'let {let.name} = {body}')}\n\n{typ}defined at {_where(a, let.name_span)}"


def data_doc(a: Analysis, d: A.Data) -> str:
    text = _code(f"data {d.name} = {d.loader}({F.quote(d.path)})")
    value = a.checked.data.get(d.name)
    if value is None:
        return f"{text}\n\nnot loaded (see the diagnostics); defined at {_where(a, d.name_span)}"
    n = len(value.value)
    return f"{text}\n\ntype `{value.type}`, {n} entr{'y' if n == 1 else 'ies'}, defined at {_where(a, d.name_span)}"


def _clause_line(b: A.Block, kind: str, default: str | None = None) -> str | None:
    c = b.find(kind)
    if c is None:
        return None if default is None else f"- {kind}: {default} (default)"
    if kind == "window" and c.text is not None:  # a calendar window
        return f"- window: `{F.clause(c).removeprefix('window ')}`"
    if c.exprs:
        return f"- {kind}: `{', '.join(_short(e) for e in c.exprs)}`"
    return f"- {kind}: {c.text}" if c.text is not None else f"- {kind}"


def _measuring(b: A.Block) -> A.Clause | None:
    return next((c for c in b.clauses if c.kind in ("count", "sum", "distinct")), None)


def _measuring_lines(b: A.Block, with_max: bool) -> list[str | None]:
    """Key, what is measured, window (and max), guards: what limits and measures share."""
    measure = _measuring(b)
    what = "nothing" if measure is None else measure.kind + (f" `{_short(measure.exprs[0])}`" if measure.exprs else "")
    return [
        _clause_line(b, "key"),
        f"- measures: {what}",
        _clause_line(b, "usage"),
        _clause_line(b, "window"),
        _clause_line(b, "max") if with_max else None,
        _clause_line(b, "when"),
        _clause_line(b, "unless"),
    ]


def _block_head(b: A.Block, kind: str) -> str:
    reason = b.find("reason")
    return _code(f"{kind} {b.name}") + (f"\n\n{reason.text}" if reason is not None and reason.text else "")


def measure_doc(m: A.Measure) -> str:
    lines = _measuring_lines(m, with_max=False)
    return (
        _block_head(m, "measure")
        + "\n\n"
        + "\n".join(line for line in lines if line)
        + (f"\n\nRead as `{MEASURES}.{m.name}`: its value for this request's key, this request included.")
    )


def _default_status(effect: str | None, otherwise: int) -> int:
    """The status of an effect with no `status` clause (`otherwise` while the effect is mistyped)."""
    try:
        return DEFAULT_STATUS[Effect.parse(effect or "")]
    except KeyError:
        return otherwise


def limit_doc(lim: A.Limit) -> str:
    measure = _measuring(lim)
    eff = lim.find("effect")
    effect = eff.text if eff is not None else DEFAULT_LIMIT_EFFECT
    lines = [
        *_measuring_lines(lim, with_max=True),
        f"- effect: {effect}" + ("" if eff is not None else " (default)"),
        _clause_line(lim, "status", str(_default_status(effect, 429))),
        _clause_line(lim, "record", DEFAULT_RECORD),
        _clause_line(lim, "on_error", DEFAULT_ON_ERROR),
        _clause_line(lim, "block", DEFAULT_BLOCK) if measure is not None and measure.kind == "distinct" else None,
        "- shadow: counts and logs, never enforces" if lim.find("shadow") else None,
    ]
    return _block_head(lim, "limit") + "\n\n" + "\n".join(line for line in lines if line)


def rule_doc(rule: A.Rule) -> str:
    eff = rule.find("effect")
    lines = [
        f"- {eff.text} when `{_short(eff.exprs[0])}`" if eff is not None and eff.exprs else None,
        _clause_line(rule, "unless"),
        _clause_line(rule, "status", str(_default_status(eff.text, 403)) if eff is not None else None),
        "- shadow: logs, never enforces" if rule.find("shadow") else None,
    ]
    return _block_head(rule, "rule") + "\n\n" + "\n".join(line for line in lines if line)


def _decl_doc(a: Analysis, d: A.Decl) -> str | None:
    if isinstance(d, A.Let):
        return let_doc(a, d)
    if isinstance(d, A.Data):
        return data_doc(a, d)
    if isinstance(d, A.Limit):
        return limit_doc(d)
    if isinstance(d, A.Measure):
        return measure_doc(d)
    if isinstance(d, A.Rule):
        return rule_doc(d)
    if isinstance(d, A.Exempt):
        return exempt_doc(d)
    if isinstance(d, A.Attribute):
        return field_doc(d.section, d.field, a.checked.attributes)
    return None


def exempt_doc(x: A.Exempt) -> str:
    lines = [
        _clause_line(x, "when"),
        _clause_line(x, "unless"),
        _clause_line(x, "rules"),
        "\nA request it matches skips every limit and the rules named; measures still count it.",
    ]
    return _code(f"exempt {x.name}") + "\n\n" + "\n".join(line for line in lines if line)


@dataclass(frozen=True)
class Hover:
    text: str
    span: A.Span


def hover(a: Analysis, module: A.Module, offset: int) -> Hover | None:
    here = at(module, offset)
    if here is None:
        return None
    d = here.decl
    if d.name_span.start <= offset <= d.name_span.end:
        text = _decl_doc(a, d)
        return Hover(text, d.name_span) if text else None
    e = here.innermost
    if e is None:
        return None
    if isinstance(e, A.Call) and e.name_span.start <= offset <= e.name_span.end:
        f = FUNCTIONS.get(e.func)
        return Hover(function_doc(f), e.name_span) if f else None
    if isinstance(e, A.Attr) and isinstance(e.obj, A.Name) and e.obj.id not in a.checked.lets:
        if e.obj.id == MEASURES:
            m = _measures(a).get(e.name)
            return Hover(measure_doc(m), e.span) if m is not None else None
        if e.obj.id in SCHEMA:
            text = field_doc(e.obj.id, e.name, a.checked.attributes)
            return Hover(text, e.span) if text else None
    if isinstance(e, A.Name):
        target = _value_decl(a, e.id)
        if target is not None:
            text = _decl_doc(a, target)
            return Hover(text, e.span) if text else None
        if e.id in SCHEMA:
            return Hover(section_doc(e.id), e.span)
        if e.id == MEASURES:
            return Hover(measures_doc(a), e.span)
    t = a.checked.type_of(e)
    return Hover(f"{_code(_short(e))}\n\ntype `{t}`", e.span) if t != ANY else None


# ------------------------------------------------------- definition, references


def _value_decl(a: Analysis, name: str) -> A.Let | A.Data | None:
    let = a.checked.lets.get(name)
    if let is not None:
        return let
    return a.data_decls.get(name)


def _target(a: Analysis, here: At, offset: int) -> A.Let | A.Data | A.Measure | None:
    """The let, data list or measure named at the cursor: a use, or its definition."""
    d = here.decl
    if isinstance(d, (A.Let, A.Data, A.Measure)) and d.name_span.start <= offset <= d.name_span.end:
        return d
    e = here.innermost
    if isinstance(e, A.Name):
        return _value_decl(a, e.id)
    if isinstance(e, A.Attr) and isinstance(e.obj, A.Name) and e.obj.id == MEASURES:
        return _measures(a).get(e.name)
    return None


def definition(a: Analysis, module: A.Module, offset: int) -> list[A.Span]:
    here = at(module, offset)
    target = _target(a, here, offset) if here is not None else None
    return [target.name_span] if target is not None else []


def references(a: Analysis, module: A.Module, offset: int, include_declaration: bool) -> list[A.Span]:
    here = at(module, offset)
    target = _target(a, here, offset) if here is not None else None
    if target is None:
        return []
    if isinstance(target, A.Measure):
        uses = field_uses(a.checked.modules, MEASURES, target.name)
    else:
        uses = name_uses(a.checked.modules, target.name)
    return ([target.name_span] if include_declaration else []) + uses


# ------------------------------------------------------------------- completion


@dataclass(frozen=True)
class Completion:
    label: str
    kind: T.CompletionItemKind
    detail: str | None = None
    doc: str | None = None


def _in_comment_or_string(line_prefix: str) -> bool:
    rest = _STRINGS.sub("", line_prefix)
    return "#" in rest or '"' in rest


def completion(text: str, offset: int, a: Analysis | None) -> list[Completion]:
    """Completions at `offset` of `text` (the buffer as typed: it need not parse)."""
    line_start = text.rfind("\n", 0, offset) + 1
    prefix = text[line_start:offset]
    if _in_comment_or_string(prefix):
        priced = _PRICED_STRING.search(prefix)
        return _priced(priced, a) if priced is not None else []
    dotted = _DOTTED_END.search(prefix)
    if dotted is not None:
        return _members(dotted.group(1), a)
    word = _WORD_END.search(prefix)
    start = offset - (len(word.group(0)) if word else 0)
    before = text[line_start:start]
    # The grammar says what may come here, parsing from the start of this declaration;
    # after an earlier error in it, offer everything that could fit.
    decl = text[declaration_start(text, start) : start]
    if decl.startswith("attribute"):
        return _attribute_words(decl)
    words, name_ok = expected(decl) or (keywords(), True)
    items: list[Completion] = []
    if name_ok and not decl.startswith("policy"):  # a header's keys are free names
        prev = _PREV_WORDS.search(before)
        special = _after(prev) if prev is not None else None
        items.extend(special if special is not None else _values(a))
    at_line_start = not before.strip()
    if at_line_start and words & _LINE_STARTS:
        words = words & _LINE_STARTS  # a new line starts a clause more often than it continues an expression
    elif "and" in words:
        words = words - _LINE_STARTS  # mid-line after an expression: operators
    for kw in sorted(words):
        items.append(Completion(kw, T.CompletionItemKind.Keyword))
    return items


def _attribute_words(decl: str) -> list[Completion]:
    """In an attribute declaration: its sources inside the block, its type after `:`,
    else the sections a policy may add fields to."""
    if "{" in decl:
        return [Completion(w, T.CompletionItemKind.Keyword, "source", src.doc) for w, src in ATTRIBUTE_SOURCES.items()]
    if ":" in decl:
        return [Completion(w, T.CompletionItemKind.TypeParameter, "type") for w in TYPE_WORDS]
    return [Completion(s, T.CompletionItemKind.Module, "request section") for s in ATTRIBUTE_SECTIONS]


# An open string argument of price() or model_group(): group 1 the function, group 2 a
# complete first argument (then the string is the token class), group 3 what is typed.
_PRICED_STRING = re.compile(r'\b(price|model_group)\(\s*(?:([^,()"]+|"[^"]*")\s*,\s*)?"([^"]*)$')


def _priced(m: re.Match[str], a: Analysis | None) -> list[Completion]:
    """Inside `price(model, "` the price table's token classes; inside `price("` or
    `model_group("` its models and groups."""
    name = a.checked.price_table if a is not None else None
    table = a.checked.data[name].value if a is not None and name is not None else None
    if m.group(2) is not None:
        if m.group(1) != "price":
            return []
        classes = table.classes if isinstance(table, PriceTable) else PRICE_CLASSES
        return [Completion(c, T.CompletionItemKind.EnumMember, "token class") for c in classes]
    if not isinstance(table, PriceTable):
        return []
    return [
        Completion(model, T.CompletionItemKind.Value, f"group {group}" if group != model else "model")
        for model, group in table.groups.items()
    ]


def _after(prev: re.Match[str]) -> list[Completion] | None:
    """What a NAME means right after `prev`: a new name (nothing to offer), a data
    loader or a mode; None when it is an ordinary expression."""
    word, named = prev.group(1), prev.group(2)
    if named is not None:
        return (
            [Completion(n, T.CompletionItemKind.Function, doc) for n, doc in LOADERS.items()]
            if word == "data"
            else None
        )
    if word in _NAMING:
        return []
    if word in _MODES:
        return [Completion(m, T.CompletionItemKind.EnumMember) for m in _MODES[word]]
    return None


def _values(a: Analysis | None) -> list[Completion]:
    items = [Completion(s, T.CompletionItemKind.Module, "request section") for s in SCHEMA]
    items += [Completion(f.name, T.CompletionItemKind.Function, signature(f), f.doc) for f in FUNCTIONS.values()]
    if a is not None:
        for name, let in a.checked.lets.items():
            t = a.checked.type_of(let.expr) if let.expr is not None else ANY
            items.append(Completion(name, T.CompletionItemKind.Variable, f"let: {t}"))
        for name, d in a.data_decls.items():
            value = a.checked.data.get(name)
            items.append(Completion(name, T.CompletionItemKind.Constant, f"data: {value.type if value else d.loader}"))
        if a.checked.measure_decls:
            items.append(Completion(MEASURES, T.CompletionItemKind.Module, "the policy's measures", measures_doc(a)))
    return items


def _members(obj: str, a: Analysis | None) -> list[Completion]:
    if obj == MEASURES:
        measures = _measures(a) if a is not None else {}
        return [
            Completion(name, T.CompletionItemKind.Field, f"measure: {_kind(m)}", measure_doc(m))
            for name, m in measures.items()
        ]
    schema, declared = (a.checked.schema, a.checked.attributes) if a is not None else (SCHEMA, ())
    if obj in schema:
        return [
            Completion(name, T.CompletionItemKind.Field, str(t), field_doc(obj, name, declared))
            for name, t in schema[obj].items()
        ]
    return []


# ------------------------------------------------------------------ quick fixes


def replacement(d: Diagnostic) -> str | None:
    """The text a "did you mean" hint proposes for the diagnostic's span."""
    m = _DID_YOU_MEAN.fullmatch(d.hint or "")
    if m is None or d.span is None:
        return None
    new, old = m.group(1), d.span.text
    if old.startswith('"'):
        return F.quote(new)
    if "." in old and "." not in new:  # `measures.NAME`: the hint names the measure only
        return old.rsplit(".", 1)[0] + "." + new
    return new


@dataclass(frozen=True)
class Edit:
    start: int  # offsets in the module's (normalised) text
    end: int
    text: str


def join_unless(module: A.Module, offset: int) -> list[Edit]:
    """Edits that join the `unless` clauses of a block into one, with `or`, for the
    E0211 at `offset` (a block takes one `unless`; E0211 marks each one after the first)."""
    block = next((d for d in module.decls if isinstance(d, A.Block) and d.span.start <= offset <= d.span.end), None)
    clauses = block.find_all("unless") if block is not None else []
    if offset not in {c.span.start for c in clauses[1:]} or not all(c.exprs for c in clauses):
        return []
    joined = clauses[0].exprs[0]
    for c in clauses[1:]:
        joined = A.Binary(joined.span, "or", joined, c.exprs[0])
    edits = [Edit(clauses[0].span.start, clauses[0].span.end, f"unless {F.expr(joined)}")]
    text = module.source.text
    for c in clauses[1:]:
        start, end = c.span.start, c.span.end
        line_start = text.rfind("\n", 0, start) + 1
        line_end = text.find("\n", end)
        line_end = len(text) if line_end < 0 else line_end
        if not text[line_start:start].strip() and not text[end:line_end].strip():
            start, end = line_start, min(line_end + 1, len(text))  # the whole line
        edits.append(Edit(start, end, ""))
    return edits


_GUARD = re.compile(r"guard it: `when (.+)`")


def guard_null_key(module: A.Module, offset: int, hint: str | None) -> list[Edit]:
    """The edit W0312's hint proposes for the key at `offset`: a `when` clause with the
    guard under the key, or the guard joined to the block's `when` with `and`."""
    m = _GUARD.fullmatch(hint or "")
    block = next((d for d in module.decls if isinstance(d, A.Block) and d.span.start <= offset <= d.span.end), None)
    key = block.find("key") if block is not None else None
    if m is None or block is None or key is None:
        return []
    guard, diags = parse(f"let guard = {m.group(1)}\n")
    decl = guard.decls[0] if guard.decls and not diags else None
    if not isinstance(decl, A.Let) or decl.expr is None:
        return []
    whens = block.find_all("when")
    if len(whens) == 1 and whens[0].exprs:
        w = whens[0]
        joined = A.Binary(w.span, "and", w.exprs[0], decl.expr)
        return [Edit(w.span.start, w.span.end, f"when {F.expr(joined)}")]
    if whens:  # several: E0211 first
        return []
    text = module.source.text
    line_start = text.rfind("\n", 0, key.span.start) + 1
    indent = text[line_start : key.span.start]
    end = text.find("\n", key.span.end)
    end = len(text) if end < 0 else end
    return [Edit(end, end, f"\n{indent}when {m.group(1)}")]


# ------------------------------------------------------- outline, signatures


@dataclass(frozen=True)
class Symbol:
    name: str
    kind: T.SymbolKind
    detail: str
    span: A.Span  # the whole declaration
    name_span: A.Span


_SYMBOL_KINDS: tuple[tuple[type[A.Decl], T.SymbolKind, str], ...] = (
    (A.PolicyHeader, T.SymbolKind.Package, "policy"),
    (A.Let, T.SymbolKind.Variable, "let"),
    (A.Data, T.SymbolKind.Constant, "data"),
    (A.Rule, T.SymbolKind.Event, "rule"),
    (A.Limit, T.SymbolKind.Object, "limit"),
    (A.Measure, T.SymbolKind.Number, "measure"),
    (A.Exempt, T.SymbolKind.Boolean, "exempt"),
    (A.Attribute, T.SymbolKind.Field, "attribute"),
)


def symbols(module: A.Module) -> list[Symbol]:
    """The declarations of a file, for the editor's outline."""
    out = []
    for d in module.decls:
        kind, word = next(((k, w) for cls, k, w in _SYMBOL_KINDS if isinstance(d, cls)), (T.SymbolKind.Object, ""))
        detail = word
        if isinstance(d, A.Attribute):
            detail = f"{word} {d.type_text}"
        elif isinstance(d, A.Block):
            eff, window = d.find("effect"), d.find("window")
            per = None
            if window is not None and window.text is not None:
                per = f"per calendar {window.text}"
            elif window is not None and window.exprs:
                per = f"per {_short(window.exprs[0])}"
            detail = " ".join(x for x in (word, eff.text if eff else None, per) if x)
        out.append(Symbol(d.name, kind, detail, d.span, d.name_span))
    return out


_COMMENTS = re.compile(r"#[^\n]*")


def signature_at(text: str, offset: int) -> tuple[Func, int] | None:
    """The function whose argument list the cursor is in, and which argument."""
    start = declaration_start(text, offset)
    chunk = _STRINGS.sub(lambda m: " " * len(m.group(0)), text[start:offset])
    chunk = _COMMENTS.sub(lambda m: " " * len(m.group(0)), chunk)
    depth = commas = 0
    for i in range(len(chunk) - 1, -1, -1):
        ch = chunk[i]
        if ch in ")]}":
            depth += 1
        elif ch in "([{":
            if depth > 0:
                depth -= 1
                continue
            name = _WORD_END.search(chunk[:i].rstrip())
            f = FUNCTIONS.get(name.group(0)) if ch == "(" and name is not None else None
            return (f, commas) if f is not None else None
        elif ch == "," and depth == 0:
            commas += 1
    return None
