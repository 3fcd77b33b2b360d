"""Canonical source: two-space indents, one clause per line, one blank line
between blocks, minimal parentheses, comments kept where they were.

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

# Binding strength, loosest first; mirrors the grammar.
_PREC = {"cond": 1, "or": 2, "and": 3, "not": 4, "cmp": 5, "??": 6, "add": 7, "mul": 8, "neg": 9, "postfix": 10}
_CMP = {"==", "!=", "<", "<=", ">", ">=", "in", "not in", "matches"}


def format_source(text: str, filename: str = "<input>") -> str:
    module, diags = parse(text, filename)
    errors = [d for d in diags if d.is_error]
    if errors:
        raise PolicyError(errors)
    out = format_module(module)
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


def format_module(m: A.Module) -> str:
    out: list[str] = []
    prev: A.Decl | None = None
    for d in m.decls:
        if prev is not None:
            tight = (
                isinstance(d, (A.Let, A.Data))
                and isinstance(prev, (A.Let, A.Data))
                and type(d) is type(prev)
                and d.span.line - prev.span.end_line == 1
                and not d.comments
            )
            if not tight:
                out.append("")
        out.extend(_leading(d.comments, "", d.span.line))
        out.extend(_decl(d))
        prev = d
    if m.end_comments:
        if out:
            out.append("")
        out.extend(_comments(m.end_comments, ""))
    return "\n".join(out) + "\n" if out else ""


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


def _decl(d: A.Decl) -> list[str]:
    if isinstance(d, A.PolicyHeader):
        lines = [_trail(f"policy {quote(d.name)} {{", d.trailing)]
        for item in d.meta:
            lines.extend(_comments(item.comments, INDENT))
            lines.append(_trail(f"{INDENT}{item.key} {quote(item.value)}", item.trailing))
        lines += _comments(d.end_comments, INDENT)
        return lines + ["}"]
    if isinstance(d, A.Let):
        assert d.expr is not None
        return [_trail(f"let {d.name} = {expr(d.expr)}", d.trailing)]
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
    write = source if isinstance(d, A.Attribute) else clause
    for c in d.clauses:
        lines.extend(_leading(c.comments, INDENT, c.span.line))
        lines.append(_trail(INDENT + write(c), c.trailing))
    lines.extend(_comments(d.end_comments, INDENT))
    return lines + ["}"]


_BLOCK_WORDS: dict[type, str] = {A.Rule: "rule", A.Limit: "limit", A.Measure: "measure", A.Exempt: "exempt"}


def source(c: A.Clause) -> str:
    """An attribute's source: its word and string arguments (`envoy_metadata "ns" "key"`)."""
    return " ".join([c.kind, *(expr(e) for e in c.exprs)])


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
