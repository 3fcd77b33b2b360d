"""Name resolution and type checking against the request schema.

`check_policy(modules, base_dir)` resolves every name (schema fields, `let`s,
data lists, functions), types every expression, validates literals that only
have meaning in context (regexes, CIDRs, verification levels, units), checks the
shape of each rule, limit and measure, orders the measures by what they read
(cycles are errors), and lowers each well-formed one to the
typed middle stage (dsl/checked.py) that the lint pass and the compiler read.
Every problem found (not only the first) is a diagnostic. `check` runs the
check and lint stages on parsed modules, as `dsl.load` does after parsing.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, TypeVar
from collections.abc import Iterable

from dsl import ast as A
from dsl import data as D
from dsl.checked import (
    BLOCK_MODES,
    DEFAULT_BLOCK,
    DEFAULT_LIMIT_EFFECT,
    DEFAULT_ON_ERROR,
    DEFAULT_RECORD,
    DEFAULT_RETRY_AFTER,
    DEFAULT_STATUS,
    FAIL_MODES,
    RECORD_MODES,
    CheckedLimit,
    CheckedMeasure,
    CheckedPolicy,
    CheckedRule,
    EFFECTS,
    MEASURE_KINDS,
    EffectName,
    Header,
)
from dsl.diagnostics import Diagnostic, Severity, did_you_mean, without_suppressed
from dsl.fold import const_value, fold_bool, is_number
from dsl.functions import FUNCTIONS, NUM, SIZED
from dsl.parser import DEPTH_HINT, MAX_EXPR_DEPTH, parse_duration
from dsl.semantic import analyze
from dsl.schema import MEASURES, SCHEMA, VERIFICATION_LEVELS
from dsl.types import (
    ANY,
    BOOL,
    CIDR_SET,
    DURATION,
    FLOAT,
    INT,
    IP,
    NULL,
    REGEX_SET,
    STRING,
    VERIFICATION,
    ListType,
    MapType,
    SetType,
    TupleType,
    Type,
    assignable,
    is_numeric,
    unify_numeric,
)

MAX_LITERAL_ITEMS = 1000  # longer lists and maps belong in data files
MIN_WINDOW, MAX_WINDOW = 1.0, 30 * 86400.0
RULE_CLAUSES_ONCE = ("effect", "unless", "reason", "status", "retry_after", "shadow")
LIMIT_CLAUSES_ONCE = (
    "key",
    "count",
    "sum",
    "distinct",
    "usage",
    "window",
    "max",
    "when",
    "unless",
    "effect",
    "reason",
    "status",
    "record",
    "on_error",
    "block",
    "shadow",
)
MEASURE_CLAUSES = ("key", "count", "sum", "distinct", "usage", "window", "when", "unless")


def check_policy(modules: list[A.Module], base_dir: Path | None = None) -> tuple[CheckedPolicy, list[Diagnostic]]:
    """The check stage: every diagnostic of names, types and shapes, and the lowered policy."""
    return _Checker(modules, base_dir).run()


def check(modules: list[A.Module], base_dir: Path | None = None) -> tuple[CheckedPolicy, list[Diagnostic]]:
    """The check and lint stages on modules parsed already (`dsl.load` runs them after
    parsing), less the warnings a comment turns off."""
    checked, diags = check_policy(modules, base_dir)
    if not any(d.is_error for d in diags):
        diags += analyze(checked)
    return checked, without_suppressed(diags, modules)


class _Checker:
    def __init__(self, modules: list[A.Module], base_dir: Path | None) -> None:
        self.modules = modules
        self.base_dir = base_dir
        self.diags: list[Diagnostic] = []
        self.lets: dict[str, A.Let] = {}
        self.data_decls: dict[str, A.Data] = {}
        self.data: dict[str, D.DataValue] = {}
        self.let_types: dict[str, Type] = {}
        self.let_const: dict[str, bool] = {}
        self.resolving: list[str] = []
        self.used: set[str] = set()
        self.header: A.PolicyHeader | None = None
        self.rules: list[A.Rule] = []
        self.limits: list[A.Limit] = []
        self.measures: dict[str, A.Measure] = {}
        self.out = CheckedPolicy(modules, None, self.lets, self.data, rule_decls=self.rules, limit_decls=self.limits)
        self._let_reads_memo: dict[str, dict[str, A.Span]] = {}
        self.usage_only = False  # set while checking a `usage` clause

    # ------------------------------------------------------------------ helpers
    def error(self, code: str, msg: str, span: A.Span | None, hint: str | None = None) -> None:
        self.diags.append(Diagnostic(code, msg, span, Severity.ERROR, hint))

    def warn(self, code: str, msg: str, span: A.Span, hint: str | None = None) -> None:
        self.diags.append(Diagnostic(code, msg, span, Severity.WARNING, hint))

    # -------------------------------------------------------------------- run
    def run(self) -> tuple[CheckedPolicy, list[Diagnostic]]:
        self._collect()
        if self._too_deep():  # checking would recurse that deep: stop here
            return self.out, self.diags
        for d in self.data_decls.values():
            self._load_data(d)
        for name in self.lets:
            self._let_type(name)
        for r in self.rules:
            self._check_rule(r)
        for lim in self.limits:
            self._check_limit(lim)
        for m in self.measures.values():
            self._check_measure(m)
        self._measure_graph()
        for name, let in self.lets.items():
            if name not in self.used:
                self.warn("W0301", f"`let {name}` is never used", let.name_span, "remove it, or use it in a rule")
        for name, d in self.data_decls.items():
            if name not in self.used:
                self.warn("W0302", f"data list `{name}` is never used", d.name_span, "remove it, or use it in a rule")
        self.out.header = self.header
        self._lower_all()
        return self.out, self.diags

    def _collect(self) -> None:
        values: dict[str, A.Decl] = {}
        blocks: dict[str, A.Decl] = {}
        for m in self.modules:
            for d in m.decls:
                if isinstance(d, A.PolicyHeader):
                    if self.header is None:
                        self.header = d
                    continue
                table = blocks if isinstance(d, A.Block) else values
                prev = table.get(d.name)
                if prev is not None:
                    kind = "rule, limit or measure" if isinstance(d, A.Block) else "name"
                    self.error(
                        "E0209",
                        f"duplicate {kind} `{d.name}`",
                        d.name_span,
                        f"first defined at {prev.name_span.source.name}:{prev.name_span.line}:{prev.name_span.column}",
                    )
                    continue
                if isinstance(d, (A.Let, A.Data)) and d.name in SCHEMA:
                    self.error("E0209", f"`{d.name}` is a section of the request and cannot be redefined", d.name_span)
                    continue
                if isinstance(d, (A.Let, A.Data)) and d.name == MEASURES:
                    self.error(
                        "E0209",
                        f"`{MEASURES}` is reserved: `{MEASURES}.NAME` reads a measure",
                        d.name_span,
                        "choose another name",
                    )
                    continue
                table[d.name] = d
                if isinstance(d, A.Let):
                    self.lets[d.name] = d
                elif isinstance(d, A.Data):
                    self.data_decls[d.name] = d
                elif isinstance(d, A.Rule):
                    self.rules.append(d)
                elif isinstance(d, A.Limit):
                    self.limits.append(d)
                elif isinstance(d, A.Measure):
                    self.measures[d.name] = d
                    self.out.measure_decls.append(d)

    def _load_data(self, d: A.Data) -> None:
        if d.loader not in D._LOADERS:
            self.error(
                "E0214",
                f"unknown data loader `{d.loader}`",
                d.loader_span,
                did_you_mean(d.loader, D._LOADERS) or "loaders: " + ", ".join(D._LOADERS),
            )
            return
        base = self.base_dir if self.base_dir is not None else Path(d.span.source.name).parent
        try:
            self.data[d.name] = D.load(d.loader, base, d.path)
        except D.DataError as e:
            where = f"{d.path}, line {e.line}: " if e.line else ""
            self.error("E0214", f"{where}{e}", d.path_span)
        except (OSError, UnicodeDecodeError) as e:
            self.error("E0214", f"cannot read data file `{d.path}`: {e}", d.path_span)

    # ------------------------------------------------------------ depth limit
    def _too_deep(self) -> bool:
        """E0105 for expressions deeper than MAX_EXPR_DEPTH once the lets they use are
        expanded (the compiler inlines lets); reported where the limit is first crossed.
        Iterative, so that a chain of thousands of lets cannot exhaust the stack."""
        let_depth: dict[str, int] = {}
        on_stack: set[str] = set()
        for name in self.lets:
            stack = [name]
            while stack:
                n = stack[-1]
                if n in let_depth:
                    stack.pop()
                    on_stack.discard(n)
                    continue
                on_stack.add(n)
                expr = self.lets[n].expr
                r = (0, False) if expr is None else self._depth(expr, let_depth)
                if isinstance(r, str):
                    if r in on_stack:
                        let_depth[r] = 0  # a cycle; E0215 reports it
                    else:
                        stack.append(r)
                    continue
                let_depth[n] = r[0] + 1  # the compiler wraps a let in brackets
                if r[0] > MAX_EXPR_DEPTH and not r[1]:
                    self._deep_error(self.lets[n].expr)
        for block in (*self.rules, *self.limits, *self.measures.values()):
            for c in block.clauses:
                for e in c.exprs:
                    r = self._depth(e, let_depth)
                    if not isinstance(r, str) and r[0] > MAX_EXPR_DEPTH and not r[1]:
                        self._deep_error(e)
        return any(d.code == "E0105" for d in self.diags)

    def _depth(self, root: A.Expr, let_depth: dict[str, int]) -> tuple[int, bool] | str:
        """(depth with lets expanded, whether a used let is itself too deep), or the
        name of a let whose depth is not known yet."""
        best, via_deep_let = 0, False
        stack = [(root, 1)]
        while stack:
            node, d = stack.pop()
            if isinstance(node, A.Name) and node.id in self.lets:
                known = let_depth.get(node.id)
                if known is None:
                    return node.id
                via_deep_let = via_deep_let or known - 1 > MAX_EXPR_DEPTH
                d += known
            best = max(best, d)
            stack.extend((c, d + 1) for c in node.children())
        return best, via_deep_let

    def _deep_error(self, e: A.Expr | None) -> None:
        if e is not None:
            self.error(
                "E0105",
                f"expression nested deeper than {MAX_EXPR_DEPTH} levels once the `let`s it uses are expanded",
                e.span,
                DEPTH_HINT,
            )

    def _let_type(self, name: str) -> Type:
        if name in self.let_types:
            return self.let_types[name]
        let = self.lets[name]
        if name in self.resolving:
            cycle = " -> ".join(self.resolving[self.resolving.index(name) :] + [name])
            self.error("E0215", f"`let {name}` refers to itself: {cycle}", let.name_span)
            self.let_types[name] = ANY
            return ANY
        self.resolving.append(name)
        t = self.expr(let.expr) if let.expr is not None else ANY
        self.resolving.pop()
        self.let_types[name] = t
        self.let_const[name] = self.out.constant.get(id(let.expr), False) if let.expr is not None else True
        return t

    # ------------------------------------------------------------------- rules
    def _clauses_once(self, block: A.Block, kinds: Iterable[str]) -> None:
        seen: dict[str, A.Clause] = {}
        for c in block.clauses:
            if c.kind in kinds and c.kind in seen:
                self.error("E0211", f"`{c.kind}` given twice in `{block.name}`", c.span, "keep one of them")
            seen.setdefault(c.kind, c)

    def _check_rule(self, r: A.Rule) -> None:
        self._clauses_once(r, RULE_CLAUSES_ONCE)
        eff = r.find("effect")
        if eff is None:
            self.error(
                "E0210", f"rule `{r.name}` has no effect", r.name_span, "add a line such as `deny when <condition>`"
            )
        else:
            self.bool_expr(eff.exprs[0], "the condition")
        for u in r.find_all("unless"):
            self.bool_expr(u.exprs[0], "`unless`")
        self._check_reason(r)
        self._check_common(r, eff.text if eff else "deny")
        retry = r.find("retry_after")
        if retry is not None and eff is not None and eff.text != "throttle":
            self.error("E0212", "`retry_after` only applies to throttle rules", retry.span)

    def _check_reason(self, b: A.Block) -> None:
        reason = b.find("reason")
        if reason is None:
            kind = "rule" if isinstance(b, A.Rule) else "limit"
            self.error(
                "E0210",
                f"{kind} `{b.name}` has no reason",
                b.name_span,
                'add `reason "..."`: callers and decision logs show it',
            )
        elif not (reason.text or "").strip():
            self.error("E0213", "reason is empty", reason.text_span or reason.span)

    def _check_common(self, b: A.Block, effect: str | None) -> None:
        st = b.find("status")
        if st is not None:
            code = int(st.text or "0") if (st.text or "").isdigit() else -1
            if not 100 <= code <= 599:
                self.error("E0216", f"HTTP status {st.text} is out of range", st.text_span, "use 100 to 599")
            elif effect in ("deny", "throttle") and code < 400:
                self.error("E0216", f"a {effect} needs an error status (4xx or 5xx), not {code}", st.text_span)
        for h in b.find_all("header"):
            name = h.text or ""
            if not name or any(ch.isspace() or ch == ":" for ch in name):
                self.error("E0213", f"invalid header name `{name}`", h.text_span)
            t = self.expr(h.exprs[0])
            if not (assignable(t, STRING) or is_numeric(t)):
                self.error("E0205", f"a header value must be a string or a number, not {t}", h.exprs[0].span)

    # ------------------------------------------------------------------ limits
    def _check_limit(self, lim: A.Limit) -> None:
        self._clauses_once(lim, LIMIT_CLAUSES_ONCE)
        kind = self._check_measuring(lim, "limit")
        mx = lim.find("max")
        if mx is None:
            self.error("E0210", f"limit `{lim.name}` has no max", lim.name_span, "add e.g. `max 60`")
        else:
            t = self.expr(mx.exprs[0])
            if not is_numeric(t):
                self.error("E0205", f"`max` must be a number, not {t}", mx.exprs[0].span)
        eff = lim.find("effect")
        self._check_reason(lim)
        self._check_common(lim, eff.text if eff else "throttle")
        for c, allowed, what in (
            (lim.find("record"), RECORD_MODES, "record"),
            (lim.find("on_error"), FAIL_MODES, "on_error"),
            (lim.find("block"), BLOCK_MODES, "block"),
        ):
            if c is not None and c.text not in allowed:
                self.error(
                    "E0213",
                    f"`{what} {c.text}`: expected {' or '.join(allowed)}",
                    c.text_span,
                    did_you_mean(c.text or "", allowed),
                )

        block = lim.find("block")
        if block is not None and block.text == "key":
            if kind != "distinct":
                self.error(
                    "E0212",
                    "`block key` applies to `distinct` limits",
                    block.span,
                    "a count or sum limit already blocks its whole key while over",
                )
            rec = lim.find("record")
            if rec is None or rec.text != "attempts":
                self.error(
                    "E0212",
                    "`block key` needs `record attempts`",
                    block.span,
                    "refused values must be counted for the key to stay over its max",
                )

    def _check_measuring(self, b: A.Limit | A.Measure, what: str) -> str | None:
        """The clauses a limit and a measure share: what is measured, per which key,
        over which window, reconciled how. Returns the kind (count, sum, distinct)."""
        kinds = [c for c in b.clauses if c.kind in MEASURE_KINDS]
        if not kinds:
            self.error(
                "E0210",
                f"{what} `{b.name}` says nothing to measure",
                b.name_span,
                "add `count`, `sum <cost>` or `distinct <expression>`",
            )
        elif len(kinds) > 1:
            self.error("E0211", f"a {what} measures one thing: `count`, `sum` or `distinct`", kinds[1].span)
        kind = kinds[0].kind if kinds else None
        key = b.find("key")
        if key is None:
            self.error("E0210", f"{what} `{b.name}` has no key", b.name_span, "add e.g. `key account.id`")
        else:
            for k in key.exprs:
                t = self.expr(k)
                if isinstance(t, (ListType, SetType, MapType)) or t in (CIDR_SET, REGEX_SET):
                    self.error("E0205", f"a key must be a single value, not {t}", k.span)
            if all(self.out.constant.get(id(k), False) for k in key.exprs):
                self.warn(
                    "W0305",
                    "the key is constant: every request shares one counter",
                    key.span,
                    "key on account.id, an IP prefix, a template id, ...",
                )
        if kind == "sum":
            cost = kinds[0].exprs[0]
            if not is_numeric(self.expr(cost)):
                self.error("E0205", f"`sum` adds up a number, not {self.out.type_of(cost)}", cost.span)
        elif kind == "distinct":
            member = kinds[0].exprs[0]
            t = self.expr(member)
            if isinstance(t, (ListType, SetType, MapType)):
                self.error("E0205", f"`distinct` counts single values, not {t}", member.span)
        usage = b.find("usage")
        if usage is not None:
            if kind != "sum":
                self.error("E0212", f"`usage` reconciles a `sum`; this {what} has none", usage.span)
            self.usage_only = True
            t = self.expr(usage.exprs[0])
            self.usage_only = False
            if not is_numeric(t):
                self.error("E0205", f"`usage` must be a number, not {t}", usage.exprs[0].span)
        window = b.find("window")
        if window is None:
            self.error("E0210", f"{what} `{b.name}` has no window", b.name_span, "add e.g. `window 1m` or `window 1d`")
        else:
            self._check_window(window.exprs[0])
        for c in b.find_all("when") + b.find_all("unless"):
            self.bool_expr(c.exprs[0], f"`{c.kind}`")
        return kind

    # ---------------------------------------------------------------- measures
    def _check_measure(self, m: A.Measure) -> None:
        self._clauses_once(m, MEASURE_CLAUSES)
        for c in m.clauses:
            if c.kind not in MEASURE_CLAUSES:
                word = c.text if c.kind == "effect" else c.kind
                self.error("E0212", f"`{word}` does not apply to a measure", c.span, _measure_hint(c.kind, m.name))
        self._check_measuring(m, "measure")

    def _measure_read(self, e: A.Attr) -> tuple[Type, bool]:
        """`measures.NAME`: a number (null when the measure's key is null or the store failed)."""
        if self.usage_only:
            self.error(
                "E0212",
                f"`usage` cannot read `{MEASURES}.{e.name}`",
                e.span,
                "when the usage report arrives, the request is gone: `usage` reads only `usage.*` fields",
            )
            return ANY, False
        if e.name not in self.measures:
            names = list(self.measures)
            hint = did_you_mean(e.name, names) or (
                "measures: " + ", ".join(names) if names else "declare it with `measure NAME { ... }`"
            )
            self.error("E0201", f"unknown measure `{e.name}`", e.span, hint)
            return ANY, False
        return FLOAT, False

    def _reads(self, e: A.Expr) -> dict[str, A.Span]:
        """The measures an expression reads, lets expanded, each with where it is first read."""
        out: dict[str, A.Span] = {}
        stack = [e]
        while stack:
            n = stack.pop()
            if isinstance(n, A.Attr) and isinstance(n.obj, A.Name) and n.obj.id == MEASURES:
                if n.name in self.measures:
                    _earliest(out, n.name, n.span)
                continue
            if isinstance(n, A.Name) and n.id in self.lets:
                for name, span in self._let_reads(n.id).items():
                    _earliest(out, name, span)
            stack.extend(n.children())
        return out

    def _let_reads(self, name: str) -> dict[str, A.Span]:
        memo = self._let_reads_memo
        if name not in memo:
            memo[name] = {}  # a let cycle (E0215) reads nothing more
            expr = self.lets[name].expr
            memo[name] = self._reads(expr) if expr is not None else {}
        return memo[name]

    def _measure_graph(self) -> None:
        """Which measures each block reads; a measure key that reads one (E0212);
        cycles between measures (E0215); each measure's dependency level."""
        reads = self.out.measure_reads
        for b in (*self.rules, *self.limits, *self.measures.values()):
            got: dict[str, A.Span] = {}
            for c in b.clauses:
                for e in c.exprs:
                    r = self._reads(e)
                    if c.kind == "key" and isinstance(b, A.Measure):
                        for name, span in r.items():
                            via = (
                                ""
                                if e.span.start <= span.start < e.span.end and span.source is e.span.source
                                else f" (through a `let`: read at {_where(span)})"
                            )
                            self.error(
                                "E0212",
                                f"the key of measure `{b.name}` reads `{MEASURES}.{name}`{via}",
                                e.span,
                                "a measure's value depends on its key: key on request fields, e.g. `key account.id`",
                            )
                        continue
                    for name, span in r.items():
                        _earliest(got, name, span)
            reads[b.name] = got
        self._levels()

    def _levels(self) -> None:
        """Depth-first over the measures, in source order: levels, and each cycle reported once."""
        reads = self.out.measure_reads
        deps = {name: [d for d, _ in sorted(reads[name].items(), key=lambda kv: _pos(kv[1]))] for name in self.measures}
        level = self.out.measure_levels
        reported: set[str] = set()
        for root in self.measures:
            if root in level:
                continue
            path, iters, on_path = [root], [iter(deps[root])], {root: 0}
            while path:
                node = path[-1]
                nxt = next(iters[-1], None)
                if nxt is None:
                    level[node] = 1 + max((level.get(d, 0) for d in deps[node]), default=-1)
                    path.pop()
                    iters.pop()
                    del on_path[node]
                elif nxt in on_path:
                    cycle = path[on_path[nxt] :]
                    if not reported & set(cycle):
                        reported |= set(cycle)
                        self._cycle_error(cycle)
                elif nxt not in level:
                    on_path[nxt] = len(path)
                    path.append(nxt)
                    iters.append(iter(deps[nxt]))

    def _cycle_error(self, cycle: list[str]) -> None:
        reads = self.out.measure_reads
        steps = [(a, cycle[(i + 1) % len(cycle)]) for i, a in enumerate(cycle)]
        where = "; ".join(f"`{a}` reads `{MEASURES}.{b}` at {_where(reads[a][b])}" for a, b in steps)
        first = self.measures[cycle[0]]
        if len(cycle) == 1:
            msg = f"measure `{first.name}` reads itself"
        else:
            msg = "measures read each other in a cycle: " + " -> ".join(f"`{n}`" for n in cycle + [cycle[0]])
        self.error(
            "E0215",
            msg,
            reads[cycle[0]][cycle[1 % len(cycle)]],
            f"{where}; a measure can read only measures that do not read it back",
        )

    def _check_window(self, e: A.Expr) -> None:
        t = self.expr(e)
        if t == ANY:
            return
        if t != DURATION:
            hint = f"write a duration such as `{e.span.text}m` or `1h`" if t in (INT, FLOAT) else None
            self.error("E0205", f"`window` takes a duration, not {t}", e.span, hint)
            return
        ok, v = const_value(e, self.lets)
        if not ok or not isinstance(v, (int, float)):
            self.error("E0213", "`window` must be a constant duration", e.span)
        elif not MIN_WINDOW <= v <= MAX_WINDOW:
            self.error("E0216", f"window of {e.span.text} is out of range", e.span, "windows run from 1s to 30d")

    # ------------------------------------------------------------------ lowering
    def _lower_all(self) -> None:
        """The typed middle stage, in source order: every block that has the parts it
        cannot do without (an effect; what to measure, a key, a constant window; a max)."""
        out = self.out
        out.rules = [r for r in map(self._lower_rule, self.rules) if r is not None]
        out.limits = [lim for lim in map(self._lower_limit, self.limits) if lim is not None]
        out.measures = [m for m in map(self._lower_measure, self.measures.values()) if m is not None]

    def _lower_rule(self, r: A.Rule) -> CheckedRule | None:
        eff = r.find("effect")
        effect = _word(eff, EFFECTS, None)
        if eff is None or effect is None or not eff.exprs:
            return None
        retry = r.find("retry_after")
        retry_after = None
        if effect == "throttle":
            retry_after = parse_duration(retry.text) if retry is not None and retry.text else DEFAULT_RETRY_AFTER
        return CheckedRule(
            name=r.name,
            span=r.name_span,
            decl=r,
            effect=effect,
            condition=eff.exprs[0],
            unless=_exprs(r, "unless"),
            reason=_reason(r),
            status=_status(r, effect),
            retry_after=retry_after,
            shadow=r.find("shadow") is not None,
            headers=_headers(r),
        )

    def _lower_limit(self, lim: A.Limit) -> CheckedLimit | None:
        measuring = self._lower_measuring(lim)
        mx = lim.find("max")
        if measuring is None or mx is None or not mx.exprs:
            return None
        effect = _word(lim.find("effect"), EFFECTS, DEFAULT_LIMIT_EFFECT)
        return CheckedLimit(
            **measuring,
            decl=lim,
            maximum=mx.exprs[0],
            effect=effect,
            reason=_reason(lim),
            status=_status(lim, effect),
            record=_word(lim.find("record"), RECORD_MODES, DEFAULT_RECORD),
            on_error=_word(lim.find("on_error"), FAIL_MODES, DEFAULT_ON_ERROR),
            block=_word(lim.find("block"), BLOCK_MODES, DEFAULT_BLOCK),
            shadow=lim.find("shadow") is not None,
            headers=_headers(lim),
        )

    def _lower_measure(self, m: A.Measure) -> CheckedMeasure | None:
        measuring = self._lower_measuring(m)
        if measuring is None:
            return None
        return CheckedMeasure(**measuring, decl=m, level=self.out.measure_levels.get(m.name, 0))

    def _lower_measuring(self, b: A.Limit | A.Measure) -> dict[str, Any] | None:
        """The fields of `Measuring`, or None when the block lacks one it cannot do without."""
        what = next((c for c in b.clauses if c.kind in MEASURE_KINDS), None)
        kind = _word(what, MEASURE_KINDS, None, by_kind=True)
        key, window = b.find("key"), b.find("window")
        if what is None or kind is None or key is None or window is None or not window.exprs:
            return None
        ok, seconds = const_value(window.exprs[0], self.lets)
        if not ok or not is_number(seconds):
            return None
        usage = b.find("usage")
        return {
            "name": b.name,
            "span": b.name_span,
            "kind": kind,
            "key": tuple(key.exprs),
            "amount": what.exprs[0] if kind == "sum" and what.exprs else None,
            "member": what.exprs[0] if kind == "distinct" and what.exprs else None,
            "usage": usage.exprs[0] if usage is not None and usage.exprs else None,
            "window": float(seconds),  # type: ignore[arg-type]
            "when": _exprs(b, "when"),
            "unless": _exprs(b, "unless"),
        }

    # ------------------------------------------------------------- expressions
    def bool_expr(self, e: A.Expr, what: str) -> None:
        t = self.expr(e)
        if t not in (BOOL, ANY, NULL):
            self.error("E0205", f"{what} must be true or false, not {t}", e.span, _bool_hint(e, t))
        elif self.out.constant.get(id(e)) and not isinstance(e, A.Literal):
            v = fold_bool(e, self.lets)
            if v is True:
                self.warn("W0303", "this condition is always true", e.span)
            elif v is False:
                self.warn("W0304", "this condition is always false: the clause never applies", e.span)

    def expr(self, e: A.Expr) -> Type:
        t, const = self._expr(e)
        self.out.types[id(e)] = t
        self.out.constant[id(e)] = const
        return t

    def _sub(self, e: A.Expr) -> tuple[Type, bool]:
        t = self.expr(e)
        return t, self.out.constant[id(e)]

    def _expr(self, e: A.Expr) -> tuple[Type, bool]:
        match e:
            case A.Literal(kind=kind):
                return {"int": INT, "float": FLOAT, "string": STRING, "bool": BOOL, "null": NULL, "duration": DURATION}[
                    kind
                ], True
            case A.Invalid():
                self.error(e.code, e.message, e.span, e.hint)
                return ANY, True
            case A.Name(id=name):
                return self._name(e, name)
            case A.Attr():
                return self._attr(e)
            case A.Index():
                return self._index(e)
            case A.Call():
                return self._call(e)
            case A.Unary(op="not"):
                t, c = self._sub(e.operand)
                if t not in (BOOL, ANY, NULL):
                    self.error("E0205", f"`not` takes true or false, not {t}", e.operand.span)
                return BOOL, c
            case A.Unary(op="-"):
                t, c = self._sub(e.operand)
                if not (is_numeric(t) or t == DURATION):
                    self.error("E0205", f"cannot negate {t}", e.operand.span)
                return t, c
            case A.Binary():
                return self._binary(e)
            case A.Cond():
                tt, c1 = self._sub(e.test)
                if tt not in (BOOL, ANY, NULL):
                    self.error("E0205", f"`if` needs true or false, not {tt}", e.test.span)
                a, c2 = self._sub(e.then)
                b, c3 = self._sub(e.else_)
                return self._join(a, b, e.else_.span, "the two branches of `if`"), c1 and c2 and c3
            case A.ListLit() | A.TupleLit():
                return self._seq(e)
            case A.MapLit():
                return self._map(e)
        return ANY, False

    def _join(self, a: Type, b: Type, span: A.Span, what: str) -> Type:
        if a == NULL:
            return b
        if b == NULL or a == b:
            return a
        if is_numeric(a) and is_numeric(b):
            return unify_numeric(a, b)
        if assignable(b, a):
            return a
        if assignable(a, b):
            return b
        self.error("E0205", f"{what} have different types: {a} and {b}", span)
        return ANY

    def _name(self, e: A.Name, name: str) -> tuple[Type, bool]:
        if self.usage_only and name != "usage" and name not in self.lets:
            self.error(
                "E0212",
                f"`usage` can read only `usage.*` fields and constants, not `{name}`",
                e.span,
                "when the usage report arrives, the rest of the request is gone",
            )
            return ANY, False
        if name in self.lets:
            self.used.add(name)
            t = self._let_type(name)
            const = self.let_const.get(name, False)
            if self.usage_only and not const:
                self.error("E0212", f"`usage` can use only constant lets; `{name}` reads the request", e.span)
            return t, const
        if name in self.data:
            self.used.add(name)
            return self.data[name].type, True
        if name in self.data_decls:
            self.used.add(name)
            return ANY, True  # failed to load: already reported
        if name == MEASURES:
            example = next(iter(self.measures), "NAME")
            self.error(
                "E0201", f"`{MEASURES}` is not a value", e.span, f"read one measure, e.g. `{MEASURES}.{example}`"
            )
            return ANY, False
        if name in SCHEMA:
            self.error(
                "E0201",
                f"`{name}` is a section of the request, not a value",
                e.span,
                f"name a field, e.g. `{name}.{next(iter(SCHEMA[name]))}`",
            )
            return ANY, False
        candidates = list(self.lets) + list(self.data_decls) + list(SCHEMA)
        hint = did_you_mean(name, candidates)
        if hint is None and name in FUNCTIONS:
            hint = f"`{name}` is a function: call it as `{name}(...)`"
        self.error("E0201", f"unknown name `{name}`", e.span, hint)
        return ANY, False

    def _attr(self, e: A.Attr) -> tuple[Type, bool]:
        if isinstance(e.obj, A.Name) and e.obj.id == MEASURES:
            return self._measure_read(e)
        if isinstance(e.obj, A.Name) and e.obj.id in SCHEMA and e.obj.id not in self.lets:
            section = e.obj.id
            if self.usage_only and section != "usage":
                self.error(
                    "E0212",
                    f"`usage` can read only `usage.*` fields, not `{section}.{e.name}`",
                    e.span,
                    "when the usage report arrives, the rest of the request is gone",
                )
                return ANY, False
            t = SCHEMA[section].get(e.name)
            if t is None:
                hint = did_you_mean(e.name, SCHEMA[section])
                if hint is None:
                    full = [f"{s}.{f}" for s, fs in SCHEMA.items() for f in fs]
                    hint = did_you_mean(f"{section}.{e.name}", full) or (
                        f"fields of {section}: " + ", ".join(SCHEMA[section])
                    )
                else:
                    hint = f"did you mean `{section}.{hint.split('`')[1]}`?"
                self.error("E0202", f"`{section}` has no field `{e.name}`", e.span, hint)
                return ANY, False
            self.out.fields_read.add(f"{section}.{e.name}")
            return t, False
        t, _ = self._sub(e.obj)
        if t != ANY:
            self.error("E0202", f"a value of type {t} has no field `{e.name}`", e.span)
        return ANY, False

    def _index(self, e: A.Index) -> tuple[Type, bool]:
        t, c1 = self._sub(e.obj)
        k, c2 = self._sub(e.index)
        if isinstance(t, MapType):
            if not assignable(k, t.key):
                self.error("E0205", f"this map's keys are {t.key}, not {k}", e.index.span)
            return t.value, c1 and c2
        if isinstance(t, ListType):
            if k not in (INT, ANY):
                self.error("E0205", f"a list index is an int, not {k}", e.index.span)
            return t.elem, c1 and c2
        if t != ANY:
            self.error("E0205", f"cannot index a value of type {t}", e.obj.span, "only maps and lists take `[...]`")
        return ANY, False

    def _call(self, e: A.Call) -> tuple[Type, bool]:
        f = FUNCTIONS.get(e.func)
        if f is None:
            for a in e.args:
                self.expr(a)
            hint = did_you_mean(e.func, FUNCTIONS) or (
                "loaders go in `data NAME = ...`" if e.func in D._LOADERS else None
            )
            self.error("E0203", f"unknown function `{e.func}`", e.name_span, hint)
            return ANY, False
        if len(e.args) != len(f.params):
            self.error(
                "E0204",
                f"`{f.name}` takes {len(f.params)} argument{'s' * (len(f.params) != 1)}, got {len(e.args)}",
                e.span,
                f"{f.name}: {f.doc}",
            )
        types: list[Type] = []
        const = True
        for a, p in zip(e.args, f.params):
            t, c = self._sub(a)
            const = const and c
            types.append(t)
            if p == NUM:
                ok = is_numeric(t) or t == NULL
            elif p == SIZED:
                ok = t in (STRING, ANY, NULL) or isinstance(t, (ListType, SetType, MapType))
            else:
                ok = assignable(t, p)  # type: ignore[arg-type]
            if not ok:
                self.error("E0205", f"argument of `{f.name}` must be {p}, not {t}", a.span)
        for a in e.args[len(f.params) :]:
            self.expr(a)
        if f.returns == NUM:
            nums = [t for t in types if is_numeric(t)]
            ret: Type = INT if nums and all(t == INT for t in nums) else FLOAT
            return ret, const
        return f.returns, const  # type: ignore[return-value]

    def _binary(self, e: A.Binary) -> tuple[Type, bool]:
        op = e.op
        if op in ("and", "or"):
            a, c1 = self._sub(e.left)
            b, c2 = self._sub(e.right)
            for t, side in ((a, e.left), (b, e.right)):
                if t not in (BOOL, ANY, NULL):
                    self.error("E0205", f"`{op}` joins true/false values, not {t}", side.span, _bool_hint(side, t))
            return BOOL, c1 and c2
        if op in ("in", "not in"):
            return self._membership(e)
        if op == "matches":
            return self._matches(e)
        a, c1 = self._sub(e.left)
        b, c2 = self._sub(e.right)
        const = c1 and c2
        if op == "??":
            return self._join(a, b, e.right.span, "the two sides of `??`"), const
        if op in ("==", "!=", "<", "<=", ">", ">="):
            self._comparison(e, a, b)
            return BOOL, const
        return self._arith(e, a, b), const

    def _comparison(self, e: A.Binary, a: Type, b: Type) -> None:
        if VERIFICATION in (a, b):
            other = e.right if a == VERIFICATION else e.left
            ot = b if a == VERIFICATION else a
            if ot == VERIFICATION or ot in (ANY, NULL):
                return
            if isinstance(other, A.Literal) and other.kind == "string":
                if other.value not in VERIFICATION_LEVELS:
                    self.error(
                        "E0208",
                        f"`{other.value}` is not a verification level",
                        other.span,
                        did_you_mean(other.value, VERIFICATION_LEVELS) or "levels: none < email < phone < kyc",
                    )
                self.out.rank_literals.add(id(other))
                return
            self.error("E0205", f'verification compares with a level such as "phone", not {ot}', other.span)
            return
        ordered = e.op not in ("==", "!=")
        if ANY in (a, b) or NULL in (a, b) and not ordered:
            return
        if is_numeric(a) and is_numeric(b):
            return
        if a == b and (not ordered or a in (STRING, DURATION)):
            return
        if {a, b} <= {STRING, IP} and not ordered:
            return
        hint = None
        if {a, b} == {DURATION, FLOAT} or {a, b} == {DURATION, INT}:
            hint = "account.age_days is a number of days: compare it with a plain number (e.g. 7), not a duration"
        self.error("E0205", f"cannot compare {a} with {b} using `{e.op}`", e.span, hint)

    def _arith(self, e: A.Binary, a: Type, b: Type) -> Type:
        op = e.op
        if ANY in (a, b):
            return ANY
        if is_numeric(a) and is_numeric(b):
            return FLOAT if op == "/" else unify_numeric(a, b)
        if op == "+" and a == STRING and b == STRING:
            return STRING
        if a == DURATION and b == DURATION and op in "+-":
            return DURATION
        if op in "*/" and a == DURATION and is_numeric(b) or op == "*" and is_numeric(a) and b == DURATION:
            return DURATION
        if NULL in (a, b):
            return b if a == NULL else a
        self.error("E0205", f"cannot apply `{op}` to {a} and {b}", e.span)
        return ANY

    def _membership(self, e: A.Binary) -> tuple[Type, bool]:
        a, c1 = self._sub(e.left)
        right = e.right
        # A list literal of strings tested against an IP is a set of CIDRs.
        if (
            a == IP
            and isinstance(right, A.ListLit)
            and all(isinstance(i, A.Literal) and i.kind == "string" for i in right.items)
        ):
            for item in right.items:
                assert isinstance(item, A.Literal)  # all string literals, tested above
                try:
                    ipaddress.ip_network(item.value, strict=False)
                except ValueError:
                    self.error(
                        "E0207",
                        f"`{item.value}` is not a valid CIDR or address",
                        item.span,
                        "write networks as 203.0.113.0/24 or 2001:db8::/32",
                    )
            self.out.types[id(right)] = CIDR_SET
            self.out.constant[id(right)] = True
            self.out.cidr_literals.add(id(right))
            return BOOL, c1
        b, c2 = self._sub(right)
        const = c1 and c2
        if b == ANY or a == ANY:
            return BOOL, const
        if b == CIDR_SET:
            if not assignable(a, IP) and a != STRING:
                self.error("E0205", f"only an IP address can be `in` a CIDR set, not {a}", e.left.span)
            return BOOL, const
        if b in (STRING, IP):
            self.error(
                "E0205",
                "`in` looks in a list, set or map, not in a string",
                right.span,
                "to look for text inside a string, use contains(text, part)",
            )
            return BOOL, const
        if isinstance(b, (ListType, SetType)):
            elem = b.elem
        elif isinstance(b, MapType):
            elem = b.key
        elif isinstance(b, TupleType):
            elem = ANY
        else:
            self.error("E0205", f"`{e.op}` needs a list, set, map or CIDR set on the right, not {b}", right.span)
            return BOOL, const
        if a == VERIFICATION and isinstance(right, A.ListLit):
            for item in right.items:
                if isinstance(item, A.Literal) and item.kind == "string":
                    if item.value not in VERIFICATION_LEVELS:
                        self.error(
                            "E0208",
                            f"`{item.value}` is not a verification level",
                            item.span,
                            did_you_mean(item.value, VERIFICATION_LEVELS),
                        )
                    self.out.rank_literals.add(id(item))
            return BOOL, const
        if not (assignable(a, elem) or assignable(elem, a) or (is_numeric(a) and is_numeric(elem))):
            self.error("E0205", f"a {a} is never in a collection of {elem}", e.left.span)
        return BOOL, const

    def _matches(self, e: A.Binary) -> tuple[Type, bool]:
        a, c1 = self._sub(e.left)
        if a not in (STRING, ANY, NULL, IP):
            self.error("E0205", f"`matches` tests text, not {a}", e.left.span)
        right = e.right
        if isinstance(right, A.Literal) and right.kind == "string":
            self.out.types[id(right)] = STRING
            self.out.constant[id(right)] = True
            err = D.check_pattern(right.value)
            if err:
                self.error(
                    "E0206",
                    f"invalid regular expression: {err}",
                    right.span,
                    'RE2 syntax; write patterns as raw strings, r"\\d+"',
                )
            return BOOL, c1
        b, _ = self._sub(right)
        if b == REGEX_SET:
            return BOOL, c1
        if b != ANY:
            self.error("E0205", "`matches` takes a constant pattern string or a `patterns` data list", right.span)
        return BOOL, c1

    def _literal_size(self, n: int, what: str, span: A.Span) -> None:
        if n > MAX_LITERAL_ITEMS:
            self.error(
                "E0105",
                f"{what} of {n} items; a literal holds at most {MAX_LITERAL_ITEMS}",
                span,
                'put long lists in a data file, e.g. `data names = strings("data/names.txt")`',
            )

    def _seq(self, e: A.ListLit | A.TupleLit) -> tuple[Type, bool]:
        self._literal_size(len(e.items), "list", e.span)
        types = []
        const = True
        for item in e.items:
            t, c = self._sub(item)
            types.append(t)
            const = const and c
        if isinstance(e, A.TupleLit):
            return TupleType(tuple(types)), const
        elem: Type = NULL
        for item, t in zip(e.items, types):
            elem = self._join(elem, t, item.span, "list elements")
        return ListType(ANY if elem == NULL else elem), const

    def _map(self, e: A.MapLit) -> tuple[Type, bool]:
        self._literal_size(len(e.entries), "map", e.span)
        kt: Type = NULL
        vt: Type = NULL
        const = True
        for k, v in e.entries:
            a, c1 = self._sub(k)
            b, c2 = self._sub(v)
            const = const and c1 and c2
            kt = self._join(kt, a, k.span, "map keys")
            vt = self._join(vt, b, v.span, "map values")
        return MapType(ANY if kt == NULL else kt, ANY if vt == NULL else vt), const


Word = TypeVar("Word", bound=str)
Default = TypeVar("Default")


def _word(c: A.Clause | None, allowed: tuple[Word, ...], default: Default, *, by_kind: bool = False) -> Word | Default:
    """The clause's word (its text, or its kind with `by_kind`) as one of `allowed`, else `default`."""
    if c is not None:
        word = c.kind if by_kind else c.text
        for a in allowed:
            if word == a:
                return a
    return default


def _exprs(b: A.Block, kind: str) -> tuple[A.Expr, ...]:
    return tuple(c.exprs[0] for c in b.find_all(kind) if c.exprs)


def _reason(b: A.Block) -> str:
    r = b.find("reason")
    return r.text if r is not None and r.text else b.name


def _status(b: A.Block, effect: EffectName) -> int:
    st = b.find("status")
    return int(st.text) if st is not None and st.text and st.text.isdigit() else DEFAULT_STATUS[effect]


def _headers(b: A.Block) -> tuple[Header, ...]:
    return tuple(Header(h.text or "", h.exprs[0]) for h in b.find_all("header") if h.exprs)


def _bool_hint(e: A.Expr, t: Type) -> str | None:
    if t in (INT, FLOAT):
        return "compare it with something, e.g. `> 0`"
    if t == STRING:
        return 'compare it with something, e.g. `== "pro"`'
    return None


_MEASURE_HINTS = {
    "effect": "a measure has no effect: read it from a rule or limit, e.g. `deny when measures.{name} > 10`",
    "max": "a measure has no maximum: compare it where it is read, e.g. `deny when measures.{name} > 10`",
    "record": "a measure records every request it applies to (as `record attempts`), admitted or not",
    "on_error": "when the store fails the measure reads as null: choose a value where it is read, "
    "e.g. `measures.{name} ?? 0`",
    "block": "a measure refuses nothing: use a `distinct` limit with `block key`",
    "shadow": "a measure never acts, so there is nothing to shadow",
}


def _measure_hint(kind: str, name: str) -> str:
    default = "a measure has no effect: read it from a rule or limit, e.g. `deny when measures.{name} > 10`"
    return _MEASURE_HINTS.get(kind, default).format(name=name)


def _pos(span: A.Span) -> tuple[str, int]:
    return span.source.name, span.start


def _earliest(out: dict[str, A.Span], name: str, span: A.Span) -> None:
    prev = out.get(name)
    if prev is None or _pos(span) < _pos(prev):
        out[name] = span


def _where(span: A.Span) -> str:
    return f"{span.source.name}:{span.line}:{span.column}"
