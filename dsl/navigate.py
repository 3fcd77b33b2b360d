"""Finding things in a parsed policy by position and by name: the queries an
editor asks (what is under the cursor, where is this defined, who uses it).
Iterative walks: an expression may be nested as deep as the parser allows."""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Iterable, Iterator

from dsl import ast as A


@dataclass(frozen=True, slots=True)
class At:
    """What is at an offset: the declaration, the clause (in a rule or limit),
    and the expressions that contain it, outermost first."""

    decl: A.Decl
    clause: A.Clause | None
    exprs: tuple[A.Expr, ...]

    @property
    def innermost(self) -> A.Expr | None:
        return self.exprs[-1] if self.exprs else None


def _inside(span: A.Span | None, offset: int) -> bool:
    # The end is inclusive: a cursor just after a word is on that word.
    return span is not None and span.start <= offset <= span.end


def decl_exprs(d: A.Decl) -> Iterator[tuple[A.Clause | None, A.Expr]]:
    """The top-level expressions of a declaration, with their clause."""
    if isinstance(d, A.Let) and d.expr is not None:
        yield None, d.expr
    elif isinstance(d, A.Block):
        for c in d.clauses:
            for e in c.exprs:
                yield c, e


def at(module: A.Module, offset: int) -> At | None:
    """The declaration, clause and expressions at `offset` (a character offset in
    the module's source text), or None between declarations."""
    decl = next((d for d in module.decls if _inside(d.span, offset)), None)
    if decl is None:
        return None
    for clause, root in decl_exprs(decl):
        if _inside(root.span, offset):
            return At(decl, clause, tuple(_descend(root, offset)))
    clause = next((c for c in decl.clauses if _inside(c.span, offset)), None) if isinstance(decl, A.Block) else None
    return At(decl, clause, ())


def _descend(root: A.Expr, offset: int) -> Iterator[A.Expr]:
    node: A.Expr | None = root
    while node is not None:
        yield node
        node = next((c for c in node.children() if _inside(c.span, offset)), None)


def walk(modules: Iterable[A.Module]) -> Iterator[A.Expr]:
    """Every expression of every declaration, without recursion."""
    for m in modules:
        for d in m.decls:
            stack = [e for _, e in decl_exprs(d)]
            while stack:
                e = stack.pop()
                yield e
                stack.extend(e.children())


def name_uses(modules: Iterable[A.Module], name: str) -> list[A.Span]:
    """Where the value `name` (a let or a data list) is read, in source order."""
    spans = [e.span for e in walk(modules) if isinstance(e, A.Name) and e.id == name]
    return sorted(spans, key=lambda s: (s.source.name, s.start))


def field_uses(modules: Iterable[A.Module], section: str, name: str) -> list[A.Span]:
    """Where `section.name` is read (e.g. `measures.card_accounts`), in source order."""
    spans = [
        e.span
        for e in walk(modules)
        if isinstance(e, A.Attr) and e.name == name and isinstance(e.obj, A.Name) and e.obj.id == section
    ]
    return sorted(spans, key=lambda s: (s.source.name, s.start))
