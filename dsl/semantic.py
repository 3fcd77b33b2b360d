"""Semantic lint: warnings about policies that are valid but probably wrong.

The lint stage: runs after the check stage, on a policy without errors, over
the typed middle stage (dsl/checked.py), and stays conservative:
a warning must be true whenever it is given. Conditions are compared after a
syntactic normalisation (lets expanded, `and`/`or` flattened and sorted,
`a > b` written `b < a`, `==` operands sorted), never by solving them.

- W0303/W0304  a condition is always true (`P or not P`, a constant-true
               alternative) / always false (a constant-false conjunct)
- W0306        a rule never decides: an earlier rule with an equal or stronger
               effect matches whenever it does (its conjuncts are a subset, its
               exemptions too); a limit that a stricter twin always trips first
- W0307        a condition that contradicts itself (`x == "a" and x == "b"`,
               `x < 3 and x > 5`, `P and not P`)
- W0309        `distinct` over a value unique to each request or over the raw
               prompt: the count grows with every request, the limit is a
               `count` in disguise or trivially evaded
- W0310        a `count`/`distinct` limit whose constant max is 0 or less: every
               request exceeds it
- W0312        a limit or measure key that is null whenever a request field is,
               with nothing that keeps such requests out (a `when` that is not
               true, an `unless` that is, a deny rule for them): they all share
               one bucket, `-`
"""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Callable, Iterable

from dsl import ast as A
from dsl.checked import CheckedLimit, CheckedMeasure, CheckedPolicy, Measuring
from dsl.diagnostics import Diagnostic, Severity
from dsl.fold import const_value, fold_bool, is_number
from dsl.schema import BY_PATH, VERIFICATION_LEVELS
from dsl.types import VERIFICATION

EFFECT_RANK = {"flag": 1, "throttle": 2, "deny": 3}
# Fields whose value is (nearly) unique per request; the raw prompt, trivially varied.
UNBOUNDED_FIELDS = {
    "request.id": "unique to each request",
    "request.ts": "different for each request",
    "request.prompt": "the raw prompt: any trivial variation counts as new",
}
MAX_LET_DEPTH = 32


def analyze(checked: CheckedPolicy) -> list[Diagnostic]:
    return _Semantic(checked).run()


class _Semantic:
    def __init__(self, checked: CheckedPolicy) -> None:
        self.c = checked
        self.diags: list[Diagnostic] = []

    def warn(self, code: str, msg: str, span: A.Span, hint: str | None = None) -> None:
        self.diags.append(Diagnostic(code, msg, span, Severity.WARNING, hint))

    def run(self) -> list[Diagnostic]:
        for r in self.c.rules:
            self._condition(r.condition, "the rule never matches")
            for u in r.unless:
                self._condition(u, "the exemption never applies")
        blocks: tuple[CheckedLimit | CheckedMeasure, ...] = (*self.c.limits, *self.c.measures)
        for b in blocks:
            what = "limit" if isinstance(b, CheckedLimit) else "measure"
            for w in b.when:
                self._condition(w, f"the {what} never applies")
            for u in b.unless:
                self._condition(u, "the exemption never applies")
            self._distinct(b)
            self._null_key(b, what)
            if isinstance(b, CheckedLimit):
                self._max(b)
        self._shadowed_rules()
        self._shadowed_limits()
        return self.diags

    # ----------------------------------------------------------- conditions
    def _condition(self, e: A.Expr, consequence: str) -> None:
        conj = self.conjuncts(e)
        clash = contradiction(conj, self)
        if clash is not None:
            a, b = clash
            self.warn(
                "W0307",
                f"contradictory condition: `{_text(a)}` and `{_text(b)}` cannot both hold; {consequence}",
                e.span,
                "fix the values or join the two with `or`",
            )
            return
        if not self.c.constant.get(id(e)):  # a wholly constant condition is the checker's to report
            for x in conj:
                if fold_bool(x, self.c.lets) is False:
                    self.warn(
                        "W0304",
                        f"this condition is always false: `{_text(x)}` is false; {consequence}",
                        e.span,
                        "remove the clause, or use `shadow` to switch a rule off",
                    )
                    return
            for x in self.disjuncts(e):
                if fold_bool(x, self.c.lets) is True:
                    self.warn(
                        "W0303",
                        f"this condition is always true: `{_text(x)}` is true",
                        e.span,
                        "remove the clause, or fix the condition",
                    )
                    return
        disj = [norm(x, self.c) for x in self.disjuncts(e)]
        for x in self.disjuncts(e):
            if isinstance(x, A.Unary) and x.op == "not" and norm(x.operand, self.c) in disj:
                self.warn(
                    "W0303",
                    f"this condition is always true: it holds `{_text(x.operand)}` or its negation",
                    e.span,
                    "remove the clause, or fix the condition",
                )
                return

    def conjuncts(self, e: A.Expr) -> list[A.Expr]:
        return _flatten(e, "and", self.c)

    def disjuncts(self, e: A.Expr) -> list[A.Expr]:
        return _flatten(e, "or", self.c)

    def _norms(self, es: Iterable[A.Expr]) -> frozenset[str]:
        return frozenset(norm(x, self.c) for x in es)

    def const(self, e: A.Expr) -> tuple[bool, object]:
        return const_value(e, self.c.lets)

    # ---------------------------------------------------------------- limits
    def _distinct(self, b: CheckedLimit | CheckedMeasure) -> None:
        if b.member is None:
            return
        for path, attr in _raw_fields(b.member, self.c):
            why = UNBOUNDED_FIELDS.get(path)
            if why is None:
                continue
            hint = (
                "count distinct fingerprint(request.prompt), template_id(...), near_dup_key(...) or topic(...)"
                if path == "request.prompt"
                else "use `count` to count requests, or a field that repeats"
            )
            self.warn("W0309", f"`distinct` over `{path}` ({why}): the count grows with every request", attr.span, hint)
            return

    def _max(self, lim: CheckedLimit) -> None:
        if lim.kind == "sum":
            return
        ok, v = self.const(lim.maximum)
        if ok and is_number(v) and v <= 0:  # type: ignore[operator]
            self.warn(
                "W0310",
                f"max {v:g}: every request exceeds this limit",
                lim.maximum.span,
                "to refuse every matching request, write a rule: `deny when ...`",
            )

    def _null_key(self, b: Measuring, what: str) -> None:
        """W0312: a key part that is null when a field is, and nothing keeps those requests out."""
        warned: set[str] = set()
        for k in b.key:
            for path in _fields_read(k, self.c):
                if path in warned or when_null(k, path, self.c) != NULL or self._null_guarded(b, what, path):
                    continue
                warned.add(path)
                self.warn(
                    "W0312",
                    f"`{path}` can be null: every request without it counts in one shared bucket (`-`) "
                    f"of {what} `{b.name}`",
                    k.span,
                    f"guard it: `when {path} != null`",
                )

    def _null_guarded(self, b: Measuring, what: str, path: str) -> bool:
        if any(when_null(w, path, self.c) in (FALSE, NULL) for w in b.when):
            return True
        if any(when_null(u, path, self.c) == TRUE for u in b.unless):
            return True
        # A rule that denies every request without the field (e.g. `deny when account.id == null`):
        # none of them is admitted, and none reads the shared bucket without being denied.
        skipped = {r for x in self.c.exempts for r in x.rules}
        for r in self.c.rules:
            if r.effect == "deny" and not r.shadow and not r.unless and r.name not in skipped:
                if when_null(r.condition, path, self.c) == TRUE:
                    return True
        if what == "limit":  # an exemption that holds for them skips every limit
            for x in self.c.exempts:
                if x.when and not x.unless and all(when_null(w, path, self.c) == TRUE for w in x.when):
                    return True
        return False

    # ------------------------------------------------------------- shadowing
    def _shadowed_rules(self) -> None:
        infos = []
        for r in self.c.rules:
            if r.shadow:
                continue
            conj = self.conjuncts(r.condition)
            if contradiction(conj, self) is not None:
                continue
            infos.append(
                (r, EFFECT_RANK[r.effect], {norm(x, self.c) for x in conj}, {norm(u, self.c) for u in r.unless})
            )
        for i, (b, b_eff, b_conj, b_unless) in enumerate(infos):
            for a, a_eff, a_conj, a_unless in infos[:i]:
                if a_eff >= b_eff and a_conj <= b_conj and a_unless <= b_unless:
                    same = a_conj == b_conj and a_unless == b_unless
                    what = "has the same condition as" if same else "only matches when it is already matched by"
                    self.warn(
                        "W0306",
                        f"rule `{b.name}` never decides: it {what} `{a.name}` "
                        f"({_where(a.span)}), whose effect is as strong or stronger",
                        b.span,
                        "merge the two rules, or make the later one's condition differ",
                    )
                    break

    def _shadowed_limits(self) -> None:
        infos = []
        for lim in self.c.limits:
            if lim.shadow:
                continue
            ok, v = self.const(lim.maximum)
            if not ok or not isinstance(v, (int, float)):
                continue
            what = lim.amount if lim.amount is not None else lim.member
            sig = (
                lim.kind,
                tuple(norm(k, self.c) for k in lim.key),
                norm(what, self.c) if what is not None else "",
                lim.window,
                lim.calendar,
                self._norms(lim.when),
                self._norms(lim.unless),
                lim.record,
            )
            infos.append((lim, sig, float(v), EFFECT_RANK[lim.effect]))
        for i, (b, b_sig, b_max, b_eff) in enumerate(infos):
            for a, a_sig, a_max, a_eff in infos[:i]:
                if a_sig == b_sig and a_max <= b_max and a_eff >= b_eff:
                    self.warn(
                        "W0306",
                        f"limit `{b.name}` never decides: `{a.name}` ({_where(a.span)}) measures the same "
                        f"thing with a max of {a_max:g} <= {b_max:g} and an effect as strong",
                        b.span,
                        "remove one of the two limits",
                    )
                    break


# ------------------------------------------------------------------ helpers


def _where(span: A.Span) -> str:
    return f"{span.source.name}:{span.line}"


def _text(e: A.Expr) -> str:
    t = " ".join(e.span.text.split())
    return t if len(t) <= 60 else t[:57] + "..."


def _flatten(e: A.Expr, op: str, checked: CheckedPolicy, depth: int = 0) -> list[A.Expr]:
    """The operands of a chain of `op`, looking through lets."""
    if depth > MAX_LET_DEPTH:
        return [e]
    if isinstance(e, A.Binary) and e.op == op:
        return _flatten(e.left, op, checked, depth + 1) + _flatten(e.right, op, checked, depth + 1)
    inner = checked.let_expr(e)
    if inner is not None:
        return _flatten(inner, op, checked, depth + 1)
    return [e]


_SWAP = {">": "<", ">=": "<="}


def norm(e: A.Expr, checked: CheckedPolicy, depth: int = 0) -> str:
    """A canonical text for an expression: equal texts mean equal expressions."""
    if depth > MAX_LET_DEPTH:
        return f"<{id(e)}>"

    def n(x: A.Expr) -> str:
        return norm(x, checked, depth + 1)

    inner = checked.let_expr(e)
    if inner is not None:
        return n(inner)
    match e:
        case A.Literal(kind=kind, value=value):
            if kind in ("int", "float") and not isinstance(value, bool):
                return f"num:{float(value)!r}"
            return f"{kind}:{value!r}"
        case A.Name(id=name):
            return f"name:{name}"
        case A.Attr(obj=obj, name=name):
            return f"{n(obj)}.{name}"
        case A.Index(obj=obj, index=index):
            return f"{n(obj)}[{n(index)}]"
        case A.Call(func=func, args=args):
            return f"{func}({','.join(n(a) for a in args)})"
        case A.Unary(op=op, operand=operand):
            return f"{op}({n(operand)})"
        case A.Binary(op=op) if op in ("and", "or"):
            parts = sorted({n(x) for x in _flatten(e, op, checked, depth + 1)})
            return f"{op}[{';'.join(parts)}]"
        case A.Binary(op=op, left=left, right=right):
            a, b = n(left), n(right)
            if op in _SWAP:
                return f"{_SWAP[op]}({b},{a})"
            if op in ("==", "!=", "+", "*"):
                a, b = sorted((a, b))
            if op in ("in", "not in") and isinstance(right, A.ListLit):
                b = "set{" + ";".join(sorted({n(i) for i in right.items})) + "}"
            return f"{op}({a},{b})"
        case A.Cond(test=test, then=then, else_=else_):
            return f"if({n(test)},{n(then)},{n(else_)})"
        case A.ListLit(items=items):
            return "list[" + ";".join(n(i) for i in items) + "]"
        case A.TupleLit(items=items):
            return "tuple[" + ";".join(n(i) for i in items) + "]"
        case A.MapLit(entries=entries):
            return "map{" + ";".join(f"{n(k)}:{n(v)}" for k, v in entries) + "}"
    return f"<{type(e).__name__}:{id(e)}>"


def _raw_fields(e: A.Expr, checked: CheckedPolicy, depth: int = 0) -> Iterable[tuple[str, A.Attr]]:
    """Request fields read by `e` other than through a function call (a signal
    such as fingerprint() maps the raw value to a bounded one)."""
    if depth > MAX_LET_DEPTH or isinstance(e, A.Call):
        return
    inner = checked.let_expr(e)
    if inner is not None:
        yield from _raw_fields(inner, checked, depth + 1)
        return
    if isinstance(e, A.Attr) and isinstance(e.obj, A.Name):
        yield f"{e.obj.id}.{e.name}", e
        return
    if isinstance(e, A.Cond):
        # The test only chooses a branch; the value comes from the branches.
        yield from _raw_fields(e.then, checked, depth + 1)
        yield from _raw_fields(e.else_, checked, depth + 1)
        return
    for ch in e.children():
        yield from _raw_fields(ch, checked, depth + 1)


# --------------------------------------------------------------- null keys

# What an expression is when one request field is null, as the generated code computes
# it (every function returns null for a null argument, an ordered comparison with null
# is false, a condition holds only when it is true): None when it depends on more.
NULL, TRUE, FALSE, VALUE = "null", "true", "false", "value"
_NOT_NULL = (TRUE, FALSE, VALUE)


def _fields_read(e: A.Expr, checked: CheckedPolicy, depth: int = 0) -> list[str]:
    """The request fields `e` reads, lets expanded, in order; fields the engine fills when a
    request leaves them out are left out."""
    if depth > MAX_LET_DEPTH:
        return []
    inner = checked.let_expr(e)
    if inner is not None:
        return _fields_read(inner, checked, depth + 1)
    if isinstance(e, A.Attr) and isinstance(e.obj, A.Name):
        path = f"{e.obj.id}.{e.name}"
        f = BY_PATH.get(path) or next((a for a in checked.attributes if a.path == path), None)
        return [f.path] if f is not None and not f.filled else []
    out: list[str] = []
    for ch in e.children():
        out += [p for p in _fields_read(ch, checked, depth + 1) if p not in out]
    return out


def when_null(e: A.Expr, path: str, checked: CheckedPolicy, depth: int = 0) -> str | None:
    """NULL, TRUE, FALSE or VALUE (something else, not null) when the field `path` is null;
    None when that does not decide it."""
    if depth > MAX_LET_DEPTH:
        return None

    def v(x: A.Expr) -> str | None:
        return when_null(x, path, checked, depth + 1)

    inner = checked.let_expr(e)
    if inner is not None:
        return v(inner)
    match e:
        case A.Literal(value=value):
            return NULL if value is None else TRUE if value is True else FALSE if value is False else VALUE
        case A.Attr(obj=A.Name(id=section), name=name):
            return NULL if f"{section}.{name}" == path else None
        case A.Name(id=name):
            return VALUE if name in checked.data else None
        case A.ListLit() | A.TupleLit() | A.MapLit():
            return VALUE
        case A.Call(args=args):
            return NULL if any(v(a) == NULL for a in args) else None
        case A.Index(obj=obj, index=index):
            return NULL if NULL in (v(obj), v(index)) else None
        case A.Unary(op="not", operand=operand):
            inner_v = v(operand)
            return FALSE if inner_v == TRUE else TRUE if inner_v in (FALSE, NULL) else None
        case A.Unary(operand=operand):
            return NULL if v(operand) == NULL else None
        case A.Cond(test=test, then=then, else_=else_):
            t = v(test)
            if t == TRUE:
                return v(then)
            if t in (FALSE, NULL):
                return v(else_)
            a = v(then)
            return a if a is not None and a == v(else_) else None
        case A.Binary(op=op, left=left, right=right):
            return _binary_when_null(op, left, right, v)
    return None


def _binary_when_null(op: str, left: A.Expr, right: A.Expr, v: Callable[[A.Expr], str | None]) -> str | None:
    a, b = v(left), v(right)
    if op == "and":
        return FALSE if FALSE in (a, b) or NULL in (a, b) else TRUE if a == b == TRUE else None
    if op == "or":
        return TRUE if TRUE in (a, b) else FALSE if a in (FALSE, NULL) and b in (FALSE, NULL) else None
    if op == "??":
        return b if a == NULL else a if a in _NOT_NULL else None
    if op in ("==", "!="):
        same = TRUE if a == b == NULL else FALSE if NULL in (a, b) and (a in _NOT_NULL or b in _NOT_NULL) else None
        return same if op == "==" or same is None else (FALSE if same == TRUE else TRUE)
    if op in ("<", "<=", ">", ">=", "matches"):
        return FALSE if NULL in (a, b) else None
    if op in ("in", "not in"):
        # A null value is in no data list, no field's list and no list of non-null literals.
        items = right.items if isinstance(right, A.ListLit) else None
        absent = b == NULL or (a == NULL and (items is None or all(v(i) in _NOT_NULL for i in items)))
        if not absent:
            return None
        return FALSE if op == "in" else TRUE
    return NULL if NULL in (a, b) else None  # arithmetic


# ---------------------------------------------------------- contradictions


@dataclass
class _Facts:
    """What the conjuncts say about one subject."""

    subject_text: A.Expr
    eq: list[tuple[object, A.Expr]] = field(default_factory=list)
    ne: list[tuple[object, A.Expr]] = field(default_factory=list)
    within: list[tuple[frozenset[object], A.Expr]] = field(default_factory=list)
    lo: tuple[float, bool, A.Expr] | None = None  # (bound, strict, where)
    hi: tuple[float, bool, A.Expr] | None = None


def _key(v: object) -> object:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v


def contradiction(conj: list[A.Expr], sem: _Semantic) -> tuple[A.Expr, A.Expr] | None:
    """Two conjuncts that cannot both be true, if the normalised text shows it."""
    checked = sem.c
    seen: dict[str, A.Expr] = {}
    facts: dict[str, _Facts] = {}
    for x in conj:
        seen.setdefault(norm(x, checked), x)
    for x in conj:
        if isinstance(x, A.Unary) and x.op == "not":
            other = seen.get(norm(x.operand, checked))
            if other is not None:
                return other, x
        fact = _comparison(x, sem)
        if fact is None:
            continue
        subj, op, value = fact
        f = facts.setdefault(norm(subj, checked), _Facts(subj))
        clash = _add(f, op, value, x)
        if clash is not None:
            return clash
    return None


def _comparison(x: A.Expr, sem: _Semantic) -> tuple[A.Expr, str, object] | None:
    """`subject op constant` (either way round), with verification levels as ranks."""
    if not isinstance(x, A.Binary):
        return None
    if x.op in ("in", "not in") and isinstance(x.right, A.ListLit) and id(x.right) not in sem.c.cidr_literals:
        vals = []
        for item in x.right.items:
            ok, v = sem.const(item)
            if not ok:
                return None
            vals.append(_rank(x.left, v, sem))
        return x.left, x.op, frozenset(_key(v) for v in vals)
    if x.op not in ("==", "!=", "<", "<=", ">", ">="):
        return None
    ok_r, vr = sem.const(x.right)
    ok_l, vl = sem.const(x.left)
    if ok_r and not ok_l:
        return x.left, x.op, _key(_rank(x.left, vr, sem))
    if ok_l and not ok_r:
        flipped = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(x.op, x.op)
        return x.right, flipped, _key(_rank(x.right, vl, sem))
    return None


def _rank(subject: A.Expr, v: object, sem: _Semantic) -> object:
    if sem.c.type_of(subject) == VERIFICATION and isinstance(v, str) and v in VERIFICATION_LEVELS:
        return VERIFICATION_LEVELS.index(v)
    return v


def _add(f: _Facts, op: str, v: object, x: A.Expr) -> tuple[A.Expr, A.Expr] | None:
    if op == "==":
        for w, at in f.eq:
            if w != v:
                return at, x
        for w, at in f.ne:
            if w == v:
                return at, x
        for s, at in f.within:
            if v not in s:
                return at, x
        for b in (f.lo, f.hi):
            if b is not None and not _in_bounds(v, f.lo, f.hi):
                return b[2], x
        f.eq.append((v, x))
    elif op == "!=":
        for w, at in f.eq:
            if w == v:
                return at, x
        f.ne.append((v, x))
    elif op == "in":
        assert isinstance(v, frozenset)
        for w, at in f.eq:
            if w not in v:
                return at, x
        for s, at in f.within:
            if not (s & v):
                return at, x
        f.within.append((v, x))
    elif op == "not in":
        assert isinstance(v, frozenset)
        for w, at in f.eq:
            if w in v:
                return at, x
    elif is_number(v):
        bound = (float(v), op in ("<", ">"), x)  # type: ignore[arg-type]
        if op in ("<", "<="):
            if f.hi is None or bound[0] < f.hi[0] or (bound[0] == f.hi[0] and bound[1]):
                f.hi = bound
        elif f.lo is None or bound[0] > f.lo[0] or (bound[0] == f.lo[0] and bound[1]):
            f.lo = bound
        if f.lo is not None and f.hi is not None:
            lo, hi = f.lo, f.hi
            if lo[0] > hi[0] or (lo[0] == hi[0] and (lo[1] or hi[1])):
                return (lo[2], hi[2]) if lo[2] is not x else (hi[2], lo[2])
        for w, at in f.eq:
            if not _in_bounds(w, f.lo, f.hi):
                return at, x
    return None


def _in_bounds(v: object, lo: tuple[float, bool, A.Expr] | None, hi: tuple[float, bool, A.Expr] | None) -> bool:
    if not is_number(v):
        return False  # null (or text) never satisfies an ordered comparison
    fv = float(v)  # type: ignore[arg-type]
    if lo is not None and (fv < lo[0] or (fv == lo[0] and lo[1])):
        return False
    if hi is not None and (fv > hi[0] or (fv == hi[0] and hi[1])):
        return False
    return True
