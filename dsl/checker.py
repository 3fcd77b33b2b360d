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

from pathlib import Path
from collections.abc import Iterable

from dsl import ast as A
from dsl import formatter as F
from dsl import data as D
from dsl.checked import (
    BLOCK_MODES,
    CALENDAR_UNITS,
    FAIL_MODES,
    RECORD_MODES,
    CheckedPolicy,
    MEASURE_KINDS,
)
from dsl.attributes import check_attributes
from dsl.diagnostics import Diagnostic, did_you_mean, without_suppressed
from dsl.fold import const_value
from dsl.parser import DEPTH_HINT, MAX_EXPR_DEPTH
from dsl.keywords import CLAUSES
from dsl.lower import lower
from dsl.semantic import analyze
from dsl.policy_options import read_options
from dsl.schema import MEASURES, SCHEMA, with_attributes
from dsl.typecheck import Scope, Types
from dsl.zones import zone, zone_hint
from dsl.types import (
    ANY,
    CIDR_SET,
    DURATION,
    FLOAT,
    INT,
    REGEX_SET,
    STRING,
    ListType,
    MapType,
    SetType,
    assignable,
    is_numeric,
)

MIN_WINDOW, MAX_WINDOW = 1.0, 30 * 86400.0
RULE_CLAUSES_ONCE = ("effect", "unless", "reason", "status", "retry_after", "shadow")
LIMIT_CLAUSES_ONCE = ("effect", *(c for c in CLAUSES if c not in ("header", "retry_after")))
EXEMPT_CLAUSES = ("when", "unless", "rules")
MEASURE_CLAUSES = ("key", "count", "sum", "distinct", "usage", "window", "when", "unless")


def check_policy(modules: list[A.Module], base_dir: Path | None = None) -> tuple[CheckedPolicy, list[Diagnostic]]:
    """The check stage: every diagnostic of names, types and shapes (the policy header's
    options included), and the lowered policy."""
    checked, diags = _Checker(modules, base_dir).run()
    return checked, diags + read_options(checked.header)[1]


def check(modules: list[A.Module], base_dir: Path | None = None) -> tuple[CheckedPolicy, list[Diagnostic]]:
    """The check and lint stages on modules parsed already (`dsl.load` runs them after
    parsing), less the warnings a comment turns off."""
    checked, diags = check_policy(modules, base_dir)
    if not any(d.is_error for d in diags):
        diags += analyze(checked)
    return checked, without_suppressed(diags, modules)


class _Checker:
    """The declarations: collected into one namespace, data loaded, each block's
    shape checked, measures ordered; every expression is typed by `Types`."""

    def __init__(self, modules: list[A.Module], base_dir: Path | None) -> None:
        self.modules = modules
        self.base_dir = base_dir
        self.lets: dict[str, A.Let] = {}
        self.data: dict[str, D.DataValue] = {}
        self.header: A.PolicyHeader | None = None
        self.rules: list[A.Rule] = []
        self.limits: list[A.Limit] = []
        self.out = CheckedPolicy(modules, None, self.lets, self.data, rule_decls=self.rules, limit_decls=self.limits)
        scope = Scope(self.out, lets=self.lets)
        self.types = Types(scope)
        self.data_decls, self.measures, self.used, self.diags = (
            scope.data_decls,
            scope.measures,
            scope.used,
            scope.diags,
        )
        self.error, self.warn = scope.error, scope.warn
        self._let_reads_memo: dict[str, dict[str, A.Span]] = {}

    # -------------------------------------------------------------------- run
    def run(self) -> tuple[CheckedPolicy, list[Diagnostic]]:
        self._collect()
        self.out.attributes = check_attributes(self.out.attribute_decls, self.error)
        self.out.schema = with_attributes(self.out.attributes)
        if self._too_deep():  # checking would recurse that deep: stop here
            return self.out, self.diags
        for d in self.data_decls.values():
            self._load_data(d)
        for name in self.lets:
            self.types.let_type(name)
        for r in self.rules:
            self._check_rule(r)
        for lim in self.limits:
            self._check_limit(lim)
        for m in self.measures.values():
            self._check_measure(m)
        for x in self.out.exempt_decls:
            self._check_exempt(x)
        self._measure_graph()
        for name, let in self.lets.items():
            if name not in self.used:
                self.warn("W0301", f"`let {name}` is never used", let.name_span, "remove it, or use it in a rule")
        for name, d in self.data_decls.items():
            if name not in self.used:
                self.warn("W0302", f"data list `{name}` is never used", d.name_span, "remove it, or use it in a rule")
        self.out.header = self.header
        lower(self.out)
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
                if isinstance(d, A.Attribute):  # a path (`account.x`): it shares no namespace
                    self.out.attribute_decls.append(d)
                    continue
                table = blocks if isinstance(d, A.Block) else values
                prev = table.get(d.name)
                if prev is not None:
                    kind = "rule, limit or measure" if isinstance(d, A.Block) else "name"
                    where = f"{prev.name_span.source.name}:{prev.name_span.line}:{prev.name_span.column}"
                    if isinstance(d, A.Exempt) or isinstance(prev, A.Exempt):
                        kind = "name"  # exemptions share the rules' namespace: say which is which
                        where += (
                            f" (a {type(prev).__name__.lower()}; rules, limits, measures and exemptions share names)"
                        )
                    self.error("E0209", f"duplicate {kind} `{d.name}`", d.name_span, f"first defined at {where}")
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
                elif isinstance(d, A.Exempt):
                    self.out.exempt_decls.append(d)

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
        if d.loader == "prices":
            first = next(x for x in self.data_decls.values() if x.loader == "prices")
            if first is not d:
                self.error(
                    "E0213",
                    "a policy has one price table",
                    d.name_span,
                    f"`{first.name}` ({_where(first.name_span)}) is it: put every model in one file",
                )
                return
        try:
            self.data[d.name] = D.load(d.loader, base, d.path)
            if d.loader == "prices":
                self.out.price_table = d.name
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
        for block in (*self.rules, *self.limits, *self.measures.values(), *self.out.exempt_decls):
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

    # ------------------------------------------------------------------- rules
    def _clauses_once(self, block: A.Block, kinds: Iterable[str]) -> None:
        seen: dict[str, A.Clause] = {}
        for c in block.clauses:
            if c.kind in kinds and c.kind in seen:
                hint = "keep one of them"
                if c.kind in ("unless", "when") and c.exprs and seen[c.kind].exprs:
                    hint = _joined_hint(c.kind, seen[c.kind].exprs[0], c.exprs[0])
                self.error("E0211", f"`{c.kind}` given twice in `{block.name}`", c.span, hint)
            seen.setdefault(c.kind, c)

    def _check_rule(self, r: A.Rule) -> None:
        self._clauses_once(r, RULE_CLAUSES_ONCE)
        eff = r.find("effect")
        if eff is None:
            self.error(
                "E0210", f"rule `{r.name}` has no effect", r.name_span, "add a line such as `deny when <condition>`"
            )
        else:
            self.types.bool_expr(eff.exprs[0], "the condition")
        for u in r.find_all("unless"):
            self.types.bool_expr(u.exprs[0], "`unless`")
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
            t = self.types.expr(h.exprs[0])
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
            t = self.types.expr(mx.exprs[0])
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
                t = self.types.expr(k)
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
            if not is_numeric(self.types.expr(cost)):
                self.error("E0205", f"`sum` adds up a number, not {self.out.type_of(cost)}", cost.span)
        elif kind == "distinct":
            member = kinds[0].exprs[0]
            t = self.types.expr(member)
            if isinstance(t, (ListType, SetType, MapType)):
                self.error("E0205", f"`distinct` counts single values, not {t}", member.span)
        usage = b.find("usage")
        if usage is not None:
            if kind != "sum":
                self.error("E0212", f"`usage` reconciles a `sum`; this {what} has none", usage.span)
            self.types.usage_only = True
            t = self.types.expr(usage.exprs[0])
            self.types.usage_only = False
            if not is_numeric(t):
                self.error("E0205", f"`usage` must be a number, not {t}", usage.exprs[0].span)
        window = b.find("window")
        if window is None:
            self.error("E0210", f"{what} `{b.name}` has no window", b.name_span, "add e.g. `window 1m` or `window 1d`")
        elif window.text is not None:
            self._check_calendar(window)
        else:
            self._check_window(window.exprs[0])
        for c in b.find_all("when") + b.find_all("unless"):
            self.types.bool_expr(c.exprs[0], f"`{c.kind}`")
        return kind

    # ---------------------------------------------------------------- measures
    def _check_measure(self, m: A.Measure) -> None:
        self._clauses_once(m, MEASURE_CLAUSES)
        for c in m.clauses:
            if c.kind not in MEASURE_CLAUSES:
                word = c.text if c.kind == "effect" else c.kind
                self.error("E0212", f"`{word}` does not apply to a measure", c.span, _measure_hint(c.kind, m.name))
        self._check_measuring(m, "measure")

    def _check_exempt(self, x: A.Exempt) -> None:
        """`exempt NAME { when C; unless U; rules r1, r2 }`."""
        self._clauses_once(x, EXEMPT_CLAUSES)
        if x.find("when") is None:
            self.error(
                "E0210",
                f"exemption `{x.name}` has no `when`",
                x.name_span,
                "add the requests it exempts, e.g. `when account.id in internal_accounts`",
            )
        for c in x.find_all("when") + x.find_all("unless"):
            self.types.bool_expr(c.exprs[0], f"`{c.kind}`")
        rules = {r.name for r in self.rules}
        others = {
            b.name: kind for kind, bs in (("limit", self.limits), ("measure", self.measures.values())) for b in bs
        }
        for c in x.find_all("rules"):
            for n in c.exprs:
                name = n.id if isinstance(n, A.Name) else ""
                if name in rules:
                    continue
                if others.get(name) == "limit":
                    hint = "an exemption skips every limit already: name only rules here"
                elif others.get(name) == "measure":
                    hint = "measures count exempt requests too (they are evidence): add `unless` to the measure"
                else:
                    hint = did_you_mean(name, sorted(rules)) or (
                        "rules: " + ", ".join(sorted(rules)) if rules else "the policy has no rules"
                    )
                self.error("E0201", f"`{name}` is not a rule", n.span, hint)

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
        for b in (*self.rules, *self.limits, *self.measures.values(), *self.out.exempt_decls):
            got: dict[str, A.Span] = {}
            for c in b.clauses:
                if c.kind == "rules":  # rule names, not expressions
                    continue
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

    def _check_calendar(self, c: A.Clause) -> None:
        """`window calendar UNIT [in "Zone/Name"]`."""
        if c.text not in CALENDAR_UNITS:
            hint = did_you_mean(c.text or "", CALENDAR_UNITS) or "calendar windows are day, week and month"
            if c.text in ("hour", "minute", "second"):
                hint = f"a sliding window counts the last {c.text}: `window 1{c.text[0]}`"
            self.error("E0213", f"`calendar {c.text}`: expected day, week or month", c.text_span, hint)
        for z in c.exprs:
            if isinstance(z, A.Literal) and isinstance(z.value, str) and zone(z.value) is None:
                self.error("E0213", f"unknown time zone `{z.value}`", z.span, zone_hint(z.value))

    def _check_window(self, e: A.Expr) -> None:
        t = self.types.expr(e)
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


_MEASURE_HINTS = {
    "effect": "a measure has no effect: read it from a rule or limit, e.g. `deny when measures.{name} > 10`",
    "max": "a measure has no maximum: compare it where it is read, e.g. `deny when measures.{name} > 10`",
    "record": "a measure records every request it applies to (as `record attempts`), admitted or not",
    "on_error": "when the store fails the measure reads as null: choose a value where it is read, "
    "e.g. `measures.{name} ?? 0`",
    "block": "a measure refuses nothing: use a `distinct` limit with `block key`",
    "shadow": "a measure never acts, so there is nothing to shadow",
}


def _joined_hint(kind: str, first: A.Expr, second: A.Expr) -> str:
    """Two `unless` clauses are one exemption each: either holds. Two `when`s both must."""
    op = "or" if kind == "unless" else "and"
    a, b = (f"({F.expr(e)})" if F.needs_brackets_in(e, op) else F.expr(e) for e in (first, second))
    return f"join them with `{op}`: `{kind} {a} {op} {b}`"


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
