"""Evaluate one request: rules, then limits against a store, then one decision.

The engine works from the `PolicySet` it was handed when the request started,
so a reload never changes a policy in the middle of a request. Store calls have
a deadline; when the store fails or is late, each limit applies its fail mode.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from policy_engine.compiler import LimitInfo, MeasureInfo, RuleInfo
from policy_engine.context import Context
from policy_engine.decision import DEFAULT_STATUS, Decision, Effect, LimitState, MeasureStates, ShadowMatch
from policy_engine.ingress.answer import finish_headers
from policy_engine.ingress.usage import Usage
from policy_engine.policyset import PolicySet
from policy_engine.state.base import DEFAULT_DEADLINE, Hit, HitResult, Store, to_units


class Engine:
    """`headers=False` for a caller that sends no answer (replay, calibration): its decisions
    carry the headers their rules and limits declare, not the rate-limit, retry-after and
    flags headers an answer adds (built per decision, read by nobody there)."""

    def __init__(
        self, policy: PolicySet, store: Store, *, store_deadline: float = DEFAULT_DEADLINE, headers: bool = True
    ) -> None:
        self.policy = policy
        self.store = store
        self.store_deadline = store_deadline
        self.headers = headers
        # A store that answers without I/O (memory) is called directly: no task or timer.
        sync = store.as_sync()
        self.synchronous = sync is not None
        self._sync_acquire = sync.acquire_sync if sync is not None else None
        self._sync_reconcile = sync.reconcile_sync if sync is not None else None

    def swap(self, policy: PolicySet) -> None:
        """Atomically replace the policy; requests in flight keep the one they started with."""
        self.policy = policy

    # ------------------------------------------------------------------ decide
    async def decide(self, ctx: Context, now: float | None = None, *, explain: bool = False) -> Decision:
        policy = self.policy
        now = _clock(ctx, now)
        notes = policy.attributes.type(ctx) if ctx.attributes else None
        if policy.compiled.measure_levels:
            return await self._decide_measured(policy, ctx, now, explain, notes)
        plan = _Plan(policy, ctx, notes)
        results = await self._acquire(plan.hits, now, plan.admitted, ctx.request_id) if plan.hits else []
        return plan.finish(results, explain, self.headers)

    def decide_sync(self, ctx: Context, now: float | None = None, *, explain: bool = False) -> Decision:
        """Synchronous path for a store with a synchronous API (the memory store)."""
        if self._sync_acquire is None:
            raise TypeError(f"decide_sync needs a store with a synchronous API, not {self.store.backend}")
        policy = self.policy
        now = _clock(ctx, now)
        notes = policy.attributes.type(ctx) if ctx.attributes else None
        if policy.compiled.measure_levels:
            return self._decide_measured_sync(policy, ctx, now, explain, notes)
        plan = _Plan(policy, ctx, notes)
        results: list[HitResult] = []
        if plan.hits:
            try:
                results = self._sync_acquire(plan.hits, now, admitted=plan.admitted, request_id=ctx.request_id)
            except Exception as e:  # a store bug must not take the gateway down with it
                results = _failed(len(plan.hits), f"{type(e).__name__}: {e}")
        return plan.finish(results, explain, self.headers)

    # A policy with measures: one store call per dependency level (every measure of
    # the level at once), then the rules and limits, which may read any measure.
    async def _decide_measured(
        self, policy: PolicySet, ctx: Context, now: float, explain: bool, notes: list[str] | None
    ) -> Decision:
        m = _Measuring(policy, ctx)
        for level, fn in enumerate(policy.compiled.measure_levels):
            mi, hits = fn(ctx)
            if hits:
                m.record(mi, hits, await self._acquire(hits, now, False, m.receipt_id(level)))
        plan = _Plan(policy, ctx, notes)
        plan.decision.measures = m.states
        results = await self._acquire(plan.hits, now, plan.admitted, ctx.request_id) if plan.hits else []
        return plan.finish(results, explain, self.headers)

    def _decide_measured_sync(
        self, policy: PolicySet, ctx: Context, now: float, explain: bool, notes: list[str] | None
    ) -> Decision:
        m = _Measuring(policy, ctx)
        for level, fn in enumerate(policy.compiled.measure_levels):
            mi, hits = fn(ctx)
            if hits:
                m.record(mi, hits, self._acquire_sync(hits, now, False, m.receipt_id(level)))
        plan = _Plan(policy, ctx, notes)
        plan.decision.measures = m.states
        results = self._acquire_sync(plan.hits, now, plan.admitted, ctx.request_id) if plan.hits else []
        return plan.finish(results, explain, self.headers)

    def _acquire_sync(self, hits: list[Hit], now: float, admitted: bool, request_id: str | None) -> list[HitResult]:
        try:
            return self._sync_acquire(hits, now, admitted=admitted, request_id=request_id)  # type: ignore[misc]
        except Exception as e:  # a store bug must not take the gateway down with it
            return _failed(len(hits), f"{type(e).__name__}: {e}")

    async def _acquire(self, hits: list[Hit], now: float, admitted: bool, request_id: str | None) -> list[HitResult]:
        try:
            if self._sync_acquire is not None:
                return self._sync_acquire(hits, now, admitted=admitted, request_id=request_id)
            local = self.store.acquire_nowait(hits, now, admitted=admitted, request_id=request_id)
            if local is not None:
                return local
            # asyncio.timeout cancels in place; wait_for would wrap the call in a new task.
            async with asyncio.timeout(self.store_deadline):
                return await self.store.acquire(hits, now, admitted=admitted, request_id=request_id)
        except TimeoutError:
            return _failed(len(hits), f"store deadline of {self.store_deadline * 1000:g} ms exceeded")
        except Exception as e:  # noqa: BLE001 - any store failure becomes the limits' fail mode
            return _failed(len(hits), f"{type(e).__name__}: {e}")

    # ------------------------------------------------------------------ report
    def usage_costs(self, usage: Usage) -> dict[str, float]:
        """Actual cost per `sum` limit or measure with a `usage` clause, from a usage report."""
        return usage_costs(self.policy, Context(**usage.context_fields()))

    async def report(self, request_id: str, usage: Usage, now: float | None = None) -> bool:
        costs = self.usage_costs(usage)
        if not costs:
            return False
        rids = receipt_ids(self.policy, request_id)
        if self._sync_reconcile is not None:
            return any([self._sync_reconcile(rid, costs, _now(now)) for rid in rids])
        async with asyncio.timeout(self.store_deadline * 4):
            return await self.store.reconcile_all(rids, costs, _now(now))

    def report_sync(self, request_id: str, usage: Usage, now: float) -> bool:
        if self._sync_reconcile is None:
            raise TypeError(f"report_sync needs a store with a synchronous API, not {self.store.backend}")
        costs = self.usage_costs(usage)
        if not costs:
            return False
        applied = False
        for rid in receipt_ids(self.policy, request_id):
            applied = bool(self._sync_reconcile(rid, costs, now)) or applied
        return applied


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def _clock(ctx: Context, now: float | None) -> float:
    """The decision's time; a request that leaves `request.ts` out reads it as this time."""
    t = time.time() if now is None else now
    if ctx.request_ts is None:
        ctx.request_ts = t
    return t


# Measures charged in level K keep their receipt under "<request id>\x1fmK": one
# receipt per store call, as a second call under one id would replace the first.
MEASURE_RECEIPT = "\x1fm"


def receipt_ids(policy: PolicySet, request_id: str) -> list[str]:
    """The receipts a usage report for `request_id` reconciles: the limits' own, then
    one per measure level that charges a reconcilable `sum`."""
    ids = [request_id]
    for level, reconcilable in enumerate(policy.compiled.measure_receipts):
        if reconcilable:
            ids.append(f"{request_id}{MEASURE_RECEIPT}{level}")
    return ids


def usage_costs(policy: PolicySet, c: Context) -> dict[str, float]:
    """Actual cost per limit or measure with a `usage` clause (which reads only `usage.*`)."""
    out: dict[str, float] = {}
    items: tuple[LimitInfo | MeasureInfo, ...] = (*policy.limits, *policy.compiled.measures)
    for item in items:
        if item.usage is not None:
            v = item.usage(c)
            if v is not None:
                out[item.id] = to_units(float(v), item.spec.scale)
    return out


class _Measuring:
    """The measures of one request: their values in `ctx.measures` (null until a
    level's store call answers, and when the key is null or the store failed) and
    what the store answered for each, made MeasureStates only when read."""

    __slots__ = ("ctx", "states", "receipts")

    def __init__(self, policy: PolicySet, ctx: Context) -> None:
        self.ctx = ctx
        measures = policy.compiled.measures
        ctx.measures = [None] * len(measures)
        self.states = MeasureStates(measures, ctx.measures)
        self.receipts = policy.compiled.measure_receipts

    def receipt_id(self, level: int) -> str | None:
        rid = self.ctx.request_id
        return None if rid is None or not self.receipts[level] else f"{rid}{MEASURE_RECEIPT}{level}"

    def record(self, mi: list[int], hits: list[Hit], results: Sequence[HitResult]) -> None:
        values = self.ctx.measures
        for j, hit, res in zip(mi, hits, results):
            values[j] = res.used / hit.spec.scale if res.error is None else None
        self.states.add(mi, hits, results)


class _Plan:
    """One request between the rules and the store: the decision so far and
    the limit hits to send. The policy is read once, so a reload cannot
    change it halfway."""

    __slots__ = ("policy", "ctx", "matched", "limits", "hits", "decision", "admitted")
    limits: list[LimitInfo]
    hits: list[Hit]

    def __init__(self, policy: PolicySet, ctx: Context, notes: list[str] | None) -> None:
        self.policy, self.ctx = policy, ctx
        compiled = policy.compiled
        exempt = compiled.exempt(ctx) if compiled.exempt is not None else None
        if exempt:
            # An exempt request consults no limit, and the rules its exemptions name are skipped.
            skipped = frozenset().union(*(compiled.exempts[i].rules for i in exempt))
            self.matched = [i for i in compiled.evaluate_rules(ctx) if i not in skipped]
            self.limits, self.hits = [], []
        else:
            self.matched, (self.limits, self.hits) = compiled.evaluate(ctx)
        self.decision, self.admitted = _apply_rules(policy, ctx, self.matched)
        if notes:
            self.decision.notes = notes
        if exempt:
            self.decision.exempt = [compiled.exempts[i].id for i in exempt]

    def finish(self, results: Sequence[HitResult], explain: bool, headers: bool = True) -> Decision:
        d = self.decision
        if self.hits:
            _apply_limits(d, self.ctx, self.limits, self.hits, results)
        if headers:
            finish_headers(d, self.policy.rate_headers)
        if d.status == 0:
            d.status = DEFAULT_STATUS[d.effect]
        if explain:
            d.trace = explain_trace(self.policy, self.ctx, self.matched, d)
        return d


def _failed(n: int, why: str) -> list[HitResult]:
    return [HitResult(used=0.0, remaining=0.0, reset=0.0, over=False, committed=False, error=why) for _ in range(n)]


def _apply_rules(policy: PolicySet, ctx: Context, matched: list[int]) -> tuple[Decision, bool]:
    d = Decision(Effect.ALLOW, 200, policy_version=policy.version, request_id=ctx.request_id)
    winner = None
    rules = policy.compiled.rules
    for i in matched:
        r = rules[i]
        if r.shadow:
            _shadow(d, r)
            continue
        _record(d, ctx, r)
        if winner is None or r.effect > winner.effect:
            winner = r
    if winner is not None:
        d.effect, d.status, d.reason = winner.effect, winner.status, winner.reason
        if winner.effect is Effect.THROTTLE:
            d.retry_after = winner.retry_after
    return d, d.effect < Effect.THROTTLE


def _shadow(d: Decision, item: RuleInfo | LimitInfo) -> None:
    """A shadow rule or limit that matched: listed with what it would have done, never enforced."""
    d.shadow.append(ShadowMatch(item.id, item.effect, item.reason))


def _record(d: Decision, ctx: Context, item: RuleInfo | LimitInfo) -> None:
    """A rule or limit that matched and is enforced: list it, tag flags, add its headers."""
    d.rules.append(item.id)
    if item.effect is Effect.FLAG:
        d.flags.append(item.id)
    if item.headers is not None:
        d.headers.update(item.headers(ctx))


def _apply_limits(
    d: Decision,
    ctx: Context,
    limits: Sequence[LimitInfo],
    hits: Sequence[Hit],
    results: Sequence[HitResult],
) -> None:
    # The rate-limit headers' limits, by one rule (see ingress.answer): for any kind, for
    # `count` limits (requests) and for `sum` limits (tokens), the limit that refused the
    # request, else the enforcing one closest to its maximum; none for a request a rule
    # denied, which no budget speaks to. (ratio of the maximum left, the limit) per slot;
    # a refusal by a limit the store could not answer for holds its slot with no limit.
    tightest: list[tuple[float, LimitState | None] | None] = [None, None, None]
    append = d.limits.append
    for lim, hit, res in zip(limits, hits, results):
        over = res.over or (lim.block_key and res.used > hit.maximum)
        if res.error is not None:
            over = lim.fail_closed
        scale = hit.spec.scale
        state = LimitState(
            lim.id,
            hit.key,
            lim.kind_label,
            res.used / scale,
            hit.maximum / scale,
            res.remaining / scale,
            res.reset,
            over,
            res.committed,
            lim.shadow,
            res.error,
            lim.spec.window,
        )
        append(state)
        slot = _RATE_SLOT.get(lim.kind_label, 0)
        # A limit the store could not answer for has no usage to show: no rate-limit headers
        # from it (a fail-open budget is not "all of it left").
        if lim.sets_rate_headers and hit.maximum > 0 and res.error is None:
            ratio = res.remaining / hit.maximum
            for i in (0, slot) if slot else (0,):
                t = tightest[i]
                if t is None or ratio < t[0]:
                    tightest[i] = (ratio, state)
        if not over:
            continue
        if lim.shadow:
            _shadow(d, lim)
            continue
        _record(d, ctx, lim)
        if lim.effect > d.effect:
            d.effect, d.status = lim.effect, lim.status
            d.reason = lim.reason if res.error is None else f"{lim.reason} (limit store unavailable: failing closed)"
            if lim.effect is Effect.THROTTLE:
                d.retry_after = max(1.0, res.reset) if res.error is None else 1.0
            # A money budget holds the slot with no limit: its dollars are no request or token count.
            shown = state if res.error is None and scale == 1 else None
            tightest[0] = tightest[slot] = (-1.0, shown)
    admitted_or_limited = d.effect is not Effect.DENY
    any_, requests, tokens = (t[1] if t is not None and (admitted_or_limited or t[0] < 0) else None for t in tightest)
    d.rate_limit, d.requests_limit, d.tokens_limit = any_, requests, tokens


# Limit kind -> its slot in _apply_limits' `tightest`: requests (count), tokens (sum).
_RATE_SLOT = {"count": 1, "sum": 2}


def explain_trace(policy: PolicySet, ctx: Context, matched: list[int], d: Decision) -> list[dict[str, Any]]:
    """Every measure, rule and limit consulted, with what it saw: the `--explain` view."""
    trace: list[dict[str, Any]] = _measure_trace(policy, ctx, d)
    compiled = policy.compiled
    by_exemption: dict[int, str] = {}  # rule index -> the matching exemption that skips it
    for x, fn in zip(compiled.exempts, compiled.explain_exempts):
        holds, unless = fn(ctx)
        matched_x = x.id in d.exempt
        trace.append(
            {
                "exempt": x.id,
                "at": f"{x.span.source.name}:{x.span.line}",
                "condition": bool(holds is True),
                "exempted": bool(unless is True),
                "matched": matched_x,
                "rules": list(x.rule_ids),
            }
        )
        if matched_x:
            for i in x.rules:
                by_exemption.setdefault(i, x.id)
    hit_set = set(matched)
    for r, fn in zip(compiled.rules, compiled.explain_rules):
        cond, exempt = fn(ctx)
        entry: dict[str, Any] = {
            "rule": r.id,
            "effect": r.effect.label,
            "at": f"{r.span.source.name}:{r.span.line}",
            "condition": bool(cond is True),
            "exempted": bool(exempt is True),
            "matched": r.index in hit_set,
        }
        if r.index in by_exemption:
            entry["exempted_by"] = by_exemption[r.index]
        if r.shadow:
            entry["shadow"] = True
        if r.index in hit_set:
            entry["reason"] = r.reason
        trace.append(entry)
    states = {s.limit: s for s in d.limits}
    for lim, why_fn in zip(policy.compiled.limits, policy.compiled.explain_limits):
        entry = {
            "limit": lim.id,
            "kind": lim.spec.kind.value,
            "effect": lim.effect.label,
            "window_seconds": lim.spec.window,
            "at": f"{lim.span.source.name}:{lim.span.line}",
        }
        if lim.spec.calendar is not None:
            entry["calendar"] = str(lim.spec.calendar)
        why, null_parts = why_fn(ctx)
        s = states.get(lim.id)
        if s is None:
            if d.exempt:
                entry.update({"applied": False, "why": "exempt", "exempted_by": d.exempt[0]})
            else:
                entry.update({"applied": False, "why": why or "not evaluated"})
        else:
            entry.update({"applied": True, **s.to_dict()})
            if null_parts:
                entry["null_key"] = list(null_parts)  # every request without it shares this bucket
        trace.append(entry)
    trace.extend(computed_trace(ctx))
    return trace


MAX_SHOWN_TEXT = 60  # a signal's text argument (a prompt) is shown abbreviated past this


def computed_trace(ctx: Context) -> list[dict[str, Any]]:
    """What this request computed once and shared: each signal call (with its
    arguments) and each `let` that calls a function, with its value."""
    out: list[dict[str, Any]] = []
    for key, value in ctx.cache.items():
        if isinstance(key, tuple):
            name, args = key
            out.append({"signal": name, "args": [_shown(a) for a in args], "value": _shown(value)})
        else:
            out.append({"let": key, "value": _shown(value)})
    return out


def _shown(v: Any) -> Any:
    """A JSON-able, readable form of a value: long text abbreviated, sets as sorted lists."""
    if isinstance(v, str) and len(v) > MAX_SHOWN_TEXT:
        return f"{v[: MAX_SHOWN_TEXT - 1]}… ({len(v)} characters)"
    if isinstance(v, (set, frozenset)):
        return sorted((_shown(x) for x in v), key=str)
    if isinstance(v, (list, tuple)):
        return [_shown(x) for x in v]
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    source = getattr(v, "source", None)  # a compiled data list (phrases, networks): its file's name
    return f"<{type(v).__name__} {Path(source).name}>" if isinstance(source, str) else f"<{type(v).__name__}>"


def _measure_trace(policy: PolicySet, ctx: Context, d: Decision) -> list[dict[str, Any]]:
    """Each measure: applied (charged), read (it did not apply: why), skipped (a null
    key: why) or error (the store failed: the value read as null)."""
    states = {s.measure: s for s in d.measures}
    out: list[dict[str, Any]] = []
    for m, why_fn in zip(policy.compiled.measures, policy.compiled.explain_measures):
        entry: dict[str, Any] = {
            "measure": m.id,
            "kind": m.kind_label,
            "window_seconds": m.spec.window,
            "level": m.level,
            "at": f"{m.span.source.name}:{m.span.line}",
        }
        if m.spec.calendar is not None:
            entry["calendar"] = str(m.spec.calendar)
        why = why_fn(ctx)
        s = states.get(m.id)
        if s is None:
            entry.update({"status": "skipped", "why": why or "not evaluated", "value": None})
        else:
            entry["status"] = "error" if s.error else "applied" if s.charged else "read"
            if why is not None:
                entry["why"] = why
            entry.update({k: v for k, v in s.to_dict().items() if k != "measure"})
        out.append(entry)
    return out
