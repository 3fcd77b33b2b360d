"""The typed AST. Every node carries a `Span` that knows its source, so any
stage can report an error with an excerpt without passing text around."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from collections.abc import Iterator


@dataclass(frozen=True, slots=True)
class Source:
    name: str  # the file name as the user gave it (or "<stdin>")
    text: str

    def line(self, n: int) -> str:
        # Split on "\n" only, as the lexer counts lines (splitlines would also
        # split on form feeds and Unicode line separators).
        lines = self.text.split("\n")
        return lines[n - 1] if 0 < n <= len(lines) else ""


@dataclass(frozen=True, slots=True)
class Span:
    source: Source
    line: int
    column: int
    end_line: int
    end_column: int
    start: int = 0
    end: int = 0

    @property
    def text(self) -> str:
        return self.source.text[self.start : self.end]

    def __repr__(self) -> str:
        return f"{self.source.name}:{self.line}:{self.column}"


@dataclass(slots=True)
class Comment:
    text: str  # including the leading '#'
    line: int


# ------------------------------------------------------------------ expressions


@dataclass(slots=True, eq=False)
class Expr:
    span: Span

    def children(self) -> Iterator[Expr]:
        return iter(())

    def walk(self) -> Iterator[Expr]:
        yield self
        for c in self.children():
            yield from c.walk()


@dataclass(slots=True, eq=False)
class Literal(Expr):
    value: Any
    kind: str  # int | float | string | bool | null | duration


@dataclass(slots=True, eq=False)
class Invalid(Expr):
    """A token the parser accepted but that cannot mean anything (e.g. `5y`)."""

    message: str
    hint: str | None = None
    code: str = "E0102"


@dataclass(slots=True, eq=False)
class Name(Expr):
    id: str


@dataclass(slots=True, eq=False)
class Attr(Expr):
    obj: Expr
    name: str

    def children(self) -> Iterator[Expr]:
        yield self.obj


@dataclass(slots=True, eq=False)
class Index(Expr):
    obj: Expr
    index: Expr

    def children(self) -> Iterator[Expr]:
        yield self.obj
        yield self.index


@dataclass(slots=True, eq=False)
class Call(Expr):
    func: str
    args: list[Expr]
    name_span: Span

    def children(self) -> Iterator[Expr]:
        yield from self.args


@dataclass(slots=True, eq=False)
class Unary(Expr):
    op: str  # "-" | "not"
    operand: Expr

    def children(self) -> Iterator[Expr]:
        yield self.operand


@dataclass(slots=True, eq=False)
class Binary(Expr):
    op: str  # + - * / % == != < <= > >= and or ?? in "not in" matches
    left: Expr
    right: Expr

    def children(self) -> Iterator[Expr]:
        yield self.left
        yield self.right


@dataclass(slots=True, eq=False)
class Cond(Expr):
    test: Expr
    then: Expr
    else_: Expr

    def children(self) -> Iterator[Expr]:
        yield self.test
        yield self.then
        yield self.else_


@dataclass(slots=True, eq=False)
class ListLit(Expr):
    items: list[Expr]

    def children(self) -> Iterator[Expr]:
        yield from self.items


@dataclass(slots=True, eq=False)
class TupleLit(Expr):
    items: list[Expr]

    def children(self) -> Iterator[Expr]:
        yield from self.items


@dataclass(slots=True, eq=False)
class MapLit(Expr):
    entries: list[tuple[Expr, Expr]]

    def children(self) -> Iterator[Expr]:
        for k, v in self.entries:
            yield k
            yield v


# ---------------------------------------------------------------- declarations


@dataclass(slots=True, eq=False)
class Clause:
    """One line of a rule, limit or measure body.

    kind: effect (text = deny|throttle|flag, exprs = [condition] in rules, [] in
    limits), unless, when, reason (text), status (text), retry_after (text),
    header (text = header name, exprs = [value]), shadow, key (exprs), count,
    sum, distinct, usage, window, max (exprs = [expr]), record, on_error, block (text),
    rules (exprs = [Name, ...]: the rules an exemption also skips).
    A calendar window (`window calendar month in "Europe/Paris"`) is a window
    clause with text = the unit and exprs = [the time zone literal] or [].
    """

    kind: str
    span: Span
    exprs: list[Expr] = field(default_factory=list)
    text: str | None = None
    text_span: Span | None = None
    comments: list[Comment] = field(default_factory=list)
    trailing: Comment | None = None


@dataclass(slots=True, eq=False)
class Decl:
    span: Span
    name: str
    name_span: Span
    comments: list[Comment] = field(default_factory=list)  # leading comment lines
    trailing: Comment | None = None


@dataclass(slots=True, eq=False)
class MetaItem:
    key: str
    value: str
    span: Span
    comments: list[Comment] = field(default_factory=list)
    trailing: Comment | None = None


@dataclass(slots=True, eq=False)
class PolicyHeader(Decl):
    meta: list[MetaItem] = field(default_factory=list)
    end_comments: list[Comment] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class Let(Decl):
    expr: Expr | None = None


@dataclass(slots=True, eq=False)
class Data(Decl):
    loader: str = ""
    loader_span: Span | None = None
    path: str = ""
    path_span: Span | None = None


@dataclass(slots=True, eq=False)
class Block(Decl):
    clauses: list[Clause] = field(default_factory=list)
    end_comments: list[Comment] = field(default_factory=list)  # comments before the closing brace

    def find(self, kind: str) -> Clause | None:
        for c in self.clauses:
            if c.kind == kind:
                return c
        return None

    def find_all(self, kind: str) -> list[Clause]:
        return [c for c in self.clauses if c.kind == kind]


@dataclass(slots=True, eq=False)
class Rule(Block):
    pass


@dataclass(slots=True, eq=False)
class Limit(Block):
    pass


@dataclass(slots=True, eq=False)
class Measure(Block):
    """A named, always-recorded measure (count, sum or distinct per key over a
    window) that rules, limits and other measures read as `measures.NAME`."""


@dataclass(slots=True, eq=False)
class Exempt(Block):
    """A policy-wide exemption: a request its `when` matches (and its `unless` does
    not) skips every limit and the rules its `rules` clause names (exprs = [Name, ...])."""


@dataclass(slots=True, eq=False)
class Attribute(Block):
    """A declared request field: `attribute account.risk_score: float { header "x-risk-score" }`.

    `name` is its path (`account.risk_score`), `name_span` covers it; `type_text` is the
    type as written (`map<string, string>`). Each clause is a source: kind = the source
    word (`header`, `jwt`, ...), exprs = its string arguments as literals."""

    type_text: str = ""
    type_span: Span | None = None

    @property
    def section(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def field(self) -> str:
        return self.name.split(".", 1)[1]


@dataclass(slots=True, eq=False)
class Module:
    """One parsed file."""

    source: Source
    decls: list[Decl]
    end_comments: list[Comment] = field(default_factory=list)
    suppressions: dict[int, set[str]] = field(default_factory=dict)  # line -> codes ignored
