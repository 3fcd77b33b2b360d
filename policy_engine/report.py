"""The HTML replay report: one self-contained page (inline CSS and SVG, no
scripts, no fetches) that can be mailed, attached to a CI run or opened offline.

Sections: totals, decisions over time by effect and by rule (stacked bars per
adaptive time bucket), rules and limits that fired, the most blocked keys
(accounts, each blocking limit's keys, ASNs, countries), and how close each limit came
to its maximum.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime, UTC
from html import escape
from collections.abc import Iterable, Mapping, Sequence

from policy_engine.replay import EFFECTS, ReplayStats, share, top_counts

EFFECT_COLORS = {"allow": "#5b9a68", "flag": "#e0b341", "throttle": "#e07b39", "deny": "#c8463d"}
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
OTHER_COLOR = "#d0d0d0"
BUCKET_MINUTES = (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080)
MAX_BUCKETS = 96
TOP_RULES_CHARTED = 8
TOP_KEYS = 10


# ------------------------------------------------------------------ buckets
def bucket_minutes(first_minute: int, last_minute: int) -> int:
    """The smallest bucket (in minutes) that shows the span in at most MAX_BUCKETS bars."""
    span = last_minute - first_minute + 1
    for m in BUCKET_MINUTES:
        if math.ceil(span / m) <= MAX_BUCKETS:
            return m
    return max(BUCKET_MINUTES[-1], math.ceil(span / MAX_BUCKETS))


def effect_buckets(stats: ReplayStats) -> tuple[int, list[tuple[int, list[int]]]]:
    """(bucket size in minutes, [(bucket start minute, counts by effect)]), gaps included."""
    if not stats.minutes:
        return 1, []
    first, last = min(stats.minutes), max(stats.minutes)
    size = bucket_minutes(first, last)
    start = first - first % size
    rows = {b: [0, 0, 0, 0] for b in range(start, last + 1, size)}
    for minute, counts in stats.minutes.items():
        row = rows[minute - minute % size]
        for i, c in enumerate(counts):
            row[i] += c
    return size, sorted(rows.items())


def rule_buckets(
    stats: ReplayStats, size: int, top: int = TOP_RULES_CHARTED
) -> tuple[list[str], list[tuple[int, list[int]]]]:
    """The `top` rules that fired most, plus "other", counted per bucket."""
    names = [r for r, _ in stats.fired.most_common(top)]
    other = len(stats.fired) > top
    series = names + (["other rules"] if other else [])
    index = {n: i for i, n in enumerate(names)}
    if not stats.minutes:
        return series, []
    first, last = min(stats.minutes), max(stats.minutes)
    start = first - first % size
    rows = {b: [0] * len(series) for b in range(start, last + 1, size)}
    for minute, counter in stats.minute_rules.items():
        row = rows[minute - minute % size]
        for rule, c in counter.items():
            i = index.get(rule)
            row[i if i is not None else -1] += c
    return series, sorted(rows.items())


# ------------------------------------------------------------------- charts
def _nice_max(v: float) -> float:
    """A round axis maximum at or above v (1, 2, 2.5, 5 x 10^n)."""
    if v <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * exp:
            return m * exp
    return 10 * exp


def _clock(minute: int, size: int) -> str:
    t = datetime.fromtimestamp(minute * 60, tz=UTC)
    return t.strftime("%m-%d" if size >= 1440 else "%H:%M")


def _fmt_int(v: float) -> str:
    if v >= 1_000_000:
        return f"{v / 1_000_000:g}M"
    if v >= 1000:
        return f"{v / 1000:g}k"
    return f"{v:g}"


def stacked_bars(
    rows: Sequence[tuple[int, Sequence[int]]],
    series: Sequence[str],
    colors: Sequence[str],
    size: int,
    width: int = 960,
    height: int = 260,
) -> str:
    """An inline SVG stacked bar chart; each bar segment has a native tooltip."""
    left, right, top, bottom = 56, 12, 10, 28
    pw, ph = width - left - right, height - top - bottom
    n = max(1, len(rows))
    peak = max((sum(v) for _, v in rows), default=0)
    ymax = _nice_max(peak)
    bw = pw / n
    gap = min(2.0, bw * 0.15)
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">']
    for k in range(5):  # horizontal grid and y labels
        v = ymax * k / 4
        y = top + ph - ph * k / 4
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" class="ylab">{_fmt_int(v)}</text>')
    label_every = max(1, math.ceil(n / 12))
    for i, (minute, values) in enumerate(rows):
        x = left + i * bw
        y = top + ph
        when = datetime.fromtimestamp(minute * 60, tz=UTC).strftime("%Y-%m-%d %H:%M")
        for name, color, v in zip(series, colors, values):
            if v <= 0:
                continue
            h = ph * v / ymax
            y -= h
            parts.append(
                f'<rect x="{x + gap / 2:.2f}" y="{y:.2f}" width="{max(0.5, bw - gap):.2f}" height="{h:.2f}" '
                f'fill="{color}"><title>{escape(when)} UTC +{size}m: {escape(name)} {v:,}</title></rect>'
            )
        if i % label_every == 0:
            parts.append(f'<text x="{x + bw / 2:.1f}" y="{height - 8}" class="xlab">{_clock(minute, size)}</text>')
    parts.append("</svg>")
    legend = "".join(
        f'<span class="key"><i style="background:{c}"></i>{escape(s)}</span>' for s, c in zip(series, colors)
    )
    return f'<div class="legend">{legend}</div>' + "".join(parts)


# ------------------------------------------------------------------- tables
def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Iterable[int] = ()) -> str:
    num = set(numeric)
    head = "".join(f'<th class="{"n" if i in num else ""}">{escape(h)}</th>' for i, h in enumerate(headers))
    body = []
    for r in rows:
        cells = "".join(f'<td class="{"n" if i in num else ""}">{c}</td>' for i, c in enumerate(r))
        body.append(f"<tr>{cells}</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(headers)}" class="none">none</td></tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _top(counter: Mapping[str, int]) -> list[tuple[str, int]]:
    return top_counts(counter, TOP_KEYS)


def _ratio_bar(ratio: float) -> str:
    w = max(0.0, min(1.0, ratio)) * 100
    cls = "hot" if ratio >= 1 else "warm" if ratio >= 0.8 else ""
    return f'<span class="bar {cls}"><i style="width:{w:.1f}%"></i></span> {100 * ratio:.1f}%'


def _num(v: float) -> str:
    return f"{int(v):,}" if float(v).is_integer() else f"{v:,.2f}"


def _when(ts: float | None, short: bool = False) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%m-%d %H:%M" if short else "%Y-%m-%d %H:%M:%S UTC")


# ------------------------------------------------------------------ sections
def _summary(stats: ReplayStats) -> str:
    n = stats.requests
    cards = [f'<div class="card"><b>{n:,}</b><span>requests</span></div>']
    for label, c in stats.effect_counts().items():
        cards.append(
            f'<div class="card" style="border-color:{EFFECT_COLORS[label]}"><b>{c:,}</b>'
            f"<span>{label} ({share(c, n)})</span></div>"
        )
    facts = [
        f"simulated time: {_when(stats.first_ts)} to {_when(stats.last_ts)}",
        f"store: {escape(stats.store)}",
        f"usage reports reconciled: {stats.usage_reconciled:,}",
        f"invalid lines skipped: {stats.invalid:,}",
    ]
    if stats.store_errors:
        facts.append(f"limit checks the store failed: {stats.store_errors:,}")
    if stats.out_of_order:
        facts.append(f"lines out of time order: {stats.out_of_order:,}")
    facts.append(f"replayed in {stats.seconds:.2f}s ({stats.rate:,.0f} requests/s)")
    return (
        f'<section id="summary"><div class="cards">{"".join(cards)}</div><p class="facts">'
        + " &middot; ".join(facts)
        + "</p></section>"
    )


def _over_time(stats: ReplayStats) -> str:
    size, rows = effect_buckets(stats)
    by_effect = stacked_bars(rows, EFFECTS, [EFFECT_COLORS[e] for e in EFFECTS], size)
    series, rrows = rule_buckets(stats, size)
    colors = [PALETTE[i % len(PALETTE)] for i in range(len(series))]
    if series and series[-1] == "other rules":
        colors[-1] = OTHER_COLOR
    by_rule = stacked_bars(rrows, series, colors, size) if series else '<p class="none">no rule fired</p>'
    return (
        f'<section id="effects-over-time"><h2>Decisions over time by effect</h2>'
        f'<p class="note">{size}-minute buckets, simulated clock (UTC).</p>{by_effect}</section>'
        f'<section id="rules-over-time"><h2>Decisions over time by rule</h2>'
        f'<p class="note">Requests on which each rule or limit fired (enforced, not shadow), '
        f"{size}-minute buckets; a request can count under several rules.</p>{by_rule}</section>"
    )


def _rules(stats: ReplayStats) -> str:
    rows = [
        [escape(rid), escape(kind), escape(effect), f"{c:,}", share(c, stats.requests)]
        for rid, kind, effect, c in stats.fired_rows()
    ]
    silent = sorted(set(stats.rule_effect) - set(stats.fired) - set(stats.shadow_fired))
    note = f'<p class="note">Never fired: {escape(", ".join(silent))}.</p>' if silent else ""
    return (
        '<section id="rules"><h2>Rules and limits that fired</h2>'
        + _table(["rule", "kind", "effect", "requests", "share"], rows, numeric=(3, 4))
        + note
        + "</section>"
    )


def _blocked(stats: ReplayStats) -> str:
    parts = [
        '<section id="blocked"><h2>Top blocked keys</h2>'
        f'<p class="note">Requests denied or throttled ({stats.blocked:,} in all), by key.</p>'
        '<div class="cols">'
    ]
    parts.append(
        "<div><h3>Accounts</h3>"
        + _table(["account", "blocked"], [[escape(k), f"{c:,}"] for k, c in _top(stats.blocked_accounts)], numeric=(1,))
        + "</div>"
    )
    parts.append(
        "<div><h3>ASNs</h3>"
        + _table(["ASN", "blocked"], [[escape(k), f"{c:,}"] for k, c in _top(stats.blocked_asns)], numeric=(1,))
        + "</div>"
    )
    parts.append(
        "<div><h3>Countries</h3>"
        + _table(
            ["country", "blocked"], [[escape(k), f"{c:,}"] for k, c in _top(stats.blocked_countries)], numeric=(1,)
        )
        + "</div>"
    )
    parts.append("</div>")
    per_limit: dict[str, Counter[str]] = {}
    for (lim, key), c in stats.blocked_limit_keys.items():
        per_limit.setdefault(lim, Counter())[key] = c
    if not per_limit:
        parts.append('<h3>Limit keys</h3><p class="none">no limit blocked a request</p>')
    parts.append('<div class="cols">')
    for lim in sorted(per_limit, key=lambda k: -sum(per_limit[k].values())):
        expr = stats.limit_key_text.get(lim, "?")
        parts.append(
            f"<div><h3>Limit <code>{escape(lim)}</code> (key <code>{escape(expr)}</code>)</h3>"
            + _table(["key", "blocked"], [[escape(k), f"{c:,}"] for k, c in _top(per_limit[lim])], numeric=(1,))
            + "</div>"
        )
    parts.append("</div></section>")
    return "".join(parts)


def _limits(stats: ReplayStats) -> str:
    rows = []
    order = sorted(stats.peaks.items(), key=lambda kv: (-kv[1].ratio, kv[0]))
    for lim, p in order:
        if p.ratio < 0:
            rows.append(
                [
                    f"<code>{escape(lim)}</code>",
                    escape(stats.rule_kind.get(lim, "?")),
                    f"<code>{escape(stats.limit_key_text.get(lim, '?'))}</code>",
                    "never applied",
                    "-",
                    "-",
                    "-",
                    "-",
                    "0",
                ]
            )
            continue
        rows.append(
            [
                f"<code>{escape(lim)}</code>",
                escape(stats.rule_kind.get(lim, "?")),
                f"<code>{escape(stats.limit_key_text.get(lim, '?'))}</code>",
                _ratio_bar(p.ratio),
                _num(p.used),
                _num(p.max),
                escape(p.key),
                _when(p.ts, short=True),
                f"{p.over:,}",
            ]
        )
    return (
        '<section id="limits"><h2>Limits closest to their maximum</h2>'
        '<p class="note">Peak used/max of each limit over the replay, the key and time it peaked, and on how '
        "many requests it was over its maximum.</p>"
        + _table(
            ["limit", "kind", "key", "peak used/max", "used", "max", "key at peak", "when (UTC)", "over"],
            rows,
            numeric=(4, 5, 8),
        )
        + "</section>"
    )


def _errors(stats: ReplayStats, traffic: str) -> str:
    if not stats.invalid:
        return ""
    rows = [[str(e.line), escape(e.message).replace("\n", "<br>")] for e in stats.errors]
    more = stats.invalid - len(stats.errors)
    note = f'<p class="note">{more:,} more not shown.</p>' if more > 0 else ""
    return (
        f'<section id="invalid"><h2>Invalid lines ({stats.invalid:,})</h2><p class="note">Skipped lines of '
        f"{escape(traffic)}.</p>" + _table(["line", "problem"], rows, numeric=(0,)) + note + "</section>"
    )


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;margin:24px auto;max-width:1000px;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 6px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:14px;margin:14px 0 6px}.sub{color:#666;margin:0 0 12px}code{font:12px ui-monospace,Menlo,Consolas,monospace;background:#f3f3f3;padding:1px 4px;border-radius:3px}
.cards{display:flex;gap:10px;flex-wrap:wrap}.card{border-left:5px solid #888;background:#f7f7f7;padding:8px 14px;min-width:120px}
.card b{display:block;font-size:20px}.card span{color:#555}.facts,.note{color:#555;font-size:13px}.none{color:#888;font-style:italic}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eee}
th{background:#fafafa;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:18px}
.legend{display:flex;flex-wrap:wrap;gap:12px;margin:4px 0;font-size:12px}.key i{display:inline-block;width:11px;height:11px;margin-right:5px;vertical-align:-1px}
svg.chart{max-width:100%;height:auto}svg .grid{stroke:#e6e6e6}svg text{font-size:11px;fill:#666}
svg .ylab{text-anchor:end}svg .xlab{text-anchor:middle}
.bar{display:inline-block;width:90px;height:9px;background:#eee;vertical-align:middle}.bar i{display:block;height:100%;background:#5b9a68}
.bar.warm i{background:#e0b341}.bar.hot i{background:#c8463d}
"""


def render_report(stats: ReplayStats, traffic: str = "traffic") -> str:
    """The whole page as one string."""
    title = f"Replay of {traffic} through {stats.policy_name}"
    body = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="sub">policy version {escape(stats.policy_version)}, {stats.requests:,} requests</p>',
        _summary(stats),
        _over_time(stats),
        _rules(stats),
        _blocked(stats),
        _limits(stats),
        _errors(stats, traffic),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>" + "".join(body) + "</body></html>\n"
    )
