"""Calibrate thresholds on a provider's own traffic (`policyctl calibrate`).

A limit's maximum tuned on one world does not transfer to another, so the
traffic is replayed through the policy with every limit **observing, not
enforcing**: each limit hit goes to the memory store with no maximum (nothing
can be over it, so no limit refuses a request and each key's measure is the
traffic's own, not one capped by the policy). Stateless rules still decide as
usual, and a request they refuse is not charged to `record admitted` limits,
exactly as in production.

What is observed is a set of *series*: an item (a limit or a measure), a key,
and the item's value for that key over time: for a limit the sliding-window
`used` the store reports for each hit, for a measure the value its decision
entry carries when it applied. Only each key's peak is kept, grouped by the
threshold in force (a limit's maximum for that request: a maximum that depends
on the request, e.g. per tier, gives one group per distinct value; a measure's
thresholds are the constants rules compare it with, found in the checked AST).
`summarise` turns the peaks into distributions, counts of keys over and near
each threshold, a suggested threshold that refuses at most a chosen share of
keys, and warnings.

Why the suggestion holds once enforced: with limits enforced, a refused request
is charged to no `record admitted` limit, and `record attempts` limits are
charged alike in both runs, so every key's value under enforcement is at most
its observed value. A key whose observed peak stays at or under a maximum is
therefore never refused by it.
"""

from __future__ import annotations

import heapq
import math
import sys
import time
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterable, Sequence

import orjson

from dsl import ast as A
from dsl.parser import parse_number
from policy_engine.context import Context
from policy_engine.decision import measure_rows
from policy_engine.policyset import PolicySet
from policy_engine.replay import LineError, ReplayStats, SyncReplayer, limit_key_texts, read_traffic
from policy_engine.state.base import Hit, HitResult, LimitSpec, Store, SyncStore
from policy_engine.state.memory import MemoryStore

OBSERVE_MAXIMUM = sys.float_info.max  # what every limit hit is sent with: nothing exceeds it
MAX_THRESHOLD_GROUPS = 16  # distinct maxima per item reported one by one; beyond, as ratios
NEAR = 0.8  # "within 20% below the maximum"
DEFAULT_REFUSE_SHARE = 0.001
TOP_KEYS = 5
QUANTILES: tuple[tuple[str, float], ...] = (  # label, share of keys allowed above
    ("max", 0.0),
    ("p99.9", 0.001),
    ("p99", 0.01),
    ("p90", 0.1),
    ("median", 0.5),
)
BENIGN, CAMPAIGN = 1, 2  # bits of a key's truth: benign, campaign or both (mixed)
TRUTH_CLASSES = {"benign": BENIGN, "campaign": CAMPAIGN, "mixed": BENIGN | CAMPAIGN}


class CalibrationInputError(ValueError):
    """An input line is invalid: the message names the file and line."""


# ------------------------------------------------------------------ observe
@dataclass(slots=True)
class Series:
    """Everything observed for one item: per threshold, each key's peak value."""

    item: str
    kind: str  # "limit" or "measure"
    groups: dict[float | None, dict[str, float]] = field(default_factory=dict)  # threshold -> key -> peak
    varied: dict[str, float] = field(default_factory=dict)  # key -> peak value/threshold, past the group cap
    varied_peaks: dict[str, float] = field(default_factory=dict)  # the same keys' peak values
    truth: dict[str, int] = field(default_factory=dict)  # key -> BENIGN|CAMPAIGN bits (with --truth)
    untracked: int = 0  # observations of new keys past the key bound, dropped


class Observer:
    """Keeps each key's peak per series, bounded to `max_keys` (series, threshold, key) entries in all."""

    def __init__(self, series: Iterable[Series], max_keys: int, with_truth: bool) -> None:
        self.series = {s.item: s for s in series}
        self.max_keys = max_keys
        self.with_truth = with_truth
        self.tracked = 0
        self.bit = 0  # truth bit of the request being replayed

    def observe(self, item: str, key: str, value: float, threshold: float | None) -> None:
        s = self.series[item]
        if threshold is not None and threshold not in s.groups and len(s.groups) >= MAX_THRESHOLD_GROUPS:
            peaks = s.varied
            if value > s.varied_peaks.get(key, -math.inf) and (key in peaks or self.tracked < self.max_keys):
                s.varied_peaks[key] = value
            value = value / threshold if threshold > 0 else (math.inf if value > 0 else 0.0)
        else:
            peaks = s.groups.get(threshold)  # type: ignore[assignment]
            if peaks is None:
                peaks = s.groups[threshold] = {}
        old = peaks.get(key)
        if old is None:
            if self.tracked >= self.max_keys:
                s.untracked += 1
                return
            self.tracked += 1
            peaks[key] = value
        elif value > old:
            peaks[key] = value
        if self.with_truth:
            s.truth[key] = s.truth.get(key, 0) | self.bit


class ObservingStore(Store):
    """A memory store behind which every limit observes and none enforces.

    Each limit hit is sent with no maximum and `enforce=False`, so the store
    charges it as it would any admitted request; the observer gets the value
    the store reports against the maximum the policy asked for. Hits of other
    items (measures, which carry no maximum) pass through untouched. Hits are
    built fresh for every request, so changing them in place is safe; the
    engine then sees the same unreachable maximum and never marks a limit over
    (a `block key` limit included)."""

    backend = MemoryStore.backend

    def __init__(self, inner: MemoryStore, observer: Observer, limits: Iterable[str]) -> None:
        self.inner = inner
        self.observer = observer
        self.limits = frozenset(limits)
        self.reconcile_sync = inner.reconcile_sync

    def as_sync(self) -> SyncStore:
        return self

    def acquire_sync(
        self, hits: Sequence[Hit], now: float, *, admitted: bool = True, request_id: str | None = None
    ) -> list[HitResult]:
        asked: list[float | None] = []
        for h in hits:
            if h.spec.id in self.limits:
                asked.append(h.maximum)
                h.maximum, h.enforce = OBSERVE_MAXIMUM, False
            else:
                asked.append(None)
        results = self.inner.acquire_sync(hits, now, admitted=admitted, request_id=request_id)
        observe = self.observer.observe
        for h, mx, r in zip(hits, asked, results):
            if mx is not None and r.error is None:
                observe(h.spec.id, h.key, r.used / h.spec.scale, float(mx) / h.spec.scale)
        return results

    async def acquire(
        self, hits: Sequence[Hit], now: float, *, admitted: bool = True, request_id: str | None = None
    ) -> list[HitResult]:
        return self.acquire_sync(hits, now, admitted=admitted, request_id=request_id)

    async def reconcile(self, request_id: str, actual: dict[str, float], now: float) -> bool:
        return bool(self.reconcile_sync(request_id, actual, now))

    async def close(self) -> None:
        await self.inner.close()


# -------------------------------------------------------------------- truth
def load_truth(path: Path) -> dict[str, bool]:
    """request id -> is campaign traffic, from a `policyctl simulate --truth` file."""
    out: dict[str, bool] = {}
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError as e:
                raise CalibrationInputError(f"{path}:{n}: not JSON ({e})") from None
            rid = obj.get("request_id") if isinstance(obj, dict) else None
            flag = obj.get("is_campaign") if isinstance(obj, dict) else None
            if not isinstance(rid, str) or not isinstance(flag, bool):
                raise CalibrationInputError(
                    f"{path}:{n}: expected an object with a string `request_id` and a boolean `is_campaign`"
                )
            if rid in out:
                raise CalibrationInputError(f"{path}:{n}: request {rid!r} appears twice")
            out[rid] = flag
    return out


# ---------------------------------------------------------------------- run
@dataclass
class ItemInfo:
    """What the report says about an item besides its numbers."""

    item: str
    kind: str  # "limit" | "measure"
    measure: str  # count | sum | distinct
    key: str  # the key expression as written
    window: float  # seconds
    effect: str | None = None  # limits: allow... deny
    calendar: str | None = None  # a calendar window, as written (`calendar month in "UTC"`)
    shadow: bool = False
    record: str = "admitted"
    thresholds: list[RuleThreshold] = field(default_factory=list)  # measures: constants rules compare them with
    unreported: list[str] = field(default_factory=list)  # measures: comparisons not reported, why

    @property
    def blocking(self) -> bool:
        return self.effect in ("throttle", "deny")

    @property
    def integral(self) -> bool:
        return self.measure in ("count", "distinct")


@dataclass
class CalibrationRun:
    policy: PolicySet
    traffic: str
    stats: ReplayStats
    items: list[ItemInfo]
    series: dict[str, Series]
    with_truth: bool
    untracked: int = 0


@dataclass
class RunOptions:
    truth: dict[str, bool] | None = None
    truth_name: str = "the truth file"
    skip_invalid: bool = False
    on_error: Callable[[LineError], None] | None = None
    progress: Callable[[int], None] | None = None
    max_keys: int = 3_000_000  # as the memory store's bound


@dataclass(frozen=True)
class RuleThreshold:
    """`measures.NAME > VALUE` (or >=) in a rule's condition, outside `not` and `unless`."""

    rule: str
    op: str  # ">" or ">="
    value: float
    effect: str
    shadow: bool
    alone: bool  # the comparison is the whole condition; else the rule also needs others
    text: str = ""  # the comparison as written

    @property
    def blocking(self) -> bool:
        return self.effect in ("throttle", "deny")

    @property
    def source(self) -> str:
        return f"rule {self.rule}"


_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}


def measure_items(policy: PolicySet) -> list[ItemInfo]:
    compiled = policy.compiled.measures
    if not compiled:
        return []
    checked = policy.checked
    keys = {m.name: ", ".join(e.span.text for e in m.key) for m in checked.measures}
    thresholds = _measure_comparisons(policy)
    kinds = {
        b.name: kind
        for kind, blocks in (("rule", checked.rules), ("limit", checked.limits), ("measure", checked.measures))
        for b in blocks
    }
    out = []
    for m in compiled:
        found = thresholds.get(m.id, [])
        reported = {t.rule for t in found}
        readers = [
            f"{kinds.get(b, '?')} {b}"
            for b, reads in checked.measure_reads.items()
            if m.id in reads and b not in reported
        ]
        out.append(
            ItemInfo(
                item=m.id,
                kind="measure",
                measure=m.kind_label,
                key=keys.get(m.id, "?"),
                window=m.spec.window,
                record="attempts",
                thresholds=found,
                unreported=readers,
                calendar=_calendar_text(m.spec),
            )
        )
    return out


def _measure_comparisons(policy: PolicySet) -> dict[str, list[RuleThreshold]]:
    """The constants rules compare measures with, read from the checked AST: in a
    rule's condition, through `and`, `or` and `let` names (not under `not`, `if`,
    `unless` or a call), `measures.NAME` (or `measures.NAME ?? N`) compared with
    a number literal, the measure above it. Other reads are not reported."""
    found: dict[str, list[RuleThreshold]] = {}
    lets = policy.checked.lets
    for rule in policy.checked.rules:
        stack: list[tuple[A.Expr, bool]] = [(rule.condition, True)]  # (expression, the whole condition)
        seen_lets: set[str] = set()
        while stack:
            e, alone = stack.pop()
            if isinstance(e, A.Binary) and e.op in ("and", "or"):
                stack += [(e.right, False), (e.left, False)]
            elif isinstance(e, A.Name) and e.id in lets and e.id not in seen_lets and lets[e.id].expr is not None:
                seen_lets.add(e.id)
                stack.append((lets[e.id].expr, alone))  # type: ignore[arg-type]
            elif isinstance(e, A.Binary) and e.op in _FLIP:
                t = _threshold(e, rule.name, rule.effect, rule.shadow, alone)
                if t is not None:
                    found.setdefault(t[0], []).append(t[1])
    return found


def _threshold(e: A.Binary, rule: str, effect: str, shadow: bool, alone: bool) -> tuple[str, RuleThreshold] | None:
    """(measure, threshold) for `measures.M > N`, `N < measures.M` and the like."""
    for m_side, other, op in ((e.left, e.right, e.op), (e.right, e.left, _FLIP[e.op])):
        name = _measure_read(m_side)
        if name is not None and op in (">", ">=") and isinstance(other, A.Literal) and other.kind in ("int", "float"):
            return name, RuleThreshold(rule, op, float(other.value), effect, shadow, alone, e.span.text)
    return None


def _measure_read(e: A.Expr) -> str | None:
    if isinstance(e, A.Binary) and e.op == "??" and isinstance(e.right, A.Literal):
        e = e.left
    if isinstance(e, A.Attr) and isinstance(e.obj, A.Name) and e.obj.id == "measures":
        return e.name
    return None


def limit_items(policy: PolicySet) -> list[ItemInfo]:
    keys = limit_key_texts(policy)
    return [
        ItemInfo(
            item=lim.id,
            kind="limit",
            measure=lim.spec.kind.value,
            key=keys.get(lim.id, "?"),
            window=lim.spec.window,
            effect=lim.effect.label,
            shadow=lim.shadow,
            record=lim.spec.record.value,
            calendar=_calendar_text(lim.spec),
        )
        for lim in policy.limits
    ]


def _calendar_text(spec: LimitSpec) -> str | None:
    return str(spec.calendar) if spec.calendar is not None else None


def run(policy: PolicySet, traffic: Path, opts: RunOptions | None = None) -> CalibrationRun:
    """Replay `traffic` with every limit observed, not enforced. Raises
    CalibrationInputError at the first invalid line (unless skip_invalid) or
    request without a truth line."""
    opts = opts or RunOptions()
    items = limit_items(policy) + measure_items(policy)
    truth = opts.truth
    observer = Observer((Series(i.item, i.kind) for i in items), opts.max_keys, truth is not None)
    store = ObservingStore(MemoryStore(max_keys=opts.max_keys), observer, (i.item for i in items if i.kind == "limit"))
    rp = SyncReplayer(policy, store)
    stats = ReplayStats.for_policy(policy, "memory")
    t0 = time.perf_counter()
    for n, item in read_traffic(traffic, opts.progress):
        if isinstance(item, LineError):
            if not opts.skip_invalid:
                raise CalibrationInputError(
                    f"{traffic}:{item.line}: invalid request context: " + item.message.replace("\n", "; ")
                )
            if opts.on_error is not None:
                opts.on_error(item)
            stats.add_error(item)
            continue
        if truth is not None:
            observer.bit = _truth_bit(truth, item, f"{traffic}:{n}", opts.truth_name)
        d, now = rp.step(item)
        stats.add(item, d, now)
        for measure, key, value, charged, _ in measure_rows(d.measures):  # what it counted, this request included
            if charged and value is not None:
                observer.observe(measure, key, value, None)
    stats.seconds = time.perf_counter() - t0
    stats.out_of_order, stats.usage_reconciled = rp.out_of_order, rp.usage_reconciled
    return CalibrationRun(
        policy,
        traffic.name,
        stats,
        items,
        observer.series,
        truth is not None,
        sum(s.untracked for s in observer.series.values()),
    )


def _truth_bit(truth: dict[str, bool], ctx: Context, where: str, truth_name: str) -> int:
    flag = truth.get(ctx.request_id) if ctx.request_id is not None else None
    if flag is None:
        raise CalibrationInputError(f"{where}: request {ctx.request_id!r} has no line in {truth_name}")
    return CAMPAIGN if flag else BENIGN


# ---------------------------------------------------------------- summarise
def value_above(ordered: Sequence[float], share: float) -> float:
    """The smallest observed value that at most `share` of the values exceed
    (nearest rank on ascending `ordered`, which must not be empty)."""
    n = len(ordered)
    allowed = min(n - 1, math.floor(share * n + 1e-9))
    return ordered[n - 1 - allowed]


def distribution(ordered: Sequence[float]) -> dict[str, float]:
    return {label: value_above(ordered, share) for label, share in QUANTILES}


def rounded(v: float) -> float:
    """A value as the JSON output writes it: sliding-window estimates to 4 decimals."""
    return v if not math.isfinite(v) else float(round(v, 4))


def readable_ceiling(v: float, integral: bool) -> float:
    """The smallest number with two significant digits at or above `v` (whole for
    counts): 1234 -> 1300, 7.3 -> 7.3 (8 when integral), 149_001 -> 150_000."""
    if v <= 0:
        return 0.0
    e = math.floor(math.log10(v))
    step = 10.0 ** (e - 1)
    if integral and step < 1:
        step = 1.0
    digits = max(0, 1 - e) if step < 1 else 0
    out = round(math.ceil(v / step) * step, digits)
    while out < v:  # float rounding must never take a ceiling below the value
        out = round(out + step, digits)
    return float(out)


def literal(v: float) -> str:
    """`v` as a policy number literal, with a k/M/G suffix when that reads better."""
    if not math.isfinite(v):
        return str(v)
    for mult, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (10_000, "k")):
        if abs(v) >= mult:
            base = 1000 if suffix == "k" else mult
            mantissa = f"{v / base:.6g}"
            if len(mantissa.replace(".", "").lstrip("-")) <= 3 and parse_number(mantissa + suffix) == v:
                return mantissa + suffix
    return f"{int(v)}" if float(v).is_integer() else f"{v:.6g}"


@dataclass(frozen=True)
class Threshold:
    """What a group of per-key peaks is compared with."""

    value: float
    op: str = ">"  # the item fires when its value `op` the threshold: ">" (a limit's max) or ">="
    source: str = "max"  # "max": the limit's own maximum; "rule NAME": a rule comparing a measure
    blocking: bool = False  # exceeding it throttles or denies
    alone: bool = True  # False: the rule also needs other conditions, so counts are upper bounds

    def fires(self, v: float) -> bool:
        return v > self.value if self.op == ">" else v >= self.value

    @property
    def label(self) -> str:
        if self.source == "max":
            return f"max {literal(self.value)}"
        return f"{self.op} {literal(self.value)}"


@dataclass
class GroupView:
    """One threshold of an item against the per-key peaks observed under it."""

    threshold: Threshold | None  # None: no threshold (a measure's observed distribution)
    keys: int
    peaks: dict[str, float]
    over: int = 0  # keys whose peak exceeds the threshold (reaches it, for >=)
    near: int = 0  # keys within 20% below it
    suggested: float | None = None
    suggested_over: int = 0  # keys whose peak exceeds the suggestion
    warnings: list[str] = field(default_factory=list)
    top: list[tuple[str, float]] = field(default_factory=list)
    by_truth: dict[str, dict[str, Any]] | None = None
    ratio: bool = False  # maxima varied: values are peak/max, the suggestion a factor

    def to_json(self, refuse_share: float) -> dict[str, Any]:
        t = self.threshold
        out: dict[str, Any] = {
            "threshold": None if t is None or self.ratio else t.value,
            "op": None if t is None else t.op,
            "source": "observed" if t is None else t.source,
            "blocking": t is not None and t.blocking,
            "alone": t is None or t.alone,
            "keys": self.keys,
            "peaks": self.peaks,
            "over": self.over,
            "over_share": _ratio(self.over, self.keys),
            "near": self.near,
            "near_share": _ratio(self.near, self.keys),
            "suggested": self.suggested,
            "suggested_literal": literal(self.suggested) if self.suggested is not None else None,
            "suggested_over": self.suggested_over,
            "suggested_over_share": _ratio(self.suggested_over, self.keys),
            "refuse_share": refuse_share,
            "warnings": self.warnings,
            "top_keys": [{"key": k, "peak": v} for k, v in self.top],
        }
        if self.ratio:
            out["values"] = "peak/max"
        if self.by_truth is not None:
            out["truth"] = self.by_truth
        return out


@dataclass
class ItemView:
    info: ItemInfo
    keys: int
    peaks: dict[str, float] | None  # over all keys (a key's largest peak under any threshold)
    groups: list[GroupView]
    untracked: int = 0

    @property
    def warnings(self) -> list[str]:
        return [w for g in self.groups for w in g.warnings]

    def to_json(self, refuse_share: float) -> dict[str, Any]:
        i = self.info
        return {
            "item": i.item,
            "kind": i.kind,
            "measure": i.measure,
            "key": i.key,
            "window_seconds": i.window,
            **({"calendar": i.calendar} if i.calendar else {}),
            "effect": i.effect,
            "shadow": i.shadow,
            "record": i.record,
            "keys": self.keys,
            "untracked_observations": self.untracked,
            "peaks": self.peaks,
            "groups": [g.to_json(refuse_share) for g in self.groups],
            "warnings": self.warnings,
            "not_reported": i.unreported,
        }


def _ratio(a: int, b: int) -> float:
    return a / b if b else 0.0


def pct(a: float, b: float) -> str:
    if not b:
        return "-"
    p = 100.0 * a / b
    return f"{p:.1f}%" if p >= 0.1 or p == 0 else f"{p:.2g}%"


def summarise_item(info: ItemInfo, s: Series, refuse_share: float, with_truth: bool) -> ItemView:
    truth = s.truth if with_truth else None
    if info.kind == "measure":  # one distribution, compared with each constant a rule compares it with
        peaks = s.groups.get(None, {})
        groups = [_group(info, None, peaks, truth, refuse_share)] if peaks else []
        groups += [
            _group(info, Threshold(t.value, t.op, t.source, t.blocking, t.alone), peaks, truth, refuse_share)
            for t in info.thresholds
            if peaks
        ]
        return ItemView(info, len(peaks), groups[0].peaks if groups else None, groups, s.untracked)
    groups = [
        _group(info, Threshold(thr, blocking=info.blocking), peaks, truth, refuse_share)
        for thr, peaks in sorted(s.groups.items(), key=lambda kv: kv[0] or 0.0)
        if thr is not None
    ]
    if s.varied:
        groups.append(_group(info, Threshold(1.0, blocking=info.blocking), s.varied, truth, refuse_share, ratio=True))
    all_peaks: dict[str, float] | None
    if len(s.groups) == 1 and not s.varied:
        (only,) = s.groups.values()
        keys, all_peaks = len(only), groups[0].peaks
    else:
        merged: dict[str, float] = {}
        for g in (*s.groups.values(), s.varied_peaks):
            for k, v in g.items():
                if v > merged.get(k, -math.inf):
                    merged[k] = v
        keys = len(merged)
        all_peaks = distribution(sorted(merged.values())) if merged else None
    return ItemView(info, keys, all_peaks if keys else None, groups, s.untracked)


def _group(
    info: ItemInfo,
    t: Threshold | None,
    peaks: dict[str, float],
    truth: dict[str, int] | None,
    refuse_share: float,
    ratio: bool = False,
) -> GroupView:
    ordered = sorted(peaks.values())
    g = GroupView(threshold=t, keys=len(ordered), peaks=distribution(ordered), ratio=ratio)
    g.top = heapq.nlargest(TOP_KEYS, peaks.items(), key=lambda kv: (kv[1], kv[0]))
    if truth is not None:
        g.by_truth = {}
        for label, bits in TRUTH_CLASSES.items():
            vals = sorted(v for k, v in peaks.items() if truth.get(k) == bits)
            entry: dict[str, Any] = {"keys": len(vals), "peaks": distribution(vals) if vals else None}
            if t is not None:
                entry["over"], entry["near"] = _over_near(vals, t)
            g.by_truth[label] = entry
    if t is not None:
        g.over, g.near = _over_near(ordered, t)
        g.suggested = _suggest(ordered, t, refuse_share, info.integral and not ratio)
        g.suggested_over = _over_near(ordered, Threshold(g.suggested, t.op))[0]
        g.warnings = _warnings(info, g, t, refuse_share)
    return g


def _suggest(ordered: Sequence[float], t: Threshold, refuse_share: float, integral: bool) -> float:
    """The readable threshold that at most `refuse_share` of the keys would fire on."""
    q = value_above(ordered, refuse_share)
    s = readable_ceiling(q, integral)
    if t.op == ">=" and s <= q:  # `>=` fires at the threshold itself: go strictly above
        s = readable_ceiling(math.nextafter(q, math.inf), integral)
    return s


def _over_near(ordered: Sequence[float], t: Threshold) -> tuple[int, int]:
    """Keys the threshold fires on, and keys within 20% below it (NEAR x threshold < peak, not firing)."""
    not_firing = bisect_right(ordered, t.value) if t.op == ">" else bisect_left(ordered, t.value)
    return len(ordered) - not_firing, not_firing - bisect_right(ordered, NEAR * t.value)


def _warnings(info: ItemInfo, g: GroupView, t: Threshold, refuse_share: float) -> list[str]:
    """A blocking threshold that sits inside the body of the traffic."""
    if not t.blocking or not g.keys:
        return []
    if g.ratio:
        what = f"{info.item}: its varying maximum"
    elif t.source == "max":
        what = f"{info.item}: max {literal(t.value)}"
    else:
        what = f"{t.source}: measures.{info.item} {t.op} {literal(t.value)}"
    out = []
    if g.over > refuse_share * g.keys:
        notes = [pct(g.over, g.keys)]
        if g.by_truth is not None:
            notes += [f"{e['over']:,} {label}" for label, e in g.by_truth.items() if e["over"]]
        if not t.alone:
            notes.append("the rule has other conditions too")
        out.append(
            f"{what} would refuse {'' if t.alone else 'up to '}{g.over:,} of {g.keys:,} keys "
            f"({', '.join(notes)}), more than --refuse-share {refuse_share:g}"
        )
    if t.fires(g.peaks["p99"]):
        p99 = f"{g.peaks['p99']:.3g}x the maximum" if g.ratio else _num(g.peaks["p99"])
        out.append(f"{what} is {'at or ' if t.op == '>=' else ''}below the p99 of per-key peaks ({p99})")
    if out and g.suggested is not None:
        sug = f"x{literal(g.suggested)}" if g.ratio else literal(g.suggested)
        out[-1] += f"; suggested {sug}"
    return out


def _num(v: float) -> str:
    if float(v).is_integer():
        return f"{int(v):,}"
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"


@dataclass
class Calibration:
    """The numbers `policyctl calibrate` prints, for every item."""

    run: CalibrationRun
    refuse_share: float
    items: list[ItemView]

    @property
    def warnings(self) -> list[str]:
        return [w for i in self.items for w in i.warnings]

    def to_json(self) -> dict[str, Any]:
        st = self.run.stats
        return {
            "policy": {"name": self.run.policy.name, "version": self.run.policy.version},
            "traffic": self.run.traffic,
            "mode": "limits observed, not enforced; stateless rules decided as usual",
            "requests": st.requests,
            "invalid_lines": st.invalid,
            "out_of_order": st.out_of_order,
            "usage_reconciled": st.usage_reconciled,
            "refused_by_rules": st.blocked,
            "effects": st.effect_counts(),
            "first_ts": st.first_ts,
            "last_ts": st.last_ts,
            "refuse_share": self.refuse_share,
            "truth": self.run.with_truth,
            "untracked_observations": self.run.untracked,
            "items": [i.to_json(self.refuse_share) for i in self.items],
            "warnings": self.warnings,
        }


def summarise(run: CalibrationRun, refuse_share: float = DEFAULT_REFUSE_SHARE) -> Calibration:
    if not 0 <= refuse_share < 1:
        raise ValueError(f"refuse share must be in [0, 1), got {refuse_share:g}")
    views = [summarise_item(i, run.series[i.item], refuse_share, run.with_truth) for i in run.items]
    return Calibration(run, refuse_share, views)
