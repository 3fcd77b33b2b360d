"""Replay recorded traffic through a policy on a simulated clock.

One request context per line, in time order. The clock is `request.ts`: each
request is decided at its own timestamp, and its `usage` (what the call really
cost) is reported right after it when the request was admitted (allow or flag),
as a gateway would. The memory store runs through the engine's synchronous API
(no event loop per request); Redis runs one request at a time on one loop, so a
replay is deterministic on either store.

`ReplayStats` gathers what the summary table and the HTML report show: effects
over time, rules that fired, the most blocked keys and how close each limit came
to its maximum.
"""

from __future__ import annotations

import asyncio

import gc
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from collections.abc import Callable, Iterator, Mapping, Sequence

import orjson
from pydantic import ValidationError

from policy_engine.compiler import DERIVED, LimitInfo, MeasureInfo
from policy_engine.context import Context, describe_validation_error
from policy_engine.decision import Decision, Effect, LimitState, MeasureState, measure_rows, shown_number
from policy_engine.engine import Engine, receipt_ids, usage_costs
from policy_engine.ingress.usage import TOKEN_FIELDS, Usage
from policy_engine.policyset import PolicySet
from policy_engine.state.base import Store

_ASN, _COUNTRY = DERIVED["client_asn"], DERIVED["client_country"]

EFFECTS: tuple[str, ...] = tuple(e.label for e in Effect)  # allow, flag, throttle, deny, by strength
REPLAY_STORE_DEADLINE = 5.0  # seconds: a replay wants every answer, not a fast fail-open
PROGRESS_EVERY = 4096  # lines between progress callbacks


class ReplayAborted(Exception):
    """`--strict` met an invalid line."""


@dataclass(frozen=True, slots=True)
class LineError:
    line: int  # 1-based line number in the traffic file
    message: str  # one line per problem, each naming the JSON path at fault


# --------------------------------------------------------------------- input
def parse_line(raw: bytes) -> Context:
    """One traffic line as a Context; ValueError with a readable message if invalid."""
    try:
        ctx = Context.from_json(raw)
    except ValidationError as e:
        raise ValueError(describe_validation_error(e)) from None
    if ctx.request_ts is None:
        raise ValueError("$.request.ts: required by replay (it is the simulated clock)")
    return ctx


def read_traffic(
    path: Path, progress: Callable[[int], None] | None = None
) -> Iterator[tuple[int, Context | LineError]]:
    """(line number, Context or LineError) for each non-blank line; `progress`
    gets the bytes read so far every PROGRESS_EVERY lines."""
    done = 0
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            done += len(raw)
            if progress is not None and n % PROGRESS_EVERY == 0:
                progress(done)
            if raw[0] != 0x7B and not raw.strip():  # a line opening with "{" is not blank: skip the copy
                continue
            try:
                yield n, parse_line(raw)
            except ValueError as e:
                yield n, LineError(n, str(e))
    if progress is not None:
        progress(done)


# -------------------------------------------------------------------- output
def compact(d: Decision) -> dict[str, Any]:
    """The decision line written by replay: what scoring and diffing need, and
    each limit consulted as {key, used, max} (plus `over`/`error` when set).
    Written inline: it runs once per replayed request."""
    out: dict[str, Any] = {
        "request_id": d.request_id,
        "effect": EFFECTS[d.effect],
        "status": d.status,
        "reason": d.reason,
        "rules": d.rules,
    }
    if d.shadow:
        out["shadow_rules"] = d.shadow_rules
        # What the decision would have been had its shadow rules been enforced:
        # how an operator scores a rule before enforcing it.
        strongest = max(d.effect, *(m.effect for m in d.shadow))
        if strongest != d.effect:
            out["shadow_effect"] = EFFECTS[strongest]
    if d.retry_after is not None:
        out["retry_after"] = round(d.retry_after, 3)
    if d.limits:
        lims: dict[str, Any] = {}
        for s in d.limits:
            e: dict[str, Any] = {"key": s.key, "used": shown_number(s.used), "max": shown_number(s.max)}
            if s.over:
                e["over"] = True
            if s.error:
                e["error"] = s.error
            lims[s.limit] = e
        out["limits"] = lims
    if d.measures:
        out["measures"] = _measure_entries(d.measures)
    return out


def _measure_entries(measures: Sequence[MeasureState]) -> dict[str, Any]:
    """Each measure touched as {key, value}, plus `read: true` when it did not apply and
    `error` when set; read from the store's answers, without building MeasureStates."""
    out: dict[str, Any] = {}
    for measure, key, v, charged, error in measure_rows(measures):
        # shown_number(v), inline: ~25 measures a line, the call was a tenth of replay's output
        e: dict[str, Any] = {
            "key": key,
            "value": v if v is None or type(v) is int else int(v) if v.is_integer() else round(v, 6),
        }
        if not charged:
            e["read"] = True
        if error:
            e["error"] = error
        out[measure] = e
    return out


def decision_line(d: Decision) -> bytes:
    return orjson.dumps(compact(d), option=orjson.OPT_APPEND_NEWLINE)


# --------------------------------------------------------------------- stats
@dataclass(slots=True)
class LimitPeak:
    ratio: float = -1.0  # peak used/max seen
    used: float = 0.0
    max: float = 0.0
    key: str = ""
    ts: float = 0.0
    over: int = 0  # decisions in which this limit was over its max


@dataclass
class ReplayStats:
    """What a replay saw, gathered one decision at a time (cheaply: a few dict
    updates per request) and rendered by the summary table and the HTML report."""

    policy_name: str
    policy_version: str
    rule_effect: dict[str, str]  # rule or limit id -> its effect label
    rule_kind: dict[str, str]  # rule or limit id -> "rule" or the limit's kind
    limit_key_text: dict[str, str]  # limit id -> its key expression as written
    store: str = "memory"
    requests: int = 0
    invalid: int = 0
    out_of_order: int = 0
    usage_reconciled: int = 0
    store_errors: int = 0  # limit checks the store could not answer
    first_ts: float | None = None
    last_ts: float | None = None
    seconds: float = 0.0  # wall time of the replay
    effects: list[int] = field(default_factory=lambda: [0, 0, 0, 0])  # by Effect value
    fired: Counter[str] = field(default_factory=Counter)  # enforced rule/limit id -> decisions
    shadow_fired: Counter[str] = field(default_factory=Counter)
    minutes: dict[int, list[int]] = field(default_factory=dict)  # epoch minute -> effects
    minute_rules: dict[int, Counter[str]] = field(default_factory=dict)
    blocked_accounts: Counter[str] = field(default_factory=Counter)
    blocked_asns: Counter[str] = field(default_factory=Counter)  # the ASN policies read: sent or derived
    blocked_countries: Counter[str] = field(default_factory=Counter)  # likewise the country
    blocked_limit_keys: Counter[tuple[str, str]] = field(default_factory=Counter)
    peaks: dict[str, LimitPeak] = field(default_factory=dict)
    errors: list[LineError] = field(default_factory=list)  # the first MAX_ERRORS_KEPT
    blocking_limits: frozenset[str] = frozenset()  # limits that throttle or deny
    _minute: int = field(default=-1, repr=False)  # the minute `add` last saw
    _row: list[int] = field(default_factory=list, repr=False)
    _rules: Counter[str] = field(default_factory=Counter, repr=False)

    MAX_ERRORS_KEPT = 100

    @classmethod
    def for_policy(cls, policy: PolicySet, store: str = "memory") -> ReplayStats:
        rule_effect = {r.id: r.effect.label for r in policy.rules}
        rule_kind = {r.id: "rule" for r in policy.rules}
        for lim in policy.limits:
            rule_effect[lim.id] = lim.effect.label
            rule_kind[lim.id] = f"limit ({lim.spec.kind.value})"
        return cls(
            policy_name=policy.name,
            policy_version=policy.version,
            rule_effect=rule_effect,
            rule_kind=rule_kind,
            limit_key_text=limit_key_texts(policy),
            store=store,
            peaks={lim.id: LimitPeak() for lim in policy.limits},
            blocking_limits=frozenset(lim.id for lim in policy.limits if lim.effect >= Effect.THROTTLE),
        )

    def add_error(self, err: LineError) -> None:
        self.invalid += 1
        if len(self.errors) < self.MAX_ERRORS_KEPT:
            self.errors.append(err)

    def add(self, ctx: Context, d: Decision, now: float) -> None:
        self.requests += 1
        if self.first_ts is None:
            self.first_ts = now
        self.last_ts = now
        eff = d.effect
        self.effects[eff] += 1
        minute = int(now // 60)
        if minute != self._minute:  # traffic is in time order: look the minute up once
            row = self.minutes.get(minute)
            if row is None:
                row = self.minutes[minute] = [0, 0, 0, 0]
                self.minute_rules[minute] = Counter()
            self._minute, self._row, self._rules = minute, row, self.minute_rules[minute]
        self._row[eff] += 1
        if d.rules:
            self.fired.update(d.rules)
            self._rules.update(d.rules)
        if d.shadow_rules:
            self.shadow_fired.update(d.shadow_rules)
        if d.limits:
            self._limits(d.limits, now)
        if eff >= Effect.THROTTLE:
            self._blocked(ctx, d)

    def _limits(self, states: list[LimitState], now: float) -> None:
        peaks = self.peaks
        for s in states:
            p = peaks[s.limit]
            if s.error is not None:
                self.store_errors += 1
            if s.over:
                p.over += 1
            if s.max > 0:
                r = s.used / s.max
                if r > p.ratio:
                    p.ratio, p.used, p.max, p.key, p.ts = r, s.used, s.max, s.key, now

    def _blocked(self, ctx: Context, d: Decision) -> None:
        self.blocked_accounts[ctx.account_id or "-"] += 1
        # As a policy reads them: the gateway's value, else derived from client.ip
        # (cached on the context when the policy already looked it up).
        asn, country = _ASN(ctx), _COUNTRY(ctx)
        self.blocked_asns[str(asn) if asn is not None else "-"] += 1
        self.blocked_countries[country if country is not None else "-"] += 1
        fired, blocking = d.rules, self.blocking_limits
        for s in d.limits:
            if s.over and s.limit in blocking and s.limit in fired:
                self.blocked_limit_keys[(s.limit, s.key)] += 1

    # ------------------------------------------------------------- read back
    @property
    def blocked(self) -> int:
        return self.effects[Effect.THROTTLE] + self.effects[Effect.DENY]

    def effect_counts(self) -> dict[str, int]:
        return {label: self.effects[i] for i, label in enumerate(EFFECTS)}

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def fired_rows(self) -> list[tuple[str, str, str, int]]:
        """(id, kind, effect, requests) of each rule or limit that fired, most first;
        shadow matches after the enforced ones, their effect marked "(shadow)"."""
        rows = [
            (rid, self.rule_kind.get(rid, "?"), self.rule_effect.get(rid, "?"), c)
            for rid, c in self.fired.most_common()
        ]
        rows += [
            (rid, self.rule_kind.get(rid, "?"), f"{self.rule_effect.get(rid, '?')} (shadow)", c)
            for rid, c in self.shadow_fired.most_common()
        ]
        return rows


def share(count: float, total: float) -> str:
    """`count` as a percentage of `total`, as the summary and the report print it."""
    return f"{100.0 * count / total:.1f}%" if total else "-"


def top_counts(counter: Mapping[str, int], n: int) -> list[tuple[str, int]]:
    """The `n` largest counts, ties by key (stable output for the summary and the report)."""
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def limit_key_texts(policy: PolicySet) -> dict[str, str]:
    """Each limit's key expression as written in the policy, e.g. `account.id`."""
    return {lim.name: ", ".join(e.span.text for e in lim.key) for lim in policy.checked.limits}


# -------------------------------------------------------------------- replay
class _Replayer:
    """The simulated clock and the counters both replayers share."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.clock: float | None = None
        self.out_of_order = 0
        self.usage_reconciled = 0

    def tick(self, ctx: Context) -> float:
        ts: float = ctx.request_ts  # parse_line guarantees it
        clock = self.clock
        if clock is not None and ts < clock:
            # A simulated clock never runs backwards: the store's windows assume it.
            self.out_of_order += 1
            return clock
        self.clock = ts
        return ts


def _has_usage(ctx: Context) -> bool:
    return ctx.request_id is not None and any(getattr(ctx, f"usage_{f}") is not None for f in TOKEN_FIELDS)


def _usage(ctx: Context) -> Usage:
    """The usage a replayed request carries, as a gateway would report it."""
    return Usage(**{f: getattr(ctx, f"usage_{f}") for f in Usage.__dataclass_fields__})


def _served_model(ctx: Context) -> None:
    """A line's usage that names no model was served by the model it asked for."""
    if ctx.usage_model is None:
        ctx.usage_model = ctx.request_model


class SyncReplayer(_Replayer):
    """Decide and report one request at a time on a store with a sync API (memory)."""

    def __init__(self, policy: PolicySet, store: Store) -> None:
        sync = store.as_sync()
        if sync is None:
            raise TypeError(f"the {store.backend} store has no synchronous API: replay it with replay_async")
        super().__init__(Engine(policy, store, headers=False))  # decision lines carry no headers
        # What Engine.report_sync does, minus building a second Context per report:
        # a `usage` clause reads only usage.* fields (the checker enforces it),
        # which the replayed context already carries.
        items: tuple[LimitInfo | MeasureInfo, ...] = (*policy.limits, *policy.compiled.measures)
        self._usage = any(m.usage is not None for m in items)
        self._reconcile = sync.reconcile_sync
        self._measure_receipts = any(policy.compiled.measure_receipts)
        self._policy = policy

    def step(self, ctx: Context) -> tuple[Decision, float]:
        now = self.tick(ctx)
        d = self.engine.decide_sync(ctx, now)
        if self._usage and d.effect <= Effect.FLAG and _has_usage(ctx):
            _served_model(ctx)
            costs = usage_costs(self._policy, ctx)
            if not costs:
                return d, now
            if self._measure_receipts:  # measures keep their own receipts
                applied = any([self._reconcile(rid, costs, now) for rid in receipt_ids(self._policy, ctx.request_id)])
            else:
                applied = self._reconcile(ctx.request_id, costs, now)
            if applied:
                self.usage_reconciled += 1
        return d, now


class AsyncReplayer(_Replayer):
    """The same on a store reached over the network (Redis), awaited one request at a time."""

    def __init__(self, policy: PolicySet, store: Store) -> None:
        super().__init__(Engine(policy, store, store_deadline=REPLAY_STORE_DEADLINE, headers=False))

    async def step(self, ctx: Context) -> tuple[Decision, float]:
        now = self.tick(ctx)
        d = await self.engine.decide(ctx, now)
        if d.effect <= Effect.FLAG and _has_usage(ctx):
            _served_model(ctx)
            if await self.engine.report(ctx.request_id, _usage(ctx), now):
                self.usage_reconciled += 1
        return d, now


@dataclass
class ReplayOptions:
    strict: bool = False
    on_error: Callable[[LineError], None] | None = None  # told about every invalid line
    progress: Callable[[int], None] | None = None  # bytes read so far


def _handle_error(item: LineError, stats: ReplayStats, opts: ReplayOptions) -> None:
    stats.add_error(item)
    if opts.on_error is not None:
        opts.on_error(item)
    if opts.strict:
        raise ReplayAborted(f"line {item.line}: {item.message}")


class _GcPaused:
    """A replay allocates millions of short-lived objects and keeps few: the cyclic
    collector would scan the long-lived store state over and over for nothing."""

    def __enter__(self) -> None:
        self.was = gc.isenabled()
        gc.freeze()
        gc.disable()

    def __exit__(self, *exc: object) -> None:
        if self.was:
            gc.enable()
        gc.unfreeze()


def replay_memory(
    policy: PolicySet, traffic: Path, out: IO[bytes] | None, store: Store, opts: ReplayOptions | None = None
) -> ReplayStats:
    """Replay on a store with a synchronous API; decision lines go to `out`."""
    opts = opts or ReplayOptions()
    stats = ReplayStats.for_policy(policy, store.backend)
    rp = SyncReplayer(policy, store)
    write = out.write if out is not None else None
    add = stats.add
    t0 = time.perf_counter()
    with _GcPaused():
        for _, item in read_traffic(traffic, opts.progress):
            if isinstance(item, LineError):
                _handle_error(item, stats, opts)
                continue
            d, now = rp.step(item)
            if write is not None:
                write(decision_line(d))
            add(item, d, now)
    _finish(stats, rp, t0)
    return stats


async def replay_async(
    policy: PolicySet, traffic: Path, out: IO[bytes] | None, store: Store, opts: ReplayOptions | None = None
) -> ReplayStats:
    """Replay on any store, awaiting one request at a time (deterministic)."""
    opts = opts or ReplayOptions()
    stats = ReplayStats.for_policy(policy, store.backend)
    rp = AsyncReplayer(policy, store)
    t0 = time.perf_counter()
    for n, (_, item) in enumerate(read_traffic(traffic, opts.progress)):
        if isinstance(item, LineError):
            _handle_error(item, stats, opts)
            continue
        d, now = await rp.step(item)
        if out is not None:
            out.write(decision_line(d))
        stats.add(item, d, now)
        if n & 255 == 255:  # a store that answers without I/O never yields: let its background work run
            await asyncio.sleep(0)
    _finish(stats, rp, t0)
    return stats


def _finish(stats: ReplayStats, rp: _Replayer, t0: float) -> None:
    stats.seconds = time.perf_counter() - t0
    stats.out_of_order = rp.out_of_order
    stats.usage_reconciled = rp.usage_reconciled
