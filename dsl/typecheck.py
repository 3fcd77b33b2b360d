"""Expression typing: every expression against the request schema, the policy's
`let`s, data lists and measures, and the language's functions.

`Types` records each expression's type and whether it reads the request (it is
constant otherwise) in the `CheckedPolicy`, and reports what does not type. The
checker (dsl/checker.py) owns the declarations and asks `Types` about each
expression they hold; both report into one `Scope`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from dsl import ast as A
from dsl import data as D
from dsl.checked import CheckedPolicy
from dsl.diagnostics import Diagnostic, Severity, did_you_mean
from dsl.fold import const_value, fold_bool
from dsl.functions import FUNCTIONS, NUM, PRICE_CLASS, PRICED, SIZED, WEEKDAYS, ZONE
from dsl.schema import MEASURES, VERIFICATION_LEVELS
from dsl.zones import zone, zone_hint
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


@dataclass
class Scope:
    """What expressions can name, what has been named, and where findings go."""

    out: CheckedPolicy
    lets: dict[str, A.Let] = field(default_factory=dict)
    data_decls: dict[str, A.Data] = field(default_factory=dict)
    measures: dict[str, A.Measure] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)  # lets and data lists some expression reads
    diags: list[Diagnostic] = field(default_factory=list)

    @property
    def data(self) -> dict[str, D.DataValue]:
        return self.out.data

    def error(self, code: str, msg: str, span: A.Span | None, hint: str | None = None) -> None:
        self.diags.append(Diagnostic(code, msg, span, Severity.ERROR, hint))

    def warn(self, code: str, msg: str, span: A.Span, hint: str | None = None) -> None:
        self.diags.append(Diagnostic(code, msg, span, Severity.WARNING, hint))


class Types:
    def __init__(self, scope: Scope) -> None:
        self.s = scope
        self.let_types: dict[str, Type] = {}
        self.let_const: dict[str, bool] = {}
        self.resolving: list[str] = []  # lets being typed, for cycles (E0215)
        self.usage_only = False  # set while checking a `usage` clause
        self.guarded: set[int] = set()  # ids of expressions on the left of `??`

    def let_type(self, name: str) -> Type:
        if name in self.let_types:
            return self.let_types[name]
        let = self.s.lets[name]
        if name in self.resolving:
            cycle = " -> ".join(self.resolving[self.resolving.index(name) :] + [name])
            self.s.error("E0215", f"`let {name}` refers to itself: {cycle}", let.name_span)
            self.let_types[name] = ANY
            return ANY
        self.resolving.append(name)
        t = self.expr(let.expr) if let.expr is not None else ANY
        self.resolving.pop()
        self.let_types[name] = t
        self.let_const[name] = self.s.out.constant.get(id(let.expr), False) if let.expr is not None else True
        return t

    def _reads_only_usage(self, name: str, seen: set[str]) -> bool:
        """Whether `let name` (and the lets it uses) reads nothing of the request but
        `usage.*`: a `usage` clause may use it (the usage report holds what it reads)."""
        if name in seen:
            return True  # a cycle: reported as E0215
        seen.add(name)
        let_expr = self.s.lets[name].expr
        for node in let_expr.walk() if let_expr is not None else ():
            if isinstance(node, A.Attr) and isinstance(node.obj, A.Name):
                if node.obj.id == MEASURES or node.obj.id in self.s.out.schema and node.obj.id != "usage":
                    return False
            elif isinstance(node, A.Name) and node.id in self.s.lets and not self._reads_only_usage(node.id, seen):
                return False
        return True

    def _measure_read(self, e: A.Attr) -> tuple[Type, bool]:
        """`measures.NAME`: a number (null when the measure's key is null or the store failed)."""
        if self.usage_only:
            self.s.error(
                "E0212",
                f"`usage` cannot read `{MEASURES}.{e.name}`",
                e.span,
                "when the usage report arrives, the request is gone: `usage` reads only `usage.*` fields",
            )
            return ANY, False
        if e.name not in self.s.measures:
            names = list(self.s.measures)
            hint = did_you_mean(e.name, names) or (
                "measures: " + ", ".join(names) if names else "declare it with `measure NAME { ... }`"
            )
            self.s.error("E0201", f"unknown measure `{e.name}`", e.span, hint)
            return ANY, False
        return FLOAT, False

    # ------------------------------------------------------------- expressions
    def bool_expr(self, e: A.Expr, what: str) -> None:
        t = self.expr(e)
        if t not in (BOOL, ANY, NULL):
            self.s.error("E0205", f"{what} must be true or false, not {t}", e.span, _bool_hint(e, t))
        elif self.s.out.constant.get(id(e)) and not isinstance(e, A.Literal):
            v = fold_bool(e, self.s.lets)
            if v is True:
                self.s.warn("W0303", "this condition is always true", e.span)
            elif v is False:
                self.s.warn("W0304", "this condition is always false: the clause never applies", e.span)

    def expr(self, e: A.Expr) -> Type:
        t, const = self._expr(e)
        self.s.out.types[id(e)] = t
        self.s.out.constant[id(e)] = const
        return t

    def _sub(self, e: A.Expr) -> tuple[Type, bool]:
        t = self.expr(e)
        return t, self.s.out.constant[id(e)]

    def _expr(self, e: A.Expr) -> tuple[Type, bool]:
        match e:
            case A.Literal(kind=kind):
                return {"int": INT, "float": FLOAT, "string": STRING, "bool": BOOL, "null": NULL, "duration": DURATION}[
                    kind
                ], True
            case A.Invalid():
                self.s.error(e.code, e.message, e.span, e.hint)
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
                    self.s.error("E0205", f"`not` takes true or false, not {t}", e.operand.span)
                return BOOL, c
            case A.Unary(op="-"):
                t, c = self._sub(e.operand)
                if not (is_numeric(t) or t == DURATION):
                    self.s.error("E0205", f"cannot negate {t}", e.operand.span)
                return t, c
            case A.Binary():
                return self._binary(e)
            case A.Cond():
                tt, c1 = self._sub(e.test)
                if tt not in (BOOL, ANY, NULL):
                    self.s.error("E0205", f"`if` needs true or false, not {tt}", e.test.span)
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
        self.s.error("E0205", f"{what} have different types: {a} and {b}", span)
        return ANY

    def _name(self, e: A.Name, name: str) -> tuple[Type, bool]:
        if self.usage_only and name != "usage" and name not in self.s.lets:
            self.s.error(
                "E0212",
                f"`usage` can read only `usage.*` fields and constants, not `{name}`",
                e.span,
                "when the usage report arrives, the rest of the request is gone",
            )
            return ANY, False
        if name in self.s.lets:
            self.s.used.add(name)
            t = self.let_type(name)
            const = self.let_const.get(name, False)
            if self.usage_only and not const and not self._reads_only_usage(name, set()):
                self.s.error(
                    "E0212",
                    f"`usage` can use only lets that read `usage.*` fields and constants; `{name}` reads the request",
                    e.span,
                )
            return t, const
        if name in self.s.data:
            self.s.used.add(name)
            return self.s.data[name].type, True
        if name in self.s.data_decls:
            self.s.used.add(name)
            return ANY, True  # failed to load: already reported
        if name == MEASURES:
            example = next(iter(self.s.measures), "NAME")
            self.s.error(
                "E0201", f"`{MEASURES}` is not a value", e.span, f"read one measure, e.g. `{MEASURES}.{example}`"
            )
            return ANY, False
        schema = self.s.out.schema
        if name in schema:
            self.s.error(
                "E0201",
                f"`{name}` is a section of the request, not a value",
                e.span,
                f"name a field, e.g. `{name}.{next(iter(schema[name]))}`",
            )
            return ANY, False
        candidates = list(self.s.lets) + list(self.s.data_decls) + list(schema)
        hint = did_you_mean(name, candidates)
        if hint is None and name in FUNCTIONS:
            hint = f"`{name}` is a function: call it as `{name}(...)`"
        self.s.error("E0201", f"unknown name `{name}`", e.span, hint)
        return ANY, False

    def _attr(self, e: A.Attr) -> tuple[Type, bool]:
        if isinstance(e.obj, A.Name) and e.obj.id == MEASURES:
            return self._measure_read(e)
        schema = self.s.out.schema
        if isinstance(e.obj, A.Name) and e.obj.id in schema and e.obj.id not in self.s.lets:
            section = e.obj.id
            if self.usage_only and section != "usage":
                self.s.error(
                    "E0212",
                    f"`usage` can read only `usage.*` fields, not `{section}.{e.name}`",
                    e.span,
                    "read `usage.model`, the model that served the call, as the gateway reports it"
                    if e.name == "model" and "model" in schema["usage"]
                    else "when the usage report arrives, the rest of the request is gone",
                )
                return ANY, False
            t = schema[section].get(e.name)
            if t is None:
                hint = did_you_mean(e.name, schema[section])
                if hint is None:
                    full = [f"{s}.{f}" for s, fs in schema.items() for f in fs]
                    hint = did_you_mean(f"{section}.{e.name}", full) or (
                        f"fields of {section}: " + ", ".join(schema[section])
                    )
                else:
                    hint = f"did you mean `{section}.{hint.split('`')[1]}`?"
                self.s.error("E0202", f"`{section}` has no field `{e.name}`", e.span, hint)
                return ANY, False
            self.s.out.fields_read.add(f"{section}.{e.name}")
            return t, False
        t, _ = self._sub(e.obj)
        if t != ANY:
            self.s.error("E0202", f"a value of type {t} has no field `{e.name}`", e.span)
        return ANY, False

    def _index(self, e: A.Index) -> tuple[Type, bool]:
        t, c1 = self._sub(e.obj)
        k, c2 = self._sub(e.index)
        if isinstance(t, MapType):
            if not assignable(k, t.key):
                self.s.error("E0205", f"this map's keys are {t.key}, not {k}", e.index.span)
            return t.value, c1 and c2
        if isinstance(t, ListType):
            if k not in (INT, ANY):
                self.s.error("E0205", f"a list index is an int, not {k}", e.index.span)
            return t.elem, c1 and c2
        if t != ANY:
            self.s.error("E0205", f"cannot index a value of type {t}", e.obj.span, "only maps and lists take `[...]`")
        return ANY, False

    def _call(self, e: A.Call) -> tuple[Type, bool]:
        f = FUNCTIONS.get(e.func)
        if f is None:
            for a in e.args:
                self.expr(a)
            hint = did_you_mean(e.func, FUNCTIONS) or (
                "loaders go in `data NAME = ...`" if e.func in D._LOADERS else None
            )
            self.s.error("E0203", f"unknown function `{e.func}`", e.name_span, hint)
            return ANY, False
        if len(e.args) != len(f.params):
            self.s.error(
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
            elif p == ZONE:
                ok = assignable(t, STRING)
                if ok:
                    self._zone_arg(a)
            elif p == PRICE_CLASS:
                ok = assignable(t, STRING)
            elif p == SIZED:
                ok = t in (STRING, ANY, NULL) or isinstance(t, (ListType, SetType, MapType))
            else:
                ok = assignable(t, p)  # type: ignore[arg-type]
            if not ok:
                self.s.error("E0205", f"argument of `{f.name}` must be {p}, not {t}", a.span)
        for a in e.args[len(f.params) :]:
            self.expr(a)
        if f.name in PRICED and len(e.args) == len(f.params):
            self._priced(e)
        if f.returns == NUM:
            nums = [t for t in types if is_numeric(t)]
            ret: Type = INT if nums and all(t == INT for t in nums) else FLOAT
            return ret, const
        return f.returns, const  # type: ignore[return-value]

    def _priced(self, e: A.Call) -> None:
        """price(model, class) and model_group(model) read the policy's price table: it
        must exist, the class must be one of its columns, and a constant model one of its rows."""
        name = self.s.out.price_table
        if name is None:
            declared = next((d.name for d in self.s.data_decls.values() if d.loader == "prices"), None)
            if declared is not None:
                self.s.used.add(declared)  # it failed to load: already reported
            else:
                self.s.error(
                    "E0213",
                    f"`{e.func}` reads the policy's price table, and it has none",
                    e.name_span,
                    'declare one: `data prices = prices("prices.csv")`',
                )
            return
        self.s.used.add(name)
        table = self.s.data[name].value
        assert isinstance(table, D.PriceTable)
        if e.func == "price":
            ok, cls = const_value(e.args[1], self.s.lets)
            if not ok or not isinstance(cls, str):
                self.s.error("E0213", "the token class must be a constant string", e.args[1].span, 'e.g. "output"')
            elif cls not in table.classes:
                known = D.PRICE_CLASSES if cls not in D.PRICE_CLASSES else table.classes
                hint = did_you_mean(cls, known) or f"the table prices: {', '.join(table.classes)}"
                self.s.error("E0213", f"the price table `{name}` has no `{cls}` price", e.args[1].span, hint)
        ok, model = const_value(e.args[0], self.s.lets)
        if ok and isinstance(model, str):
            if model not in table.groups:  # known when the policy loads: a typo, whatever `*` would say
                hint = did_you_mean(model, table.groups) or f"add a row for it to `{name}`, or a `*` row"
                self.s.error("E0213", f"model `{model}` is not in the price table `{name}`", e.args[0].span, hint)
        elif e.func == "price" and table.default is None and id(e) not in self.guarded:
            self.s.warn(
                "W0313",
                "a model the price table does not list has no price: this cost is then null",
                e.span,
                f"add a `*` row to `{name}` for other models, or write `{e.span.text} ?? <price>`",
            )

    def _zone_arg(self, a: A.Expr) -> None:
        """A time zone argument: a constant naming an IANA zone, known when the policy loads."""
        ok, v = const_value(a, self.s.lets)
        if not ok or not isinstance(v, str):
            self.s.error("E0213", "the time zone must be a constant string", a.span, 'e.g. "Europe/Paris" or "UTC"')
        elif zone(v) is None:
            self.s.error("E0213", f"unknown time zone `{v}`", a.span, zone_hint(v))

    def _weekdays(self, call: A.Expr, literals: list[A.Expr]) -> None:
        """Strings compared with local_weekday(...) must be what it returns."""
        if not (isinstance(call, A.Call) and call.func == "local_weekday"):
            return
        for lit in literals:
            if isinstance(lit, A.Literal) and lit.kind == "string" and lit.value not in WEEKDAYS:
                self.s.error(
                    "E0213",
                    f'local_weekday returns "mon" to "sun", never "{lit.value}"',
                    lit.span,
                    did_you_mean(lit.value.lower()[:3], WEEKDAYS) or "days: " + ", ".join(WEEKDAYS),
                )

    def _binary(self, e: A.Binary) -> tuple[Type, bool]:
        op = e.op
        if op in ("and", "or"):
            a, c1 = self._sub(e.left)
            b, c2 = self._sub(e.right)
            for t, side in ((a, e.left), (b, e.right)):
                if t not in (BOOL, ANY, NULL):
                    self.s.error("E0205", f"`{op}` joins true/false values, not {t}", side.span, _bool_hint(side, t))
            return BOOL, c1 and c2
        if op in ("in", "not in"):
            return self._membership(e)
        if op == "matches":
            return self._matches(e)
        if op == "??":
            self.guarded.add(id(e.left))  # a null left side has a fallback (W0313)
        a, c1 = self._sub(e.left)
        b, c2 = self._sub(e.right)
        const = c1 and c2
        if op == "??":
            return self._join(a, b, e.right.span, "the two sides of `??`"), const
        if op in ("==", "!=", "<", "<=", ">", ">="):
            self._comparison(e, a, b)
            self._weekdays(e.left, [e.right])
            self._weekdays(e.right, [e.left])
            return BOOL, const
        return self._arith(e, a, b), const

    def _comparison(self, e: A.Binary, a: Type, b: Type) -> None:
        if VERIFICATION in (a, b):
            other = e.right if a == VERIFICATION else e.left
            ot = b if a == VERIFICATION else a
            if ot == VERIFICATION or ot in (ANY, NULL):
                return
            if isinstance(other, A.Literal) and other.kind == "string":
                self._level(other, "levels: none < email < phone < kyc")
                return
            self.s.error("E0205", f'verification compares with a level such as "phone", not {ot}', other.span)
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
        self.s.error("E0205", f"cannot compare {a} with {b} using `{e.op}`", e.span, hint)

    def _level(self, lit: A.Literal, hint: str | None) -> None:
        """A string compared with a verification level: it must name one (compiled as its rank)."""
        if lit.value not in VERIFICATION_LEVELS:
            self.s.error(
                "E0208",
                f"`{lit.value}` is not a verification level",
                lit.span,
                did_you_mean(lit.value, VERIFICATION_LEVELS) or hint,
            )
        self.s.out.rank_literals.add(id(lit))

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
        self.s.error("E0205", f"cannot apply `{op}` to {a} and {b}", e.span)
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
                    self.s.error(
                        "E0207",
                        f"`{item.value}` is not a valid CIDR or address",
                        item.span,
                        "write networks as 203.0.113.0/24 or 2001:db8::/32",
                    )
            self.s.out.types[id(right)] = CIDR_SET
            self.s.out.constant[id(right)] = True
            self.s.out.cidr_literals.add(id(right))
            return BOOL, c1
        b, c2 = self._sub(right)
        const = c1 and c2
        if isinstance(right, A.ListLit):
            self._weekdays(e.left, right.items)
        if b == ANY or a == ANY:
            return BOOL, const
        if b == CIDR_SET:
            if not assignable(a, IP) and a != STRING:
                self.s.error("E0205", f"only an IP address can be `in` a CIDR set, not {a}", e.left.span)
            return BOOL, const
        if b in (STRING, IP):
            self.s.error(
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
            self.s.error("E0205", f"`{e.op}` needs a list, set, map or CIDR set on the right, not {b}", right.span)
            return BOOL, const
        if a == VERIFICATION and isinstance(right, A.ListLit):
            for item in right.items:
                if isinstance(item, A.Literal) and item.kind == "string":
                    self._level(item, None)
            return BOOL, const
        if not (assignable(a, elem) or assignable(elem, a) or (is_numeric(a) and is_numeric(elem))):
            self.s.error("E0205", f"a {a} is never in a collection of {elem}", e.left.span)
        return BOOL, const

    def _matches(self, e: A.Binary) -> tuple[Type, bool]:
        a, c1 = self._sub(e.left)
        if a not in (STRING, ANY, NULL, IP):
            self.s.error("E0205", f"`matches` tests text, not {a}", e.left.span)
        right = e.right
        if isinstance(right, A.Literal) and right.kind == "string":
            self.s.out.types[id(right)] = STRING
            self.s.out.constant[id(right)] = True
            err = D.check_pattern(right.value)
            if err:
                self.s.error(
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
            self.s.error("E0205", "`matches` takes a constant pattern string or a `patterns` data list", right.span)
        return BOOL, c1

    def _literal_size(self, n: int, what: str, span: A.Span) -> None:
        if n > MAX_LITERAL_ITEMS:
            self.s.error(
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


def _bool_hint(e: A.Expr, t: Type) -> str | None:
    if t in (INT, FLOAT):
        return "compare it with something, e.g. `> 0`"
    if t == STRING:
        return 'compare it with something, e.g. `== "pro"`'
    return None
