"""Canonical source: two-space indents, one clause per line, one blank line
between blocks, minimal parentheses, comments kept where they were. A clause or
`let` longer than the line width is wrapped at its loosest operators, each
continuation line starting with its operator (`and ...`, `+ ...`, `then ...`).

Like `opa fmt`, the formatter re-parses its own output and refuses to return
text whose AST differs from the input's, so formatting can never change what a
policy means. Formatting is idempotent (tested with generated policies).
"""

from __future__ import annotations

from typing import Any

from dsl import ast as A
from dsl.diagnostics import Diagnostic, PolicyError
from dsl.parser import parse

INDENT = "  "
LINE_WIDTH = 100  # columns, comments aside; longer clauses and lets are wrapped
CONTINUATION = INDENT * 2  # a wrapped clause's next lines, relative to the clause

# Binding strength, loosest first; mirrors the grammar.
_PREC = {"cond": 1, "or": 2, "and": 3, "not": 4, "cmp": 5, "??": 6, "add": 7, "mul": 8, "neg": 9, "postfix": 10}
_CMP = {"==", "!=", "<", "<=", ">", ">=", "in", "not in", "matches"}


def format_source(text: str, filename: str = "<input>", width: int = LINE_WIDTH) -> str:
    module, diags = parse(text, filename)
    errors = [d for d in diags if d.is_error]
    if errors:
        raise PolicyError(errors)
    out = format_module(module, width)
    again, diags2 = parse(out, filename)
    if [d for d in diags2 if d.is_error] or dump(again) != dump(module):
        raise PolicyError(
            [
                Diagnostic(
                    "E0101", "internal error: formatting would change this policy; file left as is", None, file=filename
                )
            ]
        )
    return out


def format_module(m: A.Module, width: int = LINE_WIDTH) -> str:
    out: list[str] = []
    prev: A.Decl | None = None
    for d in m.decls:
        if prev is not None:
            tight = (
                _one_line(d)
                and _one_line(prev)
                and type(d) is type(prev)
                and d.span.line - prev.span.end_line == 1
                and not d.comments
            )
            if not tight:
                out.append("")
        out.extend(_leading(d.comments, "", d.span.line))
        out.extend(_decl(d, width))
        prev = d
    if m.end_comments:
        if out:
            out.append("")
        out.extend(_comments(m.end_comments, ""))
    return "\n".join(out) + "\n" if out else ""


def _one_line(d: A.Decl) -> bool:
    """A declaration written on one line: lets, data lists, attributes without sources.
    Consecutive ones of a kind stay together, as written."""
    return isinstance(d, (A.Let, A.Data)) or (isinstance(d, A.Attribute) and not d.clauses and not d.end_comments)


def _leading(cs: list[A.Comment], indent: str, node_line: int) -> list[str]:
    """Leading comments, keeping (at most one) blank line where the source had one."""
    out: list[str] = []
    for i, c in enumerate(cs):
        out.append(indent + c.text.rstrip())
        nxt = cs[i + 1].line if i + 1 < len(cs) else node_line
        if nxt - c.line > 1:
            out.append("")
    return out


def _comments(cs: list[A.Comment], indent: str) -> list[str]:
    return [indent + c.text.rstrip() for c in cs]


def _trail(line: str, c: A.Comment | None) -> str:
    return f"{line}  {c.text.rstrip()}" if c is not None else line


def _trail_last(lines: list[str], c: A.Comment | None) -> list[str]:
    return [*lines[:-1], _trail(lines[-1], c)]


def _decl(d: A.Decl, width: int = LINE_WIDTH) -> list[str]:
    if isinstance(d, A.PolicyHeader):
        lines = [_trail(f"policy {quote(d.name)} {{", d.trailing)]
        for item in d.meta:
            lines.extend(_comments(item.comments, INDENT))
            lines.append(_trail(f"{INDENT}{item.key} {quote(item.value)}", item.trailing))
        lines += _comments(d.end_comments, INDENT)
        return lines + ["}"]
    if isinstance(d, A.Let):
        assert d.expr is not None
        return _trail_last(wrap(d.expr, f"let {d.name} = ", INDENT, width), d.trailing)
    if isinstance(d, A.Data):
        return [_trail(f"data {d.name} = {d.loader}({quote(d.path)})", d.trailing)]
    assert isinstance(d, A.Block)
    if isinstance(d, A.Attribute):
        head = f"attribute {d.name}: {d.type_text}"
        if not d.clauses and not d.end_comments:
            return [_trail(head, d.trailing)]
        lines = [_trail(head + " {", d.trailing)]
    else:
        lines = [_trail(f"{_BLOCK_WORDS[type(d)]} {d.name} {{", d.trailing)]
    for c in d.clauses:
        lines.extend(_leading(c.comments, INDENT, c.span.line))
        if isinstance(d, A.Attribute):
            lines.append(_trail(INDENT + source(c), c.trailing))
        else:
            lines.extend(_trail_last(clause_lines(c, width), c.trailing))
    lines.extend(_comments(d.end_comments, INDENT))
    return lines + ["}"]


_BLOCK_WORDS: dict[type, str] = {A.Rule: "rule", A.Limit: "limit", A.Measure: "measure", A.Exempt: "exempt"}


def source(c: A.Clause) -> str:
    """An attribute's source: its word and string arguments (`envoy_metadata "ns" "key"`)."""
    return " ".join([c.kind, *(expr(e) for e in c.exprs)])


def clause_lines(c: A.Clause, width: int = LINE_WIDTH) -> list[str]:
    """A clause at block indent, wrapped when longer than `width`."""
    line = INDENT + clause(c)
    if len(line) <= width or len(c.exprs) != 1 or c.kind in ("key", "rules", "window"):
        return [line]
    e = c.exprs[0]
    head = line[: len(line) - len(expr(e))]
    return wrap(e, head, INDENT + CONTINUATION, width)


def clause(c: A.Clause) -> str:
    k = c.kind
    if k == "effect":
        return f"{c.text} when {expr(c.exprs[0])}" if c.exprs else str(c.text)
    if k in ("count", "shadow"):
        return k
    if k in ("key", "rules"):
        return f"{k} " + ", ".join(expr(e) for e in c.exprs)
    if k == "reason":
        return f"reason {quote(c.text or '')}"
    if k == "header":
        return f"header {quote(c.text or '')} = {expr(c.exprs[0])}"
    if k in ("status", "retry_after", "record", "on_error", "block"):
        return f"{k} {c.text}"
    if k == "window" and c.text is not None:
        zone = "".join(f" in {expr(z)}" for z in c.exprs)
        return f"window calendar {c.text}{zone}"
    return f"{k} {expr(c.exprs[0])}"


def quote(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 32 or 0xD800 <= ord(ch) <= 0xDFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _prec(e: A.Expr) -> int:
    if isinstance(e, A.Cond):
        return _PREC["cond"]
    if isinstance(e, A.Binary):
        if e.op in ("or", "and", "??"):
            return _PREC[e.op]
        if e.op in _CMP:
            return _PREC["cmp"]
        return _PREC["add"] if e.op in ("+", "-") else _PREC["mul"]
    if isinstance(e, A.Unary):
        return _PREC["not"] if e.op == "not" else _PREC["neg"]
    if isinstance(e, A.Literal) and isinstance(e.value, (int, float)) and not isinstance(e.value, bool) and e.value < 0:
        return _PREC["neg"]
    return _PREC["postfix"] + 1


def needs_brackets_in(e: A.Expr, op: str) -> bool:
    """Whether `e` needs brackets as an operand of the binary operator `op` (`and`, `or`, ...)."""
    return _prec(e) < _PREC[op] or isinstance(e, A.Binary) and e.op == "??" and op != "??"


def _wrap(e: A.Expr, min_prec: int) -> str:
    s = expr(e)
    return f"({s})" if _prec(e) < min_prec else s


def _operand(e: A.Expr, min_prec: int, parent_op: str) -> str:
    # `a ?? 0 >= 5` is (a ?? 0) >= 5, but few readers know that: bracket `??` inside other operators.
    if isinstance(e, A.Binary) and e.op == "??" and parent_op != "??":
        return f"({expr(e)})"
    return _wrap(e, min_prec)


# ------------------------------------------------------------------- wrapping

# Operators whose chains are broken one operand per line, by precedence group.
_CHAIN_GROUPS = ({"or"}, {"and"}, {"??"}, {"+", "-"}, {"*", "/", "%"})
_CHAIN_OF = {op: g for g in _CHAIN_GROUPS for op in g}


def wrap(e: A.Expr, first: str, cont: str, width: int = LINE_WIDTH) -> list[str]:
    """`first` followed by `e`: one line when it fits in `width`, else broken at the
    loosest operators, continuation lines indented by `cont`. No line begins with a
    clause word (it would start a new clause), so every piece re-parses as written."""
    flat = first + expr(e)
    if len(flat) <= width:
        return [flat]
    if isinstance(e, A.Binary) and e.op in _CHAIN_OF:
        return _wrap_chain(e, first, cont, width)
    if isinstance(e, A.Cond):
        return _wrap_cond(e, first, cont, width)
    if isinstance(e, A.Binary):  # a comparison: wrap its left side, the rest follows it
        p = _prec(e)
        tail = f" {e.op} {_operand(e.right, p + 1, e.op)}"
        lines = _operand_lines(e.left, first, cont, width, _operand(e.left, p + 1, e.op))
        return [*lines[:-1], lines[-1] + tail]
    return [flat]


def _wrap_chain(e: A.Binary, first: str, cont: str, width: int) -> list[str]:
    """`a and b and c`: the first operand after `first`, each next one on a line of its own."""
    (_, head, head_text), *rest = _chain(e)
    lines = _operand_lines(head, first, cont + INDENT, width, head_text)
    for op, x, text in rest:
        lines += _operand_lines(x, f"{cont}{op} ", cont + INDENT, width, text)
    return lines


def _wrap_cond(e: A.Cond, first: str, cont: str, width: int) -> list[str]:
    """`if T then A`, `else if T then A` ..., `else B`: one arm a line (its test and value
    on lines of their own when it does not fit)."""
    lines: list[str] = []
    x: A.Expr = e
    while isinstance(x, A.Cond):
        lead = first + "if " if not lines else cont + "else if "
        arm = f"{lead}{expr(x.test)} then {expr(x.then)}"
        if len(arm) <= width:
            lines.append(arm)
        else:
            lines += wrap(x.test, lead, cont + INDENT, width) + wrap(x.then, cont + "then ", cont + INDENT, width)
        x = x.else_
    return lines + wrap(x, cont + "else ", cont + INDENT, width)


def _chain(e: A.Binary) -> list[tuple[str, A.Expr, str]]:
    """`a + b - c` as (operator, operand, text) from the left, the first operator "";
    the text brackets an operand where `expr` does."""
    group = _CHAIN_OF[e.op]
    out: list[tuple[str, A.Expr, str]] = []
    x: A.Expr = e
    while isinstance(x, A.Binary) and x.op in group:
        out.append((x.op, x.right, _operand(x.right, _prec(x) + 1, x.op)))
        left_text = _operand(x.left, _prec(x), x.op)
        if left_text != expr(x.left) or not (isinstance(x.left, A.Binary) and x.left.op in group):
            out.append(("", x.left, left_text))
            break
        x = x.left
    out.reverse()
    return out


def _operand_lines(x: A.Expr, first: str, cont: str, width: int, text: str | None = None) -> list[str]:
    """One operand after `first`, bracketed as `text` shows (default: not), wrapped inside its brackets."""
    text = expr(x) if text is None else text
    if len(first) + len(text) <= width:
        return [first + text]
    if text.startswith("(") and text != expr(x):
        lines = wrap(x, first + "(", cont, width - 1)
        return [*lines[:-1], lines[-1] + ")"]
    return wrap(x, first, cont, width)


def expr(e: A.Expr) -> str:
    if isinstance(e, A.Literal):
        return _literal(e)
    if isinstance(e, A.Name):
        return e.id
    if isinstance(e, A.Attr):
        return f"{_wrap(e.obj, _PREC['postfix'])}.{e.name}"
    if isinstance(e, A.Index):
        return f"{_wrap(e.obj, _PREC['postfix'])}[{expr(e.index)}]"
    if isinstance(e, A.Call):
        return f"{e.func}({', '.join(expr(a) for a in e.args)})"
    if isinstance(e, A.Unary):
        if e.op == "not":
            # `not a in b` parses as not (a in b) but reads ambiguously: keep the brackets.
            return f"not {_wrap(e.operand, _PREC['postfix'])}"
        return f"-{_wrap(e.operand, _PREC['neg'])}"
    if isinstance(e, A.Binary):
        p = _prec(e)
        if e.op in _CMP:  # non-associative
            return f"{_operand(e.left, p + 1, e.op)} {e.op} {_operand(e.right, p + 1, e.op)}"
        return f"{_operand(e.left, p, e.op)} {e.op} {_operand(e.right, p + 1, e.op)}"
    if isinstance(e, A.Cond):
        return f"if {expr(e.test)} then {expr(e.then)} else {_wrap(e.else_, _PREC['cond'])}"
    if isinstance(e, A.ListLit):
        return "[" + ", ".join(expr(i) for i in e.items) + "]"
    if isinstance(e, A.TupleLit):
        return "(" + ", ".join(expr(i) for i in e.items) + ")"
    if isinstance(e, A.MapLit):
        return "{" + ", ".join(f"{expr(k)}: {expr(v)}" for k, v in e.entries) + "}"
    if isinstance(e, A.Invalid):
        return e.span.text
    raise TypeError(type(e).__name__)


def _literal(e: A.Literal) -> str:
    if e.kind == "string":
        raw = e.span.text
        return raw if raw.startswith('r"') else quote(e.value)
    if e.kind in ("int", "float", "duration"):
        text = e.span.text.replace(" ", "")
        return text
    return {True: "true", False: "false", None: "null"}[e.value]


def dump(node: Any) -> Any:
    """A span-free structural view of an AST, for comparing two parses."""
    if isinstance(node, A.Module):
        return [dump(d) for d in node.decls]
    if isinstance(node, list):
        return [dump(x) for x in node]
    if isinstance(node, tuple):
        return tuple(dump(x) for x in node)
    if isinstance(node, (A.Expr, A.Decl, A.Clause)):
        skip = {
            "span",
            "name_span",
            "text_span",
            "loader_span",
            "path_span",
            "type_span",
            "comments",
            "trailing",
            "end_comments",
        }
        fields = {k: dump(getattr(node, k)) for k in node.__dataclass_fields__ if k not in skip}
        if isinstance(node, A.PolicyHeader):
            fields["meta"] = [(m.key, m.value) for m in node.meta]
        return (type(node).__name__, fields)
    return node
