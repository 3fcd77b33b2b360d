"""Text -> AST. Lark (LALR) builds a parse tree with positions; a non-recursive
transformer turns it into `dsl.ast` nodes; comments are collected by a lexer
callback and attached to the declaration or clause they precede.

Errors never stop at the first: when the whole file fails to parse, each
top-level declaration is parsed on its own so that every broken one is reported.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any
from collections.abc import Callable

from lark import Lark, Token, Transformer_NonRecursive, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from dsl import ast as A
from dsl.diagnostics import Diagnostic
from dsl.keywords import CLAUSES, DECLARATIONS, EFFECTS

MAX_SOURCE_BYTES = 1 << 20
MAX_NESTING = 64
# Compiled expressions become nested Python (about two brackets per level; CPython allows
# 200), and the checker and compiler recurse once per level: keep well below both.
MAX_EXPR_DEPTH = 64
DEPTH_HINT = "write a long chain of alternatives as `x in [...]`, or split the condition over several rules"

_GRAMMAR = Path(__file__).with_name("grammar.lark")

_DECL_START = re.compile(r"^(" + "|".join(DECLARATIONS) + r")\b", re.M)

_NUMBER_SUFFIX = {"k": 1_000, "M": 1_000_000, "G": 1_000_000_000}
_DURATION_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@functools.lru_cache(maxsize=1)
def _lark() -> Lark:
    return Lark(
        _GRAMMAR.read_text(),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=False,
        cache=False,
    )


def declaration_start(text: str, end: int) -> int:
    """Where the top-level declaration that `end` falls in starts (0 before the first)."""
    start = 0
    for m in _DECL_START.finditer(text, 0, end):
        start = m.start()
    return start


def expected(text: str) -> tuple[frozenset[str], bool] | None:
    """What the grammar accepts after `text` (the beginning of a declaration): the
    keywords, and whether a name may come; None when `text` does not parse. An
    editor completes from it."""
    parser = _lark().parse_interactive(text)
    try:
        parser.exhaust_lexer()
    except UnexpectedInput:
        return None
    words: set[str] = set()
    accepts: set[str] = parser.accepts()  # type: ignore[no-untyped-call]  # lark leaves it unannotated
    for name in accepts:
        if name.startswith("$"):
            continue
        pattern = _lark().get_terminal(name).pattern
        if pattern.type == "str" and pattern.value.isidentifier():
            words.add(pattern.value)
    return frozenset(words), "NAME" in accepts


def keywords() -> frozenset[str]:
    """Every keyword of the grammar."""
    return frozenset(
        t.pattern.value for t in _lark().terminals if t.pattern.type == "str" and t.pattern.value.isidentifier()
    )


def parse(text: str, filename: str = "<input>") -> tuple[A.Module, list[Diagnostic]]:
    """Parse one file. Always returns a module (possibly partial) and the diagnostics."""
    # Line ends as Python's text files read them (universal newlines), so that a
    # string parses the same as the file it is written to: a lone CR ends a line.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    source = A.Source(filename, text)
    pre = _prescan(source)
    if pre:
        return A.Module(source, []), pre
    comments = _comments(text)
    diags: list[Diagnostic] = []
    try:
        decls = _build(source, text, diags)
    except UnexpectedInput:
        decls = _parse_in_chunks(source, diags)
    module = A.Module(source, decls)
    _check_depth(module, diags)
    _attach_comments(module, comments)
    module.suppressions = _suppressions(comments)
    return module, diags


def _comments(text: str) -> list[A.Comment]:
    # Line numbers counted incrementally: counting from the start for each comment is quadratic.
    out: list[A.Comment] = []
    line, pos = 1, 0
    for m in _COMMENT_RE.finditer(text):
        line += text.count("\n", pos, m.start())
        pos = m.start()
        out.append(A.Comment(m.group(0).rstrip(), line))
    return out


def parse_file(path: str | Path) -> tuple[A.Module, list[Diagnostic]]:
    p = Path(path)
    return parse(p.read_text(encoding="utf-8"), str(path))


# Comments are found by a scan that skips strings, so `"#"` inside a string is not a comment.
_COMMENT_RE = re.compile(r'#[^\n]*|"(?:\\.|[^"\\\n])*"?', re.M)


def _suppressions(comments: list[A.Comment]) -> dict[int, set[str]]:
    """`# policy: ignore[W0301, W0303]` silences those codes on its line and the next."""
    out: dict[int, set[str]] = {}
    for c in comments:
        m = re.search(r"policy:\s*ignore\[([A-Z0-9,\s]+)\]", c.text)
        if m:
            codes = {x.strip() for x in m.group(1).split(",") if x.strip()}
            for line in (c.line, c.line + 1):
                out.setdefault(line, set()).update(codes)
    return out


def _build(source: A.Source, text: str, diags: list[Diagnostic]) -> list[A.Decl]:
    tree = _lark().parse(text)
    try:
        decls: list[A.Decl] = _ToAst(source, diags).transform(tree).children
        return decls
    except VisitError as e:  # unwrap to the real cause, as cel-python does
        raise e.orig_exc from None


def _parse_in_chunks(source: A.Source, diags: list[Diagnostic]) -> list[A.Decl]:
    """Parse each top-level declaration alone, padding with newlines so that
    positions stay those of the whole file; report every broken one."""
    text = source.text
    starts = [m.start() for m in _DECL_START.finditer(text)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    decls: list[A.Decl] = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(text)
        prefix = "".join(ch if ch == "\n" else " " for ch in text[:start])
        chunk = prefix + text[start:end]
        try:
            decls.extend(_build(source, chunk, diags))
        except UnexpectedInput as e:
            diags.append(_syntax_error(source, e))
    return decls


def _prescan(source: A.Source) -> list[Diagnostic]:
    text = source.text
    if len(text.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
        return [Diagnostic("E0105", f"policy file is larger than {MAX_SOURCE_BYTES} bytes", _point(source, 1, 1, 0))]
    depth = 0
    line, col = 1, 0
    in_str = in_comment = False
    for i, ch in enumerate(text):
        col += 1
        if ch == "\n":
            line, col, in_str, in_comment = line + 1, 0, False, False
            continue
        if in_comment:
            continue
        if in_str:
            if ch == '"' and text[i - 1] != "\\":
                in_str = False
            continue
        if ch == "#":
            in_comment = True
        elif ch == '"':
            in_str = True
        elif ch in "([{":
            depth += 1
            if depth > MAX_NESTING:
                return [
                    Diagnostic(
                        "E0105",
                        f"brackets nested deeper than {MAX_NESTING} levels",
                        _point(source, line, col, i),
                        hint="split the expression with `let` definitions",
                    )
                ]
        elif ch in ")]}":
            depth = max(0, depth - 1)
    return []


def _check_depth(module: A.Module, diags: list[Diagnostic]) -> None:
    """Replace expressions deep enough to exhaust recursion in later stages (found
    iteratively) by an `Invalid` node, so that nothing walks them; the checker reports it."""
    for d in module.decls:
        if isinstance(d, A.Let) and d.expr is not None and _too_deep(d.expr):
            d.expr = _deep(d.expr)
        elif isinstance(d, A.Block):
            for c in d.clauses:
                c.exprs = [_deep(e) if _too_deep(e) else e for e in c.exprs]


def _too_deep(root: A.Expr) -> bool:
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_EXPR_DEPTH:
            return True
        stack.extend((c, depth + 1) for c in node.children())
    return False


def _deep(root: A.Expr) -> A.Invalid:
    return A.Invalid(root.span, f"expression nested deeper than {MAX_EXPR_DEPTH} levels", hint=DEPTH_HINT, code="E0105")


def _point(source: A.Source, line: int, col: int, pos: int) -> A.Span:
    return A.Span(source, line, col, line, col + 1, pos, pos + 1)


# ------------------------------------------------------------------ syntax errors

_TOKEN_NAMES = {
    "NAME": "a name",
    "STRING": "a string",
    "INT_LIT": "an integer",
    "FLOAT_LIT": "a number",
    "DURATION": "a duration (e.g. 30s, 5m, 1d)",
    "COMP_OP": "a comparison",
    "ADD_OP": "`+` or `-`",
    "MUL_OP": "`*`, `/` or `%`",
    "$END": "the end of the file",
}


def _describe_terminal(name: str) -> str:
    if name in _TOKEN_NAMES:
        return _TOKEN_NAMES[name]
    for t in _lark().terminals:
        if t.name == name and t.pattern.type == "str":
            return f"`{t.pattern.value}`"
    return name.lower()


class _CutExpression(UnexpectedInput):
    """A clause word that a cut expression above swallowed as a name (found while
    building the AST: the parse itself succeeded, e.g. `60 + unless in ternal_eval`)."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# The end of a line that needs an operand on the next one.
_OPERATOR_END = re.compile(r"(\?\?|==|!=|<=|>=|[-+*/%<>(\[,]|\b(?:and|or|not|in|matches|if|then|else))\s*$")


def _cut_before(source: A.Source, word: str, start: int) -> Diagnostic | None:
    """One error at the cut when the clause word at `start` begins its line and the code
    above ends in an operator: `max 60 +` then `unless internal_eval` is an incomplete
    `max`, not a sum that reads a name `unless`."""
    text = source.text
    line_start = text.rfind("\n", 0, start) + 1
    if text[line_start:start].strip():
        return None
    end = line_start - 1  # the newline that ends the line above
    while end >= 0:
        begin = text.rfind("\n", 0, end) + 1
        # Strings blanked and comments dropped, positions kept.
        code = _COMMENT_RE.sub(lambda m: "" if m.group(0).startswith("#") else " " * len(m.group(0)), text[begin:end])
        if code.strip():
            m = _OPERATOR_END.search(code)
            if m is None:
                return None
            op = m.group(1)
            pos = begin + m.start(1)
            line = text.count("\n", 0, pos) + 1
            col = pos - begin + 1
            span = A.Span(source, line, col, line, col + len(op), pos, pos + len(op))
            return Diagnostic(
                "E0101",
                f"incomplete expression: nothing after `{op}`",
                span,
                hint=f"`{word}` on the next line starts a new clause: finish the expression or remove `{op}`",
            )
        end = begin - 1
    return None


_LINE_WORD = re.compile(r"^[ \t]*([A-Za-z_]+)", re.M)


def _first_cut(source: A.Source, start: int, end: int) -> Diagnostic | None:
    """The first cut expression between `start` and `end`: the parser may read on past it
    (`(60 * unless in ternal_eval`) and stumble only later."""
    for m in _LINE_WORD.finditer(source.text, start, end):
        if m.group(1) in _CLAUSE_WORDS:
            cut = _cut_before(source, m.group(1), m.start(1))
            if cut is not None:
                return cut
    return None


def _syntax_error(source: A.Source, e: UnexpectedInput) -> Diagnostic:
    if isinstance(e, _CutExpression):
        return e.diagnostic
    line, col = e.line if e.line > 0 else 1, e.column if e.column > 0 else 1
    pos = e.pos_in_stream or 0
    if isinstance(e, UnexpectedToken):
        tok = e.token
        if tok.type == "$END":
            msg, width = "unexpected end of file", 1
        else:
            msg, width = f"unexpected {_token_text(tok)}", max(1, len(str(tok)))
            whole = _IDENT.match(source.text, tok.start_pos or 0)
            if str(tok).isidentifier() and whole is not None and len(whole.group(0)) > len(str(tok)):
                # A keyword lexed from the front of a longer name (`in` of `internal_eval`).
                msg, width = f"unexpected name `{whole.group(0)}`", len(whole.group(0))
        expected = sorted({_describe_terminal(t) for t in e.expected if not t.startswith("__")})
        hint = _hint_for(tok, e.expected)
        prev = _previous_token(e)
        before = source.text[: tok.start_pos or 0]
        cut = _first_cut(source, declaration_start(source.text, tok.start_pos or 0), tok.end_pos or len(source.text))
        if cut is not None:
            return cut
        if prev is not None and re.search(r"(^|\n)exempt\s+when\s*$", before):
            # `exempt when ...`: `when` was read as the exemption's name
            msg, hint = "an exemption needs a name before its body", EXEMPT_SHAPE
            line, col, pos, width = prev.line or 1, prev.column or 1, prev.start_pos or 0, len(str(prev))
        elif prev is not None and prev.type == "NAME" and str(prev) in _CLAUSE_WORDS:
            # `deny when (1 +` then `reason "y"`: the clause word was read as part of the expression.
            msg = f"the expression before `{prev}` (line {prev.line}) is incomplete"
            hint = "check for an unclosed bracket or a trailing operator on the line above"
            line, col, pos, width = prev.line or 1, prev.column or 1, prev.start_pos or 0, len(str(prev))
        hint = _allow_hint(tok, e.expected) or hint
        if tok.type == "WHEN" and re.search(r"(^|\n)exempt(\s+\w+)?\s*$", before):
            hint = EXEMPT_SHAPE  # `exempt when ...` or `exempt internal when ...`: a one-line form
        if hint is None and expected and len(expected) <= 6:
            hint = "expected " + ", ".join(expected)
        span = A.Span(source, line, col, line, col + width, pos, pos + width)
        return Diagnostic("E0101", msg, span, hint=hint)
    if isinstance(e, UnexpectedCharacters):
        ch = source.text[pos] if pos < len(source.text) else ""
        hint = None
        if ch == "=":
            hint = "`=` is not a comparison; use `==`"
        elif ch in "&|!":
            hint = "use `and`, `or` and `not`"
        elif ch == "'":
            hint = 'strings use double quotes: "..."'
        return Diagnostic("E0101", f"unexpected character {ch!r}", _point(source, line, col, pos), hint=hint)
    if isinstance(e, UnexpectedEOF):
        return Diagnostic("E0101", "unexpected end of file", _point(source, line, col, pos))
    return Diagnostic("E0101", str(e).splitlines()[0], _point(source, line, col, pos))


_CLAUSE_WORDS = {*CLAUSES, *EFFECTS, *DECLARATIONS}


EXEMPT_SHAPE = "an exemption has a name and a body: `exempt internal { when account.id in internal_accounts }`"


def _allow_hint(tok: Token, expected: set[str]) -> str | None:
    """`allow when ...`: the language allows whatever no rule or limit refuses; say what does
    the job instead, in a rule (an exemption of its own) or at the top (one for every limit)."""
    if tok.type != "NAME" or str(tok) != "allow":
        return None
    if "DENY" in expected and "UNLESS" in expected:
        return (
            "a rule denies, throttles or flags; to let some requests through it, add `unless <condition>`; "
            "to let them through every limit, declare `exempt NAME { when <condition> }`"
        )
    return (
        "there is no `allow`: what no rule or limit refuses is allowed; to let some requests through every "
        "limit (and chosen rules), declare `exempt NAME { when <condition> }`"
    )


def _previous_token(e: UnexpectedToken) -> Token | None:
    history = getattr(e, "token_history", None)
    return history[-1] if history else None


def _token_text(tok: Token) -> str:
    if tok.type == "NAME":
        return f"name `{tok}`"
    if tok.type == "STRING":
        return f"string {tok}"
    return f"`{tok}`"


def _hint_for(tok: Token, expected: set[str]) -> str | None:
    if str(tok) == "=" and "COMP_OP" in expected:
        return "`=` is not a comparison; use `==`"
    if str(tok) in ("&&", "||"):
        return "use `and` and `or`"
    if str(tok) == "=" and "EQUAL" not in expected:
        return "`=` is not a comparison; use `==`"
    if tok.type == "NAME" and str(tok) in ("elif", "elsif", "then"):
        return "conditional expressions read `if A then B else C`"
    if tok.type == "STRING" and "REASON" in expected:
        return "each clause goes on its own line and starts with a keyword (reason, status, header, ...)"
    return None


# --------------------------------------------------------------------- transform


def _span(source: A.Source, meta: Any) -> A.Span:
    return A.Span(source, meta.line, meta.column, meta.end_line, meta.end_column, meta.start_pos, meta.end_pos)


def _tok_span(source: A.Source, tok: Token) -> A.Span:
    return A.Span(
        source,
        tok.line or 1,
        tok.column or 1,
        tok.end_line or 1,
        tok.end_column or 1,
        tok.start_pos or 0,
        tok.end_pos or 0,
    )


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "0": "\0"}


def _unquote(source: A.Source, tok: Token, diags: list[Diagnostic]) -> str:
    body = str(tok)[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1] if i + 1 < len(body) else ""
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2 : i + 6]):
            out.append(chr(int(body[i + 2 : i + 6], 16)))
            i += 6
        else:
            col = (tok.column or 1) + 1 + i
            pos = (tok.start_pos or 0) + 1 + i
            diags.append(
                Diagnostic(
                    "E0104",
                    f"invalid escape `\\{nxt}` in string",
                    A.Span(source, tok.line or 1, col, tok.line or 1, col + 2, pos, pos + 2),
                    hint='valid escapes are \\n \\t \\r \\" \\\\ \\0 and \\uXXXX; in regular expressions write \\\\d for \\d',
                )
            )
            out.append(nxt)
            i += 2
    return "".join(out)


def parse_number(text: str) -> int | float:
    t = text.replace("_", "")
    mult = 1
    if t[-1] in _NUMBER_SUFFIX:
        mult, t = _NUMBER_SUFFIX[t[-1]], t[:-1]
    if re.fullmatch(r"\d+", t):
        return int(t) * mult
    value = float(t) * mult
    return int(value) if mult != 1 and value.is_integer() else value


def parse_duration(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)", text)
    assert m, text
    return float(m.group(1)) * _DURATION_UNIT[m.group(2)]


@v_args(meta=True)
class _ToAst(Transformer_NonRecursive[Token, Any]):
    def __init__(self, source: A.Source, diags: list[Diagnostic]) -> None:
        super().__init__()
        self.source = source
        self.diags = diags

    def _s(self, meta: Any) -> A.Span:
        return _span(self.source, meta)

    def _str(self, tok: Token) -> str:
        return _unquote(self.source, tok, self.diags)

    # ---- declarations
    def start(self, meta: Any, children: list[Any]) -> Tree[Any]:
        return Tree("start", children)

    def policy_header(self, meta: Any, ch: list[Any]) -> A.PolicyHeader:
        name_tok, *items = ch
        return A.PolicyHeader(self._s(meta), self._str(name_tok), _tok_span(self.source, name_tok), meta=items)

    def meta_item(self, meta: Any, ch: list[Any]) -> A.MetaItem:
        return A.MetaItem(str(ch[0]), self._str(ch[1]), self._s(meta))

    def let_decl(self, meta: Any, ch: list[Any]) -> A.Let:
        return A.Let(self._s(meta), str(ch[0]), _tok_span(self.source, ch[0]), expr=ch[1])

    def data_decl(self, meta: Any, ch: list[Any]) -> A.Data:
        name, loader, path = ch
        return A.Data(
            self._s(meta),
            str(name),
            _tok_span(self.source, name),
            loader=str(loader),
            loader_span=_tok_span(self.source, loader),
            path=self._str(path),
            path_span=_tok_span(self.source, path),
        )

    def rule_decl(self, meta: Any, ch: list[Any]) -> A.Rule:
        return A.Rule(self._s(meta), str(ch[0]), _tok_span(self.source, ch[0]), clauses=list(ch[1:]))

    def limit_decl(self, meta: Any, ch: list[Any]) -> A.Limit:
        return A.Limit(self._s(meta), str(ch[0]), _tok_span(self.source, ch[0]), clauses=list(ch[1:]))

    def measure_decl(self, meta: Any, ch: list[Any]) -> A.Measure:
        return A.Measure(self._s(meta), str(ch[0]), _tok_span(self.source, ch[0]), clauses=list(ch[1:]))

    def exempt_decl(self, meta: Any, ch: list[Any]) -> A.Exempt:
        return A.Exempt(self._s(meta), str(ch[0]), _tok_span(self.source, ch[0]), clauses=list(ch[1:]))

    def attribute_decl(self, meta: Any, ch: list[Any]) -> A.Attribute:
        section, name, (type_text, type_span), *sources = ch
        span = _tok_span(self.source, section)
        end = _tok_span(self.source, name)
        path_span = A.Span(self.source, span.line, span.column, end.end_line, end.end_column, span.start, end.end)
        return A.Attribute(
            self._s(meta),
            f"{section}.{name}",
            path_span,
            clauses=list(sources),
            type_text=type_text,
            type_span=type_span,
        )

    def attr_type(self, meta: Any, ch: list[Any]) -> tuple[str, A.Span]:
        """The type as written, normalised (`map<string, string>`), and where it is."""
        name, *args = ch
        text = str(name) + (f"<{', '.join(a[0] for a in args)}>" if args else "")
        return text, self._s(meta)

    def attr_source(self, meta: Any, ch: list[Any]) -> A.Clause:
        word, *args = ch
        exprs: list[A.Expr] = [A.Literal(_tok_span(self.source, a), self._str(a), "string") for a in args]
        return A.Clause(str(word), self._s(meta), exprs, str(word), _tok_span(self.source, word))

    def rules_clause(self, meta: Any, ch: list[Any]) -> A.Clause:
        names: list[A.Expr] = [A.Name(_tok_span(self.source, t), str(t)) for t in ch]
        return A.Clause("rules", self._s(meta), names)

    # ---- clauses
    def effect(self, meta: Any, ch: list[Token]) -> Token:
        return ch[0]

    def effect_when(self, meta: Any, ch: list[Any]) -> A.Clause:
        return A.Clause("effect", self._s(meta), [ch[1]], str(ch[0]), _tok_span(self.source, ch[0]))

    def effect_clause(self, meta: Any, ch: list[Any]) -> A.Clause:
        return A.Clause("effect", self._s(meta), [], str(ch[0]), _tok_span(self.source, ch[0]))

    def _expr_clause(kind: str) -> Callable[[_ToAst, Any, list[Any]], A.Clause]:  # type: ignore[misc]
        def build(self: _ToAst, meta: Any, ch: list[Any]) -> A.Clause:
            return A.Clause(kind, self._s(meta), list(ch))

        return build

    unless_clause = _expr_clause("unless")
    when_clause = _expr_clause("when")
    key_clause = _expr_clause("key")
    sum_clause = _expr_clause("sum")
    distinct_clause = _expr_clause("distinct")
    usage_clause = _expr_clause("usage")
    window_clause = _expr_clause("window")
    max_clause = _expr_clause("max")
    count_clause = _expr_clause("count")
    shadow_clause = _expr_clause("shadow")

    def reason_clause(self, meta: Any, ch: list[Any]) -> A.Clause:
        return A.Clause("reason", self._s(meta), [], self._str(ch[0]), _tok_span(self.source, ch[0]))

    def header_clause(self, meta: Any, ch: list[Any]) -> A.Clause:
        return A.Clause("header", self._s(meta), [ch[1]], self._str(ch[0]), _tok_span(self.source, ch[0]))

    def _word_clause(kind: str) -> Callable[[_ToAst, Any, list[Any]], A.Clause]:  # type: ignore[misc]
        """A clause whose value is one token taken as written: status, retry_after, record, on_error, block."""

        def build(self: _ToAst, meta: Any, ch: list[Any]) -> A.Clause:
            return A.Clause(kind, self._s(meta), [], str(ch[0]), _tok_span(self.source, ch[0]))

        return build

    def calendar_window_clause(self, meta: Any, ch: list[Any]) -> A.Clause:
        """`window calendar month in "Europe/Paris"`: text is the unit, exprs the time zone (if given)."""
        unit, *zone = ch
        exprs: list[A.Expr] = [A.Literal(_tok_span(self.source, z), self._str(z), "string") for z in zone]
        return A.Clause("window", self._s(meta), exprs, str(unit), _tok_span(self.source, unit))

    status_clause = _word_clause("status")
    retry_clause = _word_clause("retry_after")
    record_clause = _word_clause("record")
    on_error_clause = _word_clause("on_error")
    block_clause = _word_clause("block")

    # ---- expressions
    def int_lit(self, meta: Any, ch: list[Any]) -> A.Literal:
        return A.Literal(self._s(meta), parse_number(str(ch[0])), "int")

    def float_lit(self, meta: Any, ch: list[Any]) -> A.Literal:
        v = parse_number(str(ch[0]))
        return A.Literal(self._s(meta), v, "int" if isinstance(v, int) else "float")

    def duration_lit(self, meta: Any, ch: list[Any]) -> A.Literal:
        return A.Literal(self._s(meta), parse_duration(str(ch[0])), "duration")

    def bad_number(self, meta: Any, ch: list[Any]) -> A.Invalid:
        text = str(ch[0])
        m = re.match(r"[\d_.]+(.*)", text)
        suffix = m.group(1) if m else text
        return A.Invalid(
            self._s(meta),
            f"`{text}` is not a number or a duration: unknown unit `{suffix}`",
            hint="durations take ms, s, m, h, d or w (e.g. 30s, 5m, 1d); numbers take k, M or G (e.g. 10k, 2M)",
        )

    def string_lit(self, meta: Any, ch: list[Any]) -> A.Literal:
        return A.Literal(self._s(meta), self._str(ch[0]), "string")

    def raw_string_lit(self, meta: Any, ch: list[Any]) -> A.Literal:
        # r"..." takes backslashes literally: the natural way to write a regex.
        return A.Literal(self._s(meta), str(ch[0])[2:-1], "string")

    def unterminated_string(self, meta: Any, ch: list[Any]) -> A.Invalid:
        return A.Invalid(
            self._s(meta), "unterminated string", hint='close the string with `"` on the same line', code="E0103"
        )

    def true_lit(self, meta: Any, ch: list[Any]) -> A.Literal:
        return A.Literal(self._s(meta), True, "bool")

    def false_lit(self, meta: Any, ch: list[Any]) -> A.Literal:
        return A.Literal(self._s(meta), False, "bool")

    def null_lit(self, meta: Any, ch: list[Any]) -> A.Literal:
        return A.Literal(self._s(meta), None, "null")

    def name(self, meta: Any, ch: list[Any]) -> A.Name:
        word = str(ch[0])
        if word in _CLAUSE_WORDS:
            cut = _cut_before(self.source, word, meta.start_pos)
            if cut is not None:
                raise _CutExpression(cut)
        return A.Name(self._s(meta), word)

    def attr(self, meta: Any, ch: list[Any]) -> A.Attr:
        return A.Attr(self._s(meta), ch[0], str(ch[1]))

    def index(self, meta: Any, ch: list[Any]) -> A.Index:
        return A.Index(self._s(meta), ch[0], ch[1])

    def call(self, meta: Any, ch: list[Any]) -> A.Call:
        name, *args = ch
        return A.Call(self._s(meta), str(name), [a for a in args if a is not None], _tok_span(self.source, name))

    def neg(self, meta: Any, ch: list[Any]) -> A.Expr:
        operand = ch[0]
        if isinstance(operand, A.Literal) and operand.kind in ("int", "float"):
            return A.Literal(self._s(meta), -operand.value, operand.kind)
        return A.Unary(self._s(meta), "-", operand)

    def not_op(self, meta: Any, ch: list[Any]) -> A.Unary:
        return A.Unary(self._s(meta), "not", ch[0])

    def _bin(op: str | None) -> Callable[[_ToAst, Any, list[Any]], A.Binary]:  # type: ignore[misc]
        def build(self: _ToAst, meta: Any, ch: list[Any]) -> A.Binary:
            if op is None:
                left, tok, right = ch
                return A.Binary(self._s(meta), str(tok), left, right)
            left, right = ch
            return A.Binary(self._s(meta), op, left, right)

        return build

    compare = _bin(None)
    arith = _bin(None)
    or_op = _bin("or")
    and_op = _bin("and")
    coalesce_op = _bin("??")
    in_op = _bin("in")
    not_in_op = _bin("not in")
    matches_op = _bin("matches")

    def cond(self, meta: Any, ch: list[Any]) -> A.Cond:
        return A.Cond(self._s(meta), ch[0], ch[1], ch[2])

    def tuple_lit(self, meta: Any, ch: list[Any]) -> A.TupleLit:
        return A.TupleLit(self._s(meta), list(ch))

    def list_lit(self, meta: Any, ch: list[Any]) -> A.ListLit:
        return A.ListLit(self._s(meta), [c for c in ch if c is not None])

    def map_entry(self, meta: Any, ch: list[Any]) -> tuple[A.Expr, A.Expr]:
        return (ch[0], ch[1])

    def map_lit(self, meta: Any, ch: list[Any]) -> A.MapLit:
        return A.MapLit(self._s(meta), [c for c in ch if c is not None])


# ----------------------------------------------------------------------- comments


def _attach_comments(module: A.Module, comments: list[A.Comment]) -> None:
    """Give each comment to the declaration or clause it precedes, or trails on
    the same line; what is left before a closing brace stays in that block."""
    comments = [c for c in comments if c.text.startswith("#")]
    if not comments:
        return
    # Targets in source order: (start line, end line, node, container-end line)
    targets: list[tuple[int, int, Any]] = []
    blocks: list[tuple[int, int, Any]] = []
    for d in module.decls:
        targets.append((d.span.line, _header_end(d), d))
        if isinstance(d, (A.Block, A.PolicyHeader)):
            blocks.append((d.span.line, d.span.end_line, d))
        inner = d.clauses if isinstance(d, A.Block) else d.meta if isinstance(d, A.PolicyHeader) else []
        for c in inner:
            targets.append((c.span.line, c.span.end_line, c))
    targets.sort(key=lambda t: (t[0], 0 if isinstance(t[2], A.Decl) else 1))
    for com in comments:
        same_line = [t for t in targets if t[1] == com.line and t[0] <= com.line]
        if same_line and same_line[-1][2].trailing is None:
            same_line[-1][2].trailing = com
            continue
        following = next((t for t in targets if t[0] > com.line), None)
        enclosing = next((b for b in blocks if b[0] < com.line < b[1]), None)
        if enclosing is not None and (following is None or following[0] > enclosing[1]):
            enclosing[2].end_comments.append(com)
        elif following is not None:
            following[2].comments.append(com)
        else:
            module.end_comments.append(com)


def _header_end(d: A.Decl) -> int:
    # A block's own trailing comment sits on its opening line.
    return d.span.line if isinstance(d, (A.Block, A.PolicyHeader)) else d.span.end_line
