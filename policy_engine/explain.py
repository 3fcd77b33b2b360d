"""A decision and its `--explain` trace as text for people (`policyctl eval --format text`).

The JSON trace (engine.explain_trace) is the source; this only lays it out:
which rule or limit decided, every rule's outcome, each limit's use of its
maximum or why it did not apply, each measure, and the signals computed.
"""

from __future__ import annotations

import json
from typing import Any

from policy_engine.decision import Decision, LimitState, shown_number
from policy_engine.policyset import PolicySet


def render_text(d: Decision, policy: PolicySet) -> str:
    out = _header(d, policy)
    trace = d.trace
    if trace is None:
        out += _limit_lines(d.limits)
        if d.measures:
            out.append("measures:")
            out += [f"  {m.measure} [{m.key}] = {_value(m.value)}" for m in d.measures]
        return "\n".join(out) + "\n"
    sections: list[tuple[str, list[str]]] = [
        ("exemptions", _aligned([_exempt_cells(t) for t in trace if "exempt" in t])),
        ("measures", [_measure_line(t) for t in trace if "measure" in t]),
        ("rules", _aligned([_rule_cells(t) for t in trace if "rule" in t])),
        ("limits", _limit_entries([t for t in trace if "limit" in t])),
        ("computed", [_computed_line(t) for t in trace if "signal" in t or "let" in t]),
    ]
    for title, lines in sections:
        if lines:
            out += ["", f"{title}:", *("  " + line for line in lines)]
    return "\n".join(out) + "\n"


def _header(d: Decision, policy: PolicySet) -> list[str]:
    out = [f"{d.effect.label} {d.status}" + (f": {d.reason}" if d.reason else "")]
    where = {r.id: ("rule", r.effect, f"{r.span.source.name}:{r.span.line}") for r in policy.rules}
    where.update({lim.id: ("limit", lim.effect, f"{lim.span.source.name}:{lim.span.line}") for lim in policy.limits})
    # The decider: the first enforced match with the decision's effect (rules before
    # limits, and a later match only wins with a stronger effect).
    decider = next((rid for rid in d.rules if where.get(rid, ("", None, ""))[1] == d.effect), None)
    if decider is not None:
        kind, _, at = where[decider]
        out.append(f"decided by {kind} {decider} ({at})")
    else:
        out.append("decided by no rule or limit: allowed")
    others = [f"{where[r][0]} {r}" for r in d.rules if r != decider and r in where]
    if others:
        out.append("also matched: " + ", ".join(others))
    if d.shadow_rules:
        out.append("shadow (not enforced): " + ", ".join(d.shadow_rules))
    if d.exempt:
        out.append("exempt: " + ", ".join(d.exempt) + " (no limit consulted)")
    if d.retry_after is not None:
        out.append(f"retry after {_num(d.retry_after)}s")
    if d.headers:
        out.append("headers: " + "; ".join(f"{k}: {v}" for k, v in d.headers.items()))
    out.extend(f"note: {n}" for n in d.notes)
    out.append("policy " + " ".join(x for x in (policy.name, policy.version) if x))
    return out


def _limit_lines(limits: list[LimitState]) -> list[str]:
    if not limits:
        return []
    rows = [
        [s.limit, s.kind, f"[{s.key}]", _use(s.used, s.max, s.remaining, s.over, s.committed, s.error)] for s in limits
    ]
    return ["", "limits:", *("  " + line for line in _aligned(rows))]


def _use(used: Any, mx: Any, remaining: Any, over: bool, committed: bool, error: str | None) -> str:
    text = f"{_num(used)}/{_num(mx)} used, {_num(remaining)} remaining"
    if over:
        text += ", over"
    if not committed:
        text += ", this request not counted"
    if error:
        text += f", store error: {error}"
    return text


def _rule_cells(t: dict[str, Any]) -> list[str]:
    if t["matched"]:
        state = "would match (shadow)" if t.get("shadow") else "matched"
    elif t["condition"] and t.get("exempted_by"):
        state = f"condition true, skipped: exempt {t['exempted_by']}"
    elif t["condition"] and t["exempted"]:
        state = "condition true, exempted by `unless`"
    else:
        state = "condition false"
    return [t["rule"], t["effect"], state, f"({t['at']})"]


def _exempt_cells(t: dict[str, Any]) -> list[str]:
    if t["matched"]:
        state = "matched: skips every limit" + (f" and {', '.join(t['rules'])}" if t["rules"] else "")
    elif t["condition"] and t["exempted"]:
        state = "`when` true, but `unless` holds"
    else:
        state = "`when` false"
    return [t["exempt"], state, f"({t['at']})"]


def _limit_entries(entries: list[dict[str, Any]]) -> list[str]:
    """Two lines a limit: what it is and where, then what it did for this request."""
    heads = _aligned([[t["limit"], t["kind"], t["effect"], f"({t['at']})"] for t in entries])
    out = []
    for head, t in zip(heads, entries):
        out += [head, "    " + _limit_detail(t)]
    return out


def _limit_detail(t: dict[str, Any]) -> str:
    if not t["applied"]:
        why = f"exempt ({t['exempted_by']})" if t.get("exempted_by") else t["why"]
        return f"not applied: {why}"
    use = f"[{t['key']}] " + _use(t["used"], t["max"], t["remaining"], t["over"], t["committed"], t.get("error"))
    if t.get("null_key"):
        use += f"; {', '.join(t['null_key'])} is null: requests without it share this bucket"
    return use


def _measure_line(t: dict[str, Any]) -> str:
    text = f"{t['measure']} ({t['kind']}) {t['status']}"
    if "key" in t:
        text += f" [{t['key']}] = {_value(t.get('value'))}"
    if t.get("why"):
        text += f": {t['why']}"
    if t.get("error"):
        text += f" (store error: {t['error']})"
    return text


def _computed_line(t: dict[str, Any]) -> str:
    if "let" in t:
        return f"let {t['let']} = {_value(t['value'])}"
    return f"{t['signal']}({', '.join(_value(a) for a in t['args'])}) = {_value(t['value'])}"


def _aligned(rows: list[list[str]]) -> list[str]:
    """Rows of cells, each column padded to its widest cell (the last left ragged)."""
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in rows]


def _value(v: Any) -> str:
    if isinstance(v, str) and v.startswith("<") and v.endswith(">"):
        return v  # a data list, shown by name
    if isinstance(v, float):
        return _num(v)
    return json.dumps(v, ensure_ascii=False)


def _num(v: Any) -> str:
    return str(shown_number(v)) if isinstance(v, float) else str(v)
