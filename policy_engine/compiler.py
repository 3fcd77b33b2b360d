"""Checked AST -> Python source -> one compiled function per policy.

The generated `evaluate(c)` reads the flat `Context` by attribute, tests every
rule and prepares every limit in one pass: no tree is walked per request. A
policy with measures also gets one `measure_level_K(c)` per dependency level,
which prepares the hits of that level's measures; the engine runs them first
and puts the values in `c.measures`, which generated code reads by index.
Constants (data lists, regexes, CIDR sets, constant `let`s) are built once at
compile time and bound as globals of the generated code. `PolicySet.source`
shows the generated code, as Jinja's `raw=True` does, for debugging.

Null semantics (docs/language.md): a missing field is null; arithmetic with
null is null; an ordered comparison with null is false; `and`, `or`, `not` and
conditions treat null as false; `a ?? b` is b when a is null.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable

import re2

from dsl import ast as A
from dsl.checked import CheckedLimit, CheckedMeasure, CheckedPolicy, CheckedRule, Header, Measuring
from dsl.formatter import expr as expr_text
from dsl.functions import FUNCTIONS, PRICED
from dsl.schema import BY_PATH, FIELDS, MEASURES, SCHEMA, VERIFICATION_LEVELS
from dsl.types import CIDR_SET, FLOAT, REGEX_SET
from policy_engine import builtins as B
from policy_engine.context import Context
from policy_engine.decision import Effect
from policy_engine.state.base import DECIMAL_SCALE, Calendar, FailMode, Hit, Kind, LimitSpec, Record, to_units

_MISSING = object()


@dataclass(frozen=True, slots=True)
class RuleInfo:
    index: int
    id: str
    effect: Effect
    status: int
    reason: str
    shadow: bool
    retry_after: float | None
    headers: Callable[[Context], dict[str, str]] | None
    span: A.Span


@dataclass(frozen=True, slots=True)
class LimitInfo:
    index: int
    id: str
    spec: LimitSpec
    effect: Effect
    status: int
    reason: str
    shadow: bool
    usage: Callable[[Context], Any] | None  # actual cost from `usage.*` at report time
    block_key: bool  # distinct: once over max, refuse every value of the key
    # Read per hit on the request path, so computed once here:
    kind_label: str  # "count" | "sum" | "distinct"
    fail_closed: bool  # on_error closed
    sets_rate_headers: bool  # an enforced budget (count, sum) may set x-ratelimit-*
    headers: Callable[[Context], dict[str, str]] | None
    span: A.Span

    @property
    def enforce(self) -> bool:
        """Whether exceeding this limit can refuse the request."""
        return not self.shadow and self.effect >= Effect.THROTTLE


# A measure never refuses anything: its hits carry a maximum no value reaches.
MEASURE_MAX = 1e300


@dataclass(frozen=True, slots=True)
class MeasureInfo:
    index: int  # position in Context.measures
    id: str
    spec: LimitSpec  # charged hits: record attempts
    read_spec: LimitSpec  # reads: record admitted in a call with admitted=False (never written)
    level: int  # 0 reads no measure; k reads measures of lower levels
    kind_label: str  # "count" | "sum" | "distinct"
    usage: Callable[[Context], Any] | None  # actual cost from `usage.*` at report time
    span: A.Span


@dataclass(frozen=True, slots=True)
class ExemptInfo:
    index: int
    id: str
    rules: frozenset[int]  # indices of the rules it also skips
    rule_ids: tuple[str, ...]
    span: A.Span


@dataclass
class Compiled:
    # evaluate(c) -> (indices of matched rules, (LimitInfo per hit, Hit per hit))
    evaluate: Callable[[Context], tuple[list[int], tuple[list[LimitInfo], list[Hit]]]]
    evaluate_rules: Callable[[Context], list[int]]
    prepare_limits: Callable[[Context], tuple[list[LimitInfo], list[Hit]]]
    explain_rules: list[Callable[[Context], tuple[Any, Any]]]
    rules: list[RuleInfo]
    limits: list[LimitInfo]
    source: str
    reads: set[str] = field(default_factory=set)
    measures: list[MeasureInfo] = field(default_factory=list)
    # One function per dependency level: measure_levels[k](c) -> (measure indices, their hits)
    measure_levels: list[Callable[[Context], tuple[list[int], list[Hit]]]] = field(default_factory=list)
    # Per level: whether it charges a reconcilable `sum` (its calls then keep a receipt)
    measure_receipts: list[bool] = field(default_factory=list)
    # Per measure, for --explain: why it was only read or skipped (None: it was charged)
    explain_measures: list[Callable[[Context], str | None]] = field(default_factory=list)
    # Per limit, for --explain: (why it did not apply, or None; the written key parts that are null)
    explain_limits: list[Callable[[Context], tuple[str | None, tuple[str, ...]]]] = field(default_factory=list)
    exempts: list[ExemptInfo] = field(default_factory=list)
    # exempt(c) -> the indices of the exemptions that match (None for a policy without any)
    exempt: Callable[[Context], list[int]] | None = None
    # Per exemption, for --explain: (its `when`s hold, an `unless` holds)
    explain_exempts: list[Callable[[Context], tuple[Any, Any]]] = field(default_factory=list)


class _Gen:
    """Generates code for expressions: `expr(e)` returns (source, may_be_null)."""

    def __init__(self, checked: CheckedPolicy, env: dict[str, Any]) -> None:
        self.checked = checked
        self.env = env
        self.counter = itertools.count()
        self.const_ids: dict[int, str] = {}
        self.lets_code: dict[str, tuple[str, bool]] = {}
        self.measure_index = {m.name: i for i, m in enumerate(checked.measures)}

    def tmp(self) -> str:
        return f"_t{next(self.counter)}"

    def const(self, value: Any, prefix: str = "K") -> str:
        name = f"_{prefix}{next(self.counter)}"
        self.env[name] = value
        return name

    # ---------------------------------------------------------- expressions
    def expr(self, e: A.Expr) -> tuple[str, bool]:
        m: Callable[[A.Expr], tuple[str, bool]] = getattr(self, "_" + type(e).__name__)
        return m(e)

    def truth(self, e: A.Expr) -> str:
        """Code for a condition: exactly True or False."""
        code, nullable = self.expr(e)
        return f"(({code}) is True)" if nullable else f"({code})"

    def _Literal(self, e: A.Literal) -> tuple[str, bool]:
        if id(e) in self.checked.rank_literals:
            return repr(VERIFICATION_LEVELS.index(e.value)) if e.value in VERIFICATION_LEVELS else "None", False
        if id(e) in self.checked.cidr_literals:
            return self._cidr_const([e]), False
        return repr(e.value), e.value is None

    def _Invalid(self, e: A.Invalid) -> tuple[str, bool]:  # never reached: the checker rejects them
        raise AssertionError(e.message)

    def _Name(self, e: A.Name) -> tuple[str, bool]:
        if e.id in self.checked.data:
            return self._data_const(e.id), False
        return self.let(e.id)

    def let(self, name: str) -> tuple[str, bool]:
        if name not in self.lets_code:
            let_expr = self.checked.lets[name].expr
            assert let_expr is not None
            if self.checked.constant.get(id(let_expr)):
                code, _ = self.expr(let_expr)
                value = eval(code, self.env, {"c": Context()})  # noqa: S307 - our own generated code
                self.lets_code[name] = (self.const(value, f"L_{name}_"), value is None)
            elif any(isinstance(e, A.Call) for e in let_expr.walk()):
                # Calls a function: computed once per request, however many rules use it.
                code, nullable = self.expr(let_expr)
                fn = f"_let_{name}"
                src = f"def {fn}(c):\n    v = c.cache.get({name!r}, _MISSING)\n    if v is _MISSING:\n        v = c.cache[{name!r}] = {code}\n    return v\n"
                exec(compile(src, f"<policy:let {name}>", "exec"), self.env)  # noqa: S102
                self.lets_code[name] = (f"{fn}(c)", nullable)
            else:
                code, nullable = self.expr(let_expr)
                self.lets_code[name] = (f"({code})", nullable)
        return self.lets_code[name]

    def _data_const(self, name: str) -> str:
        key = f"_D_{name}"
        if key not in self.env:
            dv = self.checked.data[name]
            if dv.type == CIDR_SET:
                from policy_engine.signals import compile_cidrs

                self.env[key] = compile_cidrs(list(dv.value), str(dv.path))
            elif dv.type == REGEX_SET:
                from policy_engine.signals import compile_phrases

                self.env[key] = compile_phrases(list(dv.value), str(dv.path))
            else:
                self.env[key] = dv.value
        return key

    def _Attr(self, e: A.Attr) -> tuple[str, bool]:
        if isinstance(e.obj, A.Name) and e.obj.id == MEASURES:
            # Filled by the engine, level by level, before anything that reads it runs.
            return f"c.measures[{self.measure_index[e.name]}]", True
        assert isinstance(e.obj, A.Name) and e.obj.id in SCHEMA, "checker guarantees section.field"
        path = f"{e.obj.id}.{e.name}"
        f = BY_PATH.get(path)
        if f is None:  # declared by the policy: typed by the engine into `c.attrs`
            return f"c.attrs.get({path!r})", True
        if f.derived is not None:
            return f"_derived_{f.flat}(c)", True
        return f"c.{f.flat}", True

    def _Index(self, e: A.Index) -> tuple[str, bool]:
        obj, _ = self.expr(e.obj)
        idx, _ = self.expr(e.index)
        return f"_index({obj}, {idx})", True

    def _Call(self, e: A.Call) -> tuple[str, bool]:
        f = FUNCTIONS[e.func]
        fn = self._function(e.func)
        args = [self.expr(a)[0] for a in e.args]
        if e.func in PRICED:
            assert self.checked.price_table is not None, "the checker requires a price table"
            args.insert(0, self._data_const(self.checked.price_table))
        if f.signal:
            # Cached per request: the same call with the same arguments runs once.
            key = self.const(e.func, "N")
            return f"_signal(c, {key}, {fn}, ({', '.join(args)},))", True
        return f"{fn}({', '.join(args)})", True

    def _function(self, name: str) -> str:
        key = f"_F_{name}"
        if key not in self.env:
            self.env[key] = B.implementation(name)
        return key

    def _Unary(self, e: A.Unary) -> tuple[str, bool]:
        if e.op == "not":
            return f"(not {self.truth(e.operand)})", False
        code, nullable = self.expr(e.operand)
        if not nullable:
            return f"(-{code})", False
        t = self.tmp()
        return f"(None if ({t} := {code}) is None else -{t})", True

    def _Cond(self, e: A.Cond) -> tuple[str, bool]:
        a, na = self.expr(e.then)
        b, nb = self.expr(e.else_)
        return f"({a} if {self.truth(e.test)} else {b})", na or nb

    def _ListLit(self, e: A.ListLit) -> tuple[str, bool]:
        if id(e) in self.checked.cidr_literals:
            return self._cidr_const(e.items), False
        if self.checked.constant.get(id(e)):
            code = "(" + "".join(self.expr(i)[0] + ", " for i in e.items) + ")"
            return self.const(eval(code, self.env)), False  # noqa: S307
        return "(" + "".join(self.expr(i)[0] + ", " for i in e.items) + ")", False

    def _TupleLit(self, e: A.TupleLit) -> tuple[str, bool]:
        return "(" + "".join(self.expr(i)[0] + ", " for i in e.items) + ")", False

    def _MapLit(self, e: A.MapLit) -> tuple[str, bool]:
        body = "{" + ", ".join(f"{self.expr(k)[0]}: {self.expr(v)[0]}" for k, v in e.entries) + "}"
        if self.checked.constant.get(id(e)):
            return self.const(eval(body, self.env)), False  # noqa: S307
        return body, False

    def _cidr_const(self, items: list[A.Expr]) -> str:
        from policy_engine.signals import compile_cidrs

        nets = [i.value for i in items if isinstance(i, A.Literal)]
        return self.const(compile_cidrs(nets, "<policy>"), "C")

    def _Binary(self, e: A.Binary) -> tuple[str, bool]:
        op = e.op
        if op in ("and", "or"):
            return f"({self.truth(e.left)} {op} {self.truth(e.right)})", False
        if op in ("in", "not in"):
            code = self._membership(e)
            return (f"(not {code})" if op == "not in" else code), False
        if op == "matches":
            return self._matches(e), False
        a, na = self.expr(e.left)
        b, nb = self.expr(e.right)
        if op == "??":
            if not na:
                return a, False
            t = self.tmp()
            return f"({t} if ({t} := {a}) is not None else {b})", nb
        if op in ("==", "!="):
            return f"({a} {op} {b})", False
        if op in ("<", "<=", ">", ">="):
            ta, tb = (self.tmp() if na else a), (self.tmp() if nb else b)
            guards = []
            if na:
                guards.append(f"({ta} := {a}) is not None")
            if nb:
                guards.append(f"({tb} := {b}) is not None")
            guards.append(f"{ta} {op} {tb}")
            return "(" + " and ".join(guards) + ")", False
        # arithmetic
        ta, tb = (self.tmp() if na else a), (self.tmp() if nb else b)
        if op == "/":
            body = f"_div({ta}, {tb})"
        elif op == "%":
            body = f"_mod({ta}, {tb})"
        else:
            body = f"{ta} {op} {tb}"
        if not (na or nb):
            return f"({body})", op in "/%"
        checks = []
        if na:
            checks.append(f"({ta} := {a}) is None")
        if nb:
            checks.append(f"({tb} := {b}) is None")
        return f"(None if {' or '.join(checks)} else {body})", True

    def _membership(self, e: A.Binary) -> str:
        rt = self.checked.type_of(e.right)
        a, _ = self.expr(e.left)
        b, nb = self.expr(e.right)
        if rt == CIDR_SET or id(e.right) in self.checked.cidr_literals:
            return f"_ip_in({a}, {b})"
        if isinstance(e.right, A.ListLit) and self.checked.constant.get(id(e.right)):
            # A constant list: membership in a frozenset built once.
            items = eval(b, self.env)  # noqa: S307
            try:
                b = self.const(frozenset(items), "S")
            except TypeError:
                pass
        if nb:
            t = self.tmp()
            return f"(({t} := {b}) is not None and {a} in {t})"
        return f"({a} in {b})"

    def _matches(self, e: A.Binary) -> str:
        a, _ = self.expr(e.left)
        t = self.tmp()
        if isinstance(e.right, A.Literal):
            rx = self.const(re2.compile(e.right.value), "R")
            return f"(({t} := {a}) is not None and {rx}.search({t}) is not None)"
        b, _ = self.expr(e.right)
        return f"({self._function('matches_any')}({a}, {b}) is True)"


def _signal(c: Context, name: str, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    key = (name, args)
    cache = c.cache
    v = cache.get(key, _MISSING)
    if v is _MISSING:
        v = None if None in args else fn(*args)
        cache[key] = v
    return v


def _derived(field_name: str, signal: str) -> Callable[[Context], Any]:
    """A derived field (client.country, client.asn): the gateway's value, else the signal of client.ip (once)."""
    lookup = B.implementation(signal)

    def get(c: Context) -> Any:
        v = getattr(c, field_name)
        if v is None and c.client_ip is not None:
            return _signal(c, signal, lookup, (c.client_ip,))
        return v

    return get


# Each derived field's reader, by its flat name (`client_asn`): what policies read,
# for the code around them (the replay summary counts blocked requests by derived ASN).
DERIVED: dict[str, Callable[[Context], Any]] = {
    f.flat: _derived(f.flat, f.derived) for f in FIELDS if f.derived is not None
}


def _ip_in_fn() -> Callable[[Any, Any], bool]:
    from policy_engine.signals import ip_in

    def ip_in_nets(ip: Any, nets: Any) -> bool:
        return ip is not None and bool(ip_in(ip, nets))

    return ip_in_nets


def compile_policy(checked: CheckedPolicy) -> Compiled:
    env: dict[str, Any] = {
        "_MISSING": _MISSING,
        "_signal": _signal,
        **{f"_derived_{flat}": get for flat, get in DERIVED.items()},
        "_ip_in": _ip_in_fn(),
        "_index": B.safe_index,
        "_div": B.safe_div,
        "_mod": B.safe_mod,
        "_key": B.render_key,
        "_Hit": Hit,
        "_units": to_units,
        "_units_or_none": lambda v, scale: None if v is None else to_units(v, scale),
    }
    gen = _Gen(checked, env)
    # Two functions: the stateless rules, and the preparation of limit hits
    # (keys, costs, maximums) for the store. `evaluate` runs both.
    lines = ["def evaluate_rules(c):", "    m = []"]
    rules: list[RuleInfo] = []
    explain_src: list[str] = []
    for i, r in enumerate(checked.rules):
        cond = gen.truth(r.condition)
        unless = [gen.truth(u) for u in r.unless]
        test = cond + "".join(f" and not {u}" for u in unless)
        lines.append(f"    if {test}: m.append({i})")
        explain_src.append(f"def rule_{i}(c):\n    return ({cond}, {' or '.join(unless) if unless else 'False'})\n")
        rules.append(_rule_info(i, r, gen))
    lines += ["    return m", "", "def prepare_limits(c):", "    h = []", "    li = []"]
    limits: list[LimitInfo] = []
    for j, lim in enumerate(checked.limits):
        info = _limit_info(j, lim, gen)
        env[f"_SPEC_{j}"], env[f"_ENF_{j}"], env[f"_LIM_{j}"] = info.spec, info.enforce, info
        lines.extend(_limit_code(j, lim, gen))
        explain_src.append(_limit_explain(j, lim, gen))
        limits.append(info)
    lines += ["    return li, h", "", "def evaluate(c):", "    return evaluate_rules(c), prepare_limits(c)"]
    measures, levels = _measures(checked, gen, lines, explain_src)
    exempts = _exempts(checked, gen, lines, explain_src)
    source = "\n".join(lines) + "\n\n" + "\n".join(explain_src)
    code = compile(source, "<policy>", "exec")
    exec(code, env)  # noqa: S102 - our own generated code
    return Compiled(
        evaluate=env["evaluate"],
        evaluate_rules=env["evaluate_rules"],
        prepare_limits=env["prepare_limits"],
        explain_rules=[env[f"rule_{i}"] for i in range(len(rules))],
        rules=rules,
        limits=limits,
        source=source,
        reads=set(checked.fields_read),
        measures=measures,
        measure_levels=[env[f"measure_level_{k}"] for k in range(levels)],
        measure_receipts=[any(m.level == k and m.spec.reconcilable for m in measures) for k in range(levels)],
        explain_measures=[env[f"explain_measure_{m.index}"] for m in measures],
        explain_limits=[env[f"explain_limit_{j}"] for j in range(len(limits))],
        exempts=exempts,
        exempt=env["exempt"] if exempts else None,
        explain_exempts=[env[f"explain_exempt_{x.index}"] for x in exempts],
    )


def _exempts(checked: CheckedPolicy, gen: _Gen, lines: list[str], explain_src: list[str]) -> list[ExemptInfo]:
    """`exempt(c)`, the indices of the exemptions a request matches, and one explain
    function per exemption; nothing for a policy without exemptions."""
    if not checked.exempts:
        return []
    rule_index = {r.name: i for i, r in enumerate(checked.rules)}
    lines += ["", "def exempt(c):", "    x = []"]
    infos = []
    for i, x in enumerate(checked.exempts):
        when = [gen.truth(w) for w in x.when]
        unless = [gen.truth(u) for u in x.unless]
        lines.append(f"    if {' and '.join(when + [f'not {u}' for u in unless])}: x.append({i})")
        explain_src.append(
            f"def explain_exempt_{i}(c):\n    return ({' and '.join(when)}, {' or '.join(unless) or 'False'})\n"
        )
        skipped = frozenset(rule_index[n] for n in x.rules if n in rule_index)
        infos.append(ExemptInfo(i, x.name, skipped, x.rules, x.span))
    lines.append("    return x")
    return infos


def _headers_fn(name: str, headers: tuple[Header, ...], gen: _Gen) -> Callable[[Context], dict[str, str]] | None:
    if not headers:
        return None
    items = ", ".join(f"{h.name!r}: _hval({gen.expr(h.value)[0]})" for h in headers)
    fn = f"_headers_{name}"
    src = f"def {fn}(c):\n    return {{{items}}}\n"
    gen.env["_hval"] = lambda v: (
        "" if v is None else (str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
    )
    exec(compile(src, f"<policy:{name}>", "exec"), gen.env)  # noqa: S102
    return gen.env[fn]  # type: ignore[no-any-return]


def _rule_info(i: int, r: CheckedRule, gen: _Gen) -> RuleInfo:
    return RuleInfo(
        index=i,
        id=r.name,
        effect=Effect.parse(r.effect),
        status=r.status,
        reason=r.reason,
        shadow=r.shadow,
        retry_after=r.retry_after,
        headers=_headers_fn(r.name, r.headers, gen),
        span=r.span,
    )


def _guards(b: Measuring, gen: _Gen) -> list[str]:
    """The code of each `when` and `unless` of a limit or measure: all must hold."""
    return [gen.truth(w) for w in b.when] + [f"not {gen.truth(u)}" for u in b.unless]


def _limit_code(j: int, lim: CheckedLimit, gen: _Gen) -> list[str]:
    guards = _guards(lim, gen)
    parts = [f"_key({gen.expr(k)[0]})" for k in lim.key]
    key_code = parts[0] if len(parts) == 1 else " + '|' + ".join(parts)
    max_code, _ = gen.expr(lim.maximum)
    scale = _scale(lim, gen)
    ind = "        " if guards else "    "
    out = [f"    if {' and '.join(guards)}:"] if guards else []
    out.append(f"{ind}mx = {max_code}" if scale == 1 else f"{ind}mx = _units_or_none({max_code}, {scale})")
    amount, member = "1", "None"
    if lim.amount is not None:
        amount = _amount_code(lim.amount, scale, gen)
    if lim.member is not None:
        out.append(f"{ind}mem = {gen.expr(lim.member)[0]}")
        out.append(f"{ind}if mx is not None and mem is not None:")
        member = "_key(mem)"
    else:
        out.append(f"{ind}if mx is not None:")
    # The store's Hit is built here, beside the LimitInfo it answers to.
    out.append(f"{ind}    h.append(_Hit(_SPEC_{j}, {key_code}, mx, {amount}, {member}, _ENF_{j}))")
    out.append(f"{ind}    li.append(_LIM_{j})")
    return out


def _limit_explain(j: int, lim: CheckedLimit, gen: _Gen) -> str:
    """`explain_limit_j(c)`: why limit j did not apply (None when it did), and which
    parts of its key, as written, are null (they share the bucket "-")."""
    out = [f"def explain_limit_{j}(c):"]
    for w in lim.when:
        out += [f"    if not {gen.truth(w)}:", '        return "`when` is false", ()']
    for u in lim.unless:
        out += [f"    if {gen.truth(u)}:", '        return "`unless` holds", ()']
    for expr, why in ((lim.maximum, "the maximum is null"), (lim.member, "the distinct value is null")):
        code, nullable = gen.expr(expr) if expr is not None else ("", False)
        if nullable:  # a constant maximum cannot be null (and `5 is None` is a SyntaxWarning)
            out += [f"    if ({code}) is None:", f"        return {why!r}, ()"]
    texts = tuple(k.span.text for k in lim.key)
    values = "".join(f"{gen.expr(k)[0]}, " for k in lim.key)
    # The key's values first: a `??` compiles to an assignment expression, which a
    # comprehension's iterable may not hold.
    out += [f"    key = ({values})", f"    return None, tuple(t for t, v in zip({texts!r}, key) if v is None)"]
    return "\n".join(out) + "\n"


def _scale(b: Measuring, gen: _Gen) -> int:
    """DECIMAL_SCALE for a `sum` whose cost or usage is a decimal (money), else 1."""
    exprs = [e for e in (b.amount, b.usage) if e is not None]
    return DECIMAL_SCALE if b.kind == "sum" and any(gen.checked.type_of(e) == FLOAT for e in exprs) else 1


def _amount_code(e: A.Expr, scale: int, gen: _Gen) -> str:
    code = f"({gen.expr(e)[0]}) or 0"
    return code if scale == 1 else f"_units({code}, {scale})"


def _limit_info(j: int, lim: CheckedLimit, gen: _Gen) -> LimitInfo:
    usage_fn = _usage_fn(lim, gen)
    spec = LimitSpec(
        id=lim.name,
        kind=Kind(lim.kind),
        window=lim.window,
        record=Record(lim.record),
        fail=FailMode(lim.on_error),
        reconcilable=usage_fn is not None,
        calendar=_calendar(lim),
        scale=_scale(lim, gen),
        group=_group(lim),
    )
    return LimitInfo(
        index=j,
        id=lim.name,
        spec=spec,
        effect=Effect.parse(lim.effect),
        status=lim.status,
        reason=lim.reason,
        shadow=lim.shadow,
        usage=usage_fn,
        block_key=lim.block == "key",
        kind_label=lim.kind,
        fail_closed=spec.fail is FailMode.CLOSED,
        # A money budget (a decimal `sum`) is no request or token count: its headers would mislead.
        sets_rate_headers=lim.enforce and spec.kind is not Kind.DISTINCT and spec.scale == 1,
        headers=_headers_fn(lim.name, lim.headers, gen),
        span=lim.span,
    )


# ------------------------------------------------------------------ measures


def _measures(
    checked: CheckedPolicy, gen: _Gen, lines: list[str], explain_src: list[str]
) -> tuple[list[MeasureInfo], int]:
    """MeasureInfo per measure, and the code of one function per dependency level
    (`measure_level_K`) and one explain function per measure. Returns the infos and
    the number of levels (0 for a policy without measures: no code, no cost)."""
    infos = [_measure_info(j, m, gen) for j, m in enumerate(checked.measures)]
    levels = 1 + max((m.level for m in infos), default=-1)
    for k in range(levels):
        lines += ["", f"def measure_level_{k}(c):", "    mi = []", "    h = []"]
        for info, m in zip(infos, checked.measures):
            if info.level == k:
                gen.env[f"_MSPEC_{info.index}"], gen.env[f"_MREAD_{info.index}"] = info.spec, info.read_spec
                lines.extend(_measure_code(info.index, m, gen))
        lines.append("    return mi, h")
    for info, m in zip(infos, checked.measures):
        explain_src.append(_measure_explain(info.index, m, gen))
    return infos, levels


def _measure_info(j: int, m: CheckedMeasure, gen: _Gen) -> MeasureInfo:
    kind = Kind(m.kind)
    usage_fn = _usage_fn(m, gen)
    calendar = _calendar(m)
    scale = _scale(m, gen)
    group = _group(m)
    spec = LimitSpec(
        id=m.name,
        kind=kind,
        window=m.window,
        record=Record.ATTEMPTS,
        reconcilable=usage_fn is not None,
        calendar=calendar,
        measure=True,
        scale=scale,
        group=group,
    )
    read_spec = LimitSpec(
        id=m.name,
        kind=kind,
        window=m.window,
        record=Record.ADMITTED,
        calendar=calendar,
        measure=True,
        scale=scale,
        group=group,
    )
    return MeasureInfo(j, m.name, spec, read_spec, m.level, m.kind, usage_fn, m.span)


def _measure_key(j: int, m: CheckedMeasure, gen: _Gen) -> tuple[list[str], str, str]:
    """(statements binding the key's parts, the test that none is null, the rendered key)."""
    parts = [f"_m{j}k{i}" for i in range(len(m.key))]
    binds = [f"{p} = {gen.expr(e)[0]}" for p, e in zip(parts, m.key)]
    present = " and ".join(f"{p} is not None" for p in parts)
    return binds, present, " + '|' + ".join(f"_key({p})" for p in parts)


def _measure_code(j: int, m: CheckedMeasure, gen: _Gen) -> list[str]:
    """Append measure j's hit when its key is not null: charged when it applies, else a read."""
    binds, present, key_code = _measure_key(j, m, gen)
    read = f"_Hit(_MREAD_{j}, _m{j}k, {MEASURE_MAX!r}, 0.0, None, False)"
    out = [f"    {b}" for b in binds]
    out += [f"    if {present}:", f"        _m{j}k = {key_code}", f"        mi.append({j})"]
    guards = _guards(m, gen)
    ind = "            " if guards else "        "
    if guards:
        out.append(f"        if {' and '.join(guards)}:")
    if m.member is not None:
        out.append(f"{ind}_m{j}m = {gen.expr(m.member)[0]}")
        out.append(
            f"{ind}h.append(_Hit(_MSPEC_{j}, _m{j}k, {MEASURE_MAX!r}, 1.0, _key(_m{j}m), False) "
            f"if _m{j}m is not None else {read})"
        )
    else:
        amount = _amount_code(m.amount, _scale(m, gen), gen) if m.amount is not None else "1.0"
        out.append(f"{ind}h.append(_Hit(_MSPEC_{j}, _m{j}k, {MEASURE_MAX!r}, {amount}, None, False))")
    if guards:
        out += ["        else:", f"            h.append({read})"]
    return out


def _measure_explain(j: int, m: CheckedMeasure, gen: _Gen) -> str:
    binds, present, _ = _measure_key(j, m, gen)
    out = [f"def explain_measure_{j}(c):"] + [f"    {b}" for b in binds]
    out.append(f"    if not ({present}):")
    out.append('        return "the key is null"')
    for w in m.when:
        out += [f"    if not {gen.truth(w)}:", '        return "`when` is false"']
    for u in m.unless:
        out += [f"    if {gen.truth(u)}:", '        return "`unless` holds"']
    if m.member is not None:
        out += [f"    if ({gen.expr(m.member)[0]}) is None:", '        return "the distinct value is null"']
    out.append("    return None")
    return "\n".join(out) + "\n"


def _group(b: Measuring) -> str | None:
    """LimitSpec.group: COUNT/SUM limits and measures whose key, as written, is the same
    are counted per the same rendered key, so one store entry holds their counters (each
    limit's own, in its own window). Built from the policy's text, not from its order or
    windows, so that a reload which keeps a key finds the same entries (and a changed
    window reinterprets a limit's counts, as on Redis). It starts with a character no
    name holds, so that it never equals a limit's id. DISTINCT ones keep an entry each."""
    if b.kind == "distinct":
        return None
    return "\x1e" + ", ".join(expr_text(k) for k in b.key)


def _calendar(b: Measuring) -> Calendar | None:
    return Calendar(b.calendar.unit, b.calendar.zone) if b.calendar is not None else None


def _usage_fn(b: Measuring, gen: _Gen) -> Callable[[Context], Any] | None:
    if b.usage is None:
        return None
    code, _ = gen.expr(b.usage)
    src = f"def _usage_{b.name}(c):\n    return {code}\n"
    exec(compile(src, f"<policy:{b.name}>", "exec"), gen.env)  # noqa: S102
    return gen.env[f"_usage_{b.name}"]  # type: ignore[no-any-return]
