"""Lowering: the checked blocks to the typed middle stage (dsl/checked.py).

Each block's clauses become resolved fields, with the defaults of dsl/checked.py
applied here and nowhere else. Runs at the end of the check stage; a block that
lacks a part it cannot do without (an error already reported) is left out.
"""

from __future__ import annotations

from typing import Any, TypeVar

from dsl import ast as A
from dsl.checked import (
    BLOCK_MODES,
    CALENDAR_SECONDS,
    CALENDAR_UNITS,
    DEFAULT_BLOCK,
    DEFAULT_LIMIT_EFFECT,
    DEFAULT_ON_ERROR,
    DEFAULT_RECORD,
    DEFAULT_RETRY_AFTER,
    DEFAULT_STATUS,
    DEFAULT_TIME_ZONE,
    EFFECTS,
    FAIL_MODES,
    MEASURE_KINDS,
    RECORD_MODES,
    CalendarWindow,
    CheckedExempt,
    CheckedLimit,
    CheckedMeasure,
    CheckedPolicy,
    CheckedRule,
    EffectName,
    Header,
)
from dsl.fold import Lets, const_value, is_number
from dsl.parser import parse_duration
from dsl.zones import zone


def lower(out: CheckedPolicy) -> None:
    """Fill in `out.rules`, `out.limits` and `out.measures` from the declared blocks, in
    source order: each block that has the parts it cannot do without (an effect; what
    to measure, a key, a constant window; a max)."""
    out.rules = [r for r in map(_lower_rule, out.rule_decls) if r is not None]
    out.limits = [lim for lim in (_lower_limit(b, out.lets) for b in out.limit_decls) if lim is not None]
    out.measures = [m for m in (_lower_measure(b, out) for b in out.measure_decls) if m is not None]
    rules = {r.name for r in out.rules}
    out.exempts = [x for x in (_lower_exempt(b, rules) for b in out.exempt_decls) if x is not None]


def _lower_exempt(x: A.Exempt, rules: set[str]) -> CheckedExempt | None:
    if x.find("when") is None:
        return None
    named = [n.id for c in x.find_all("rules") for n in c.exprs if isinstance(n, A.Name) and n.id in rules]
    return CheckedExempt(
        name=x.name,
        span=x.name_span,
        decl=x,
        when=_exprs(x, "when"),
        unless=_exprs(x, "unless"),
        rules=tuple(dict.fromkeys(named)),
    )


def _lower_rule(r: A.Rule) -> CheckedRule | None:
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


def _lower_limit(lim: A.Limit, lets: Lets) -> CheckedLimit | None:
    measuring = _lower_measuring(lim, lets)
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


def _lower_measure(m: A.Measure, out: CheckedPolicy) -> CheckedMeasure | None:
    measuring = _lower_measuring(m, out.lets)
    if measuring is None:
        return None
    return CheckedMeasure(**measuring, decl=m, level=out.measure_levels.get(m.name, 0))


def _lower_measuring(b: A.Limit | A.Measure, lets: Lets) -> dict[str, Any] | None:
    """The fields of `Measuring`, or None when the block lacks one it cannot do without."""
    what = next((c for c in b.clauses if c.kind in MEASURE_KINDS), None)
    kind = _word(what, MEASURE_KINDS, None, by_kind=True)
    key, window = b.find("key"), b.find("window")
    if what is None or kind is None or key is None or window is None:
        return None
    calendar = _calendar(window)
    if calendar is not None:
        seconds: object = CALENDAR_SECONDS[calendar.unit]
    elif window.text is not None or not window.exprs:
        return None
    else:
        ok, seconds = const_value(window.exprs[0], lets)
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
        "calendar": calendar,
    }


def _calendar(c: A.Clause) -> CalendarWindow | None:
    """The calendar window of a `window calendar ...` clause (None: a sliding window, or an invalid one)."""
    unit = _word(c, CALENDAR_UNITS, None)
    if unit is None:
        return None
    name = c.exprs[0].value if c.exprs and isinstance(c.exprs[0], A.Literal) else DEFAULT_TIME_ZONE
    return CalendarWindow(unit, name) if isinstance(name, str) and zone(name) is not None else None


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
