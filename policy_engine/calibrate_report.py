"""How `policyctl calibrate` shows its numbers: a text report that fits 80
columns (tables are split into several when their columns do not fit, long
words are wrapped, nothing is cut), JSON with every number, and a
self-contained HTML page in the replay report's style (inline CSS and SVG
histograms of per-key peaks with the maximum marked, no scripts, no URLs).
"""

from __future__ import annotations

import math
import textwrap
from html import escape
from typing import Any, NamedTuple
from collections.abc import Sequence

from policy_engine.calibrate import Calibration, GroupView, ItemView, Threshold, literal, pct, rounded
from policy_engine.report import CSS, _nice_max, _table

WIDTH = 80
LABEL_WIDTH = 24
MODE_NOTE = (
    "Limits were observed, not enforced: no limit refused a request, so each key's peak is its "
    "traffic's own, not one capped by the policy. Stateless rules decided as usual; a request they "
    "refused was not charged to `record admitted` limits, as in production."
)
PEAK_ROWS = ("max", "p99.9", "p99", "p90", "median")


# --------------------------------------------------------------------- text
def num(v: float | None) -> str:
    if v is None:
        return "-"
    if not math.isfinite(v):
        return str(v)
    if float(v).is_integer():
        return f"{int(v):,}"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def _count(n: int, total: int) -> str:
    return f"{n:,} ({pct(n, total)})" if total else f"{n:,}"


def _wrap(text: str, indent: str = "", hang: str = "") -> list[str]:
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=indent,
        subsequent_indent=hang or indent,
        break_long_words=True,
        break_on_hyphens=False,
    ) or [indent.rstrip()]


def group_label(g: GroupView) -> str:
    if g.ratio:
        return "max varies"
    return "observed" if g.threshold is None else g.threshold.label


def _value(g: GroupView, v: float) -> str:
    return f"x{v:.3g}" if g.ratio else num(v)


class Column(NamedTuple):
    group: str  # header line 1: the threshold, e.g. "max 60"
    sub: str  # header line 2: "all keys", "benign", ... (with --truth)
    cells: dict[str, str]  # row -> cell


def _columns(item: ItemView, with_truth: bool) -> list[list[Column]]:
    """The columns of an item's table, grouped by threshold (a group stays together when it fits)."""
    out: list[list[Column]] = []
    if item.info.kind == "limit" and len(item.groups) > 1 and item.peaks is not None:
        cells = {"keys": f"{item.keys:,}"} | {f"peak {q}": num(item.peaks[q]) for q in PEAK_ROWS}
        out.append([Column("all maxima", "all keys" if with_truth else "", cells)])
    for g in item.groups:
        t = g.threshold
        # A measure's distribution is shown once, in its "observed" column.
        show_peaks = t is None or t.source == "max"
        cells = {"keys": f"{g.keys:,}"}
        if show_peaks:
            cells |= {f"peak {q}": _value(g, g.peaks[q]) for q in PEAK_ROWS}
        if t is not None:
            cells["over the max"] = _count(g.over, g.keys)
            cells["within 20% below"] = _count(g.near, g.keys)
        if g.suggested is not None:
            cells["suggested max"] = f"x{literal(g.suggested)}" if g.ratio else literal(g.suggested)
            cells["keys over suggestion"] = _count(g.suggested_over, g.keys)
            if t is not None and t.value and not g.ratio:
                cells["suggestion vs max"] = _versus(g.suggested, t.value)
        cols = [Column(group_label(g), "all keys" if with_truth else "", cells)]
        for label, entry in (g.by_truth or {}).items():
            sub = {"keys": f"{entry['keys']:,}"}
            if entry["peaks"] is not None and show_peaks:
                sub |= {f"peak {q}": _value(g, entry["peaks"][q]) for q in PEAK_ROWS}
            if "over" in entry:
                sub["over the max"] = _count(entry["over"], entry["keys"])
                sub["within 20% below"] = _count(entry["near"], entry["keys"])
            cols.append(Column(group_label(g), label, sub))
        out.append(cols)
    return out


def _versus(suggested: float, current: float) -> str:
    if suggested == current:
        return "same"
    r = suggested / current
    if 0.5 <= r < 2:
        return f"{100 * (r - 1):+.0f}%"
    return f"{r:.2g}x"


ROWS = (
    "keys",
    *(f"peak {q}" for q in PEAK_ROWS),
    "over the max",
    "within 20% below",
    "suggested max",
    "keys over suggestion",
    "suggestion vs max",
)
ROW_LABELS = {"peak max": "per-key peak  max"} | {f"peak {q}": f"{q:>17}" for q in PEAK_ROWS[1:]}
MEASURE_LABELS = ROW_LABELS | {
    "over the max": "over the threshold",
    "suggested max": "suggested threshold",
    "suggestion vs max": "suggestion vs now",
}


def _labels(item: ItemView) -> dict[str, str]:
    return MEASURE_LABELS if item.info.kind == "measure" else ROW_LABELS


def _table_text(groups: Sequence[Sequence[Column]], labels: dict[str, str]) -> list[str]:
    """Columns right-aligned after a label column, in as many tables as it
    takes to fit WIDTH; a threshold's columns stay in one table when they fit."""
    chunks: list[list[Column]] = [[]]
    used = LABEL_WIDTH
    for cols in groups:
        need = sum(_width(c) for c in cols)
        if chunks[-1] and used + need > WIDTH:
            chunks.append([])
            used = LABEL_WIDTH
        for c in cols:
            if chunks[-1] and used + _width(c) > WIDTH:
                chunks.append([])
                used = LABEL_WIDTH
            chunks[-1].append(c)
            used += _width(c)
    out: list[str] = []
    for chunk in chunks:
        if out:
            out.append("")
        w = [_width(c) for c in chunk]
        heads = [c.group if i == 0 or chunk[i - 1].group != c.group else "" for i, c in enumerate(chunk)]
        for line in (heads, [c.sub for c in chunk]):
            text = " " * LABEL_WIDTH + "".join(h.rjust(wi) for h, wi in zip(line, w))
            if text.strip():
                out.append(text.rstrip())
        for r in ROWS:
            if any(c.cells.get(r) for c in chunk):
                label = ("  " + labels.get(r, r)).ljust(LABEL_WIDTH)
                out.append((label + "".join(c.cells.get(r, "").rjust(wi) for c, wi in zip(chunk, w))).rstrip())
    return out


def _width(c: Column) -> int:
    return max(len(c.group), len(c.sub), *(len(v) for v in c.cells.values())) + 2


def measure_notes(item: ItemView) -> list[str]:
    """Where a measure's thresholds come from, and which reads are not reported."""
    i = item.info
    if i.kind != "measure":
        return []
    out = []
    for t in i.thresholds:
        others = "" if t.alone else ", with other conditions"
        out.append(
            f"{t.op} {literal(t.value)}: rule {t.rule} ({t.effect}{' (shadow)' if t.shadow else ''}"
            f"{others}): `{t.text}`"
        )
    if i.unreported:
        out.append(f"also read by {', '.join(i.unreported)}: not a rule comparing it with a constant, not reported")
    if not i.thresholds:
        out.append("no rule compares it with a constant: its distribution only")
    return out


def item_heading(item: ItemView) -> str:
    i = item.info
    what = [f"{i.measure} per {i.key}", f"window {i.calendar or window_text(i.window)}"]
    if i.kind == "limit":
        what = [f"{i.effect}{' (shadow)' if i.shadow else ''}", *what, f"record {i.record}"]
    return f"{i.kind} {i.item}: " + ", ".join(what)


def window_text(seconds: float) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and float(seconds / size).is_integer():
            return f"{int(seconds // size)}{unit}"
    return f"{seconds * 1000:g}ms"


def render_text(cal: Calibration) -> str:
    st, pol = cal.run.stats, cal.run.policy
    lines = _wrap(
        f"Calibration of {cal.run.traffic} ({st.requests:,} requests) through policy {pol.name} {pol.version}."
    )
    lines += _wrap(MODE_NOTE)
    facts = [f"{st.blocked:,} requests refused by rules", f"{st.usage_reconciled:,} usage reports reconciled"]
    if st.invalid:
        facts.append(f"{st.invalid:,} invalid line{'s' * (st.invalid != 1)} skipped")
    if st.out_of_order:
        facts.append(f"{st.out_of_order:,} line{'s' * (st.out_of_order != 1)} out of time order")
    if cal.run.untracked:
        facts.append(f"{cal.run.untracked:,} observations of keys past the key bound dropped")
    facts.append(f"refuse share {cal.refuse_share:g} ({pct(cal.refuse_share, 1)} of keys)")
    lines += _wrap("; ".join(facts) + ".")
    for item in cal.items:
        lines.append("")
        lines += _wrap(item_heading(item), hang="    ")
        if not item.groups:
            lines.append("  never applied: no request reached it")
            continue
        lines += _table_text(_columns(item, cal.run.with_truth), _labels(item))
        for note in measure_notes(item):
            lines += _wrap(note, indent="  ", hang="    ")
        for w in item.warnings:
            lines += _wrap(f"warning: {w}", indent="  ", hang="    ")
    n = len(cal.warnings)
    lines.append("")
    lines += _wrap(
        f"{n} warning{'s' * (n != 1)}: a throttle or deny threshold sits inside the body of the traffic."
        if n
        else "No warnings: every throttle or deny threshold sits above the body of the traffic."
    )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------- json
def render_json(cal: Calibration) -> dict[str, Any]:
    """Every number; sliding-window estimates rounded to 4 decimals."""
    return _round_floats(cal.to_json())


def _round_floats(v: Any) -> Any:
    if isinstance(v, float):
        return rounded(v)
    if isinstance(v, dict):
        return {k: _round_floats(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_round_floats(x) for x in v]
    return v


# --------------------------------------------------------------------- html
HIST_BINS = 40
HIST_CSS = """
svg .over{fill:#c8463d}svg .tagged{fill:#e0b341}svg .under{fill:#4e79a7}svg .maxline{stroke:#c8463d;stroke-width:2}
svg .flagline{stroke:#e0b341;stroke-width:2}svg .end{text-anchor:end}
svg .sugline{stroke:#59a14f;stroke-width:2;stroke-dasharray:5 3}svg .axis{font-style:italic}
.warn{color:#a33;font-weight:600}
"""


def histogram(
    values: Sequence[float],
    marks: Sequence[tuple[float, str, str]],
    integral: bool,
    width: int = 960,
    height: int = 240,
) -> str:
    """Per-key peaks as an inline SVG histogram (log-scaled key counts): each
    throttle or deny threshold a solid red line (a flag one amber), keys past
    the lowest threshold in its colour, each suggestion a dashed green line."""
    left, right, top, bottom = 56, 12, 24, 44
    pw, ph = width - left - right, height - top - bottom
    lines = sorted((v, cls) for v, cls, _ in marks if cls != "sugline")
    threshold, over_cls = (lines[0][0], "over" if lines[0][1] == "maxline" else "tagged") if lines else (None, "")
    hi = max([max(values, default=0.0), *(v for v, _, _ in marks)])
    xmax = _nice_max(hi * 1.05)
    bw = max(1.0, math.ceil(xmax / HIST_BINS)) if integral else xmax / HIST_BINS
    bins = [0] * max(1, math.ceil(xmax / bw))
    for v in values:  # right-closed bins (lo, lo + bw]: a key at the maximum is not over it
        bins[max(0, min(len(bins) - 1, math.ceil(v / bw) - 1))] += 1
    ymax = math.log10(1 + max(bins))
    xs = pw / (len(bins) * bw)

    def x(v: float) -> float:
        return left + v * xs

    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">']
    for k in range(int(math.floor(ymax)) + 1):
        y = top + ph - ph * math.log10(1 + 10**k) / ymax if ymax else top + ph
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" class="ylab">{10**k:,}</text>')
    for i, c in enumerate(bins):
        if not c:
            continue
        lo = i * bw
        h = ph * math.log10(1 + c) / ymax
        cls = over_cls if threshold is not None and lo >= threshold else "under"
        parts.append(
            f'<rect x="{x(lo) + 0.5:.2f}" y="{top + ph - h:.2f}" width="{max(0.5, bw * xs - 1):.2f}" '
            f'height="{h:.2f}" class="{cls}"><title>{c:,} keys with a peak in ({num(lo)}, '
            f"{num(lo + bw)}]</title></rect>"
        )
    ticks = 5 if f"{xmax:e}"[0] in "15" else 4  # steps of 1, 2 or 5 x 10^n
    for k in range(ticks + 1):
        v = xmax * k / ticks
        anchor = " end" if k == ticks else ""
        parts.append(f'<text x="{x(v):.1f}" y="{top + ph + 16}" class="xlab{anchor}">{num(v)}</text>')
    for v, cls, what in marks:
        parts.append(
            f'<line x1="{x(v):.1f}" y1="{top}" x2="{x(v):.1f}" y2="{top + ph}" class="{cls}">'
            f"<title>{escape(what)}</title></line>"
        )
    parts.append(f'<text x="{left}" y="{top - 10}" class="axis">keys (log scale)</text>')
    parts.append(f'<text x="{left + pw / 2:.1f}" y="{height - 6}" class="axis xlab">per-key peak</text>')
    parts.append("</svg>")
    return "".join(parts)


def _html_item(item: ItemView, values: dict[Any, list[float]], with_truth: bool) -> str:
    i = item.info
    parts = [
        f'<section id="item-{escape(i.item)}"><h2>{escape(i.kind)} <code>{escape(i.item)}</code></h2>',
        f'<p class="note">{escape(item_heading(item).split(": ", 1)[1])}</p>',
    ]
    if not item.groups:
        return "".join(parts) + '<p class="none">never applied: no request reached it</p></section>'
    cols = [c for group in _columns(item, with_truth) for c in group]
    rows = [r for r in ROWS if any(r in c.cells for c in cols)]
    headers = ["", *[" ".join(x for x in (c.group, c.sub) if x) for c in cols]]
    labels = _labels(item)
    body = [[escape(labels.get(r, r).strip()), *[escape(c.cells.get(r, "")) for c in cols]] for r in rows]
    parts.append(_table(headers, body, numeric=range(1, len(headers))))
    for note in measure_notes(item):
        parts.append(f'<p class="note">{escape(note)}</p>')
    for w in item.warnings:
        parts.append(f'<p class="warn">warning: {escape(w)}</p>')
    for g, vals, marks in _panels(item, values):
        label = group_label(g) + (" (peak/max per key)" if g.ratio else "")
        parts.append(f"<h3>{escape(label)}: per-key peaks</h3>")
        parts.append(histogram(vals, marks, i.integral and not g.ratio))
        if g.top:
            parts.append(_table(["highest keys", "peak"], [[escape(k), _value(g, v)] for k, v in g.top], numeric=(1,)))
    return "".join(parts) + "</section>"


Mark = tuple[float, str, str]  # value, "maxline" (throttle, deny), "flagline" or "sugline", tooltip


def _line(t: Threshold) -> str:
    return "maxline" if t.blocking else "flagline"


def _panels(item: ItemView, values: dict[Any, list[float]]) -> list[tuple[GroupView, list[float], list[Mark]]]:
    """One histogram per limit maximum; one per measure, with every rule's threshold on it."""
    if item.info.kind == "measure":
        marks: list[Mark] = []
        for g in item.groups[1:]:
            t = g.threshold
            assert t is not None and g.suggested is not None
            marks += [
                (t.value, _line(t), f"{t.source}: {t.label}"),
                (g.suggested, "sugline", f"suggested for {t.source}: {t.op} {literal(g.suggested)}"),
            ]
        return [(item.groups[0], values.get(None, []), marks)]
    out = []
    for g in item.groups:
        t = g.threshold
        assert t is not None and g.suggested is not None
        vals = values.get("varied" if g.ratio else t.value, [])
        shown = "x" if g.ratio else ""
        out.append(
            (
                g,
                vals,
                [
                    (t.value, _line(t), f"max {shown}{literal(t.value)}"),
                    (g.suggested, "sugline", f"suggested {shown}{literal(g.suggested)}"),
                ],
            )
        )
    return out


def render_html(cal: Calibration) -> str:
    run = cal.run
    st = run.stats
    title = f"Calibration of {run.traffic} through {run.policy.name}"
    head = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="sub">policy version {escape(run.policy.version)}, {st.requests:,} requests, '
        f"refuse share {cal.refuse_share:g}</p>",
        f'<p class="note">{escape(MODE_NOTE)} {st.blocked:,} requests were refused by rules.</p>',
    ]
    n = len(cal.warnings)
    head.append(f'<p class="{"warn" if n else "note"}">{n} warning{"s" * (n != 1)}.</p>')
    body = []
    for item in cal.items:
        s = run.series[item.info.item]
        values: dict[Any, list[float]] = {t: list(p.values()) for t, p in s.groups.items()}
        values["varied"] = list(s.varied.values())
        body.append(_html_item(item, values, run.with_truth))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{CSS}{HIST_CSS}</style></head><body>"
        + "".join(head + body)
        + "</body></html>\n"
    )
