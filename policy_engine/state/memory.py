"""The embedded limit store: everything in one process, bounded, synchronous inside.

Semantics: docs/limits.md. The window math lives in base.py and is shared with
the Redis store's Lua scripts, so both stores answer identically.

`acquire_sync` is atomic with respect to other calls on the same store (it never
awaits and the engine calls it from one event loop), so a request is checked
against every hit first and charged afterwards: a refused request needs no
refund here.
"""

from __future__ import annotations

from bisect import bisect_left
from math import floor
from collections import OrderedDict
from typing import Any, Protocol
from collections.abc import Callable, Iterable, Sequence

from .base import (
    CALENDAR_FRACTION,
    DEFAULT_RECEIPT_TTL,
    SKETCH_K,
    Hit,
    HitResult,
    Kind,
    LimitSpec,
    Record,
    Store,
    SyncStore,
    calendar_reset,
    member_hash,
    reset_after,
    sketch_estimate,
    usage,
)
from .factory import StoreOptions, StoreURLError, url_options

_SEP = "\x1f"  # joins limit id and key; unit separator never appears in policy names


# One store call's group entries, by LimitSpec.group: (key, state key, entry or None)
_Near = dict[str, tuple[str, str, "dict[str, _Counter] | None"]]

_ATTEMPTS = Record.ATTEMPTS
_DISTINCT = Kind.DISTINCT
_SUM = Kind.SUM


class Journal(Protocol):
    """Told of every charge the store commits (the local-first store batches them
    to the shared store): `k` is the state key, `b` the bucket charged."""

    def see(self, k: str, hit: Hit) -> None: ...

    def counter(self, k: str, hit: Hit, b: int, amount: float) -> None: ...

    def member(self, k: str, hit: Hit, b: int, h: int) -> None: ...


class _Counter:
    """COUNT/SUM state of one key: bucket index, current and previous bucket totals."""

    __slots__ = ("b", "c", "p")

    def __init__(self, b: int, c: float, p: float) -> None:
        self.b = b
        self.c = c
        self.p = p


class _Distinct:
    """DISTINCT state of one key: the current bucket's sketch and the sketch of
    (previous bucket ∪ current bucket), each a sorted list of hashes + saturated flag,
    and each sketch's estimate (`ce`, `ue`), kept beside it so that a hit does not
    recompute them from the lists; `refresh` after changing a sketch."""

    __slots__ = ("b", "c", "cs", "u", "us", "ce", "ue")

    def __init__(self, b: int) -> None:
        self.b = b
        self.c: list[int] = []
        self.cs = False
        self.u: list[int] = []
        self.us = False
        self.ce = 0.0
        self.ue = 0.0

    def refresh(self) -> None:
        self.ce = _est(self.c, self.cs)
        self.ue = _est(self.u, self.us)


def _est(sk: list[int], sat: bool) -> float:
    return sketch_estimate(len(sk), sat, sk[-1] if sk else 0)


def _est_after(sk: list[int], sat: bool, h: int) -> float:
    """The sketch's estimate if `h` were inserted (mirrors sk_after in acquire.lua)."""
    n = len(sk)
    i = bisect_left(sk, h)
    if i < n and sk[i] == h:
        return sketch_estimate(n, sat, sk[-1])
    if n < SKETCH_K:
        return sketch_estimate(n + 1, sat, max(h, sk[-1]) if n else h)
    kth = sk[-1]
    if h > kth:
        return sketch_estimate(n, True, kth)
    return sketch_estimate(n, True, max(h, sk[-2]))


def _insert(sk: list[int], h: int) -> tuple[bool, bool]:
    """Insert `h`, keeping the K smallest. Returns (dropped_something, added)."""
    n = len(sk)
    i = bisect_left(sk, h)
    if i < n and sk[i] == h:
        return False, False
    if n < SKETCH_K:
        sk.insert(i, h)
        return False, True
    if h > sk[-1]:
        return True, False
    sk.insert(i, h)
    sk.pop()
    return True, True


def _reset(spec: LimitSpec, cur: float, prev: float, frac: float, allowed: float, now: float) -> float:
    """Seconds until usage fits `allowed`: the sliding window's, or a calendar period's end.
    (acquire_sync's COUNT/SUM path has the same two lines inline.)"""
    if spec.calendar is None:
        return reset_after(cur, prev, frac, spec.window, allowed)
    return calendar_reset(cur, allowed, now, spec.calendar.period(now).end)


class MemoryStore(Store):
    """In-process limit store, bounded to `max_keys` entries: a (limit, key) pair, or
    the counters of a key for a group of COUNT/SUM limits and measures that share their
    key expression (LimitSpec.group), which one lookup per store call serves.

    A flood of new keys evicts the least recently charged entries (their counts are
    forgotten: documented as the price of the bound; a group's entry goes as one). Receipts for `reconcile`
    are kept only for reconcilable SUM charges, bounded by `max_receipts` the
    same way, and expire after `receipt_ttl` or two windows, whichever is shorter.
    """

    backend = "memory"

    def __init__(
        self, max_keys: int = 3_000_000, max_receipts: int = 200_000, receipt_ttl: float = DEFAULT_RECEIPT_TTL
    ) -> None:
        if max_keys < 1 or max_receipts < 1:
            raise ValueError(f"MemoryStore: max_keys and max_receipts must be >= 1, got {max_keys}, {max_receipts}")
        if receipt_ttl <= 0:
            raise ValueError(f"MemoryStore: receipt_ttl must be > 0 seconds, got {receipt_ttl}")
        self.max_keys = max_keys
        self.max_receipts = max_receipts
        self.receipt_ttl = receipt_ttl
        # state key -> one limit's state ("<limit id>\x1f<key>"), or the counters of a group
        # of limits sharing key and window (LimitSpec.group), by limit id ("<group>\x1f<key>")
        self._keys: OrderedDict[str, _Counter | _Distinct | dict[str, _Counter]] = OrderedDict()
        # request id -> (expires at, [(limit id, state key, window, bucket, estimate)])
        self._receipts: OrderedDict[str, tuple[float, list[tuple[str, str, float, int, float]]]] = OrderedDict()
        self.journal: Journal | None = None  # set by a local-first store

    def __len__(self) -> int:
        return len(self._keys)

    # -- the request path ---------------------------------------------------

    def acquire_sync(
        self, hits: Sequence[Hit], now: float, *, admitted: bool = True, request_id: str | None = None
    ) -> list[HitResult]:
        plans = []
        blocked = False
        near: _Near = {}
        for h in hits:
            p = self._plan(h, now, near)
            if p[-1] and h.enforce:
                blocked = True
            plans.append(p)
        commit_admitted = admitted and not blocked
        results: list[HitResult] = []
        charges: list[tuple[str, str, float, int, float]] | None = None
        for h, p in zip(hits, plans):
            spec = h.spec
            commit = commit_admitted or spec.record is _ATTEMPTS
            kind = spec.kind
            if kind is _DISTINCT:
                results.append(self._finish_distinct(h, p, commit, now))
                continue
            # COUNT / SUM, inline: this is the hot path
            k, st, b, frac, cur, prev, before, after, slot, over = p
            amount = h.amount
            if commit:
                cur = cur + amount
                if st is None:
                    self._new_counter(k, slot, _Counter(b, cur, prev))
                else:
                    st.b = b
                    st.c = cur
                    st.p = prev
                    self._keys.move_to_end(k)
                used = after
                if self.journal is not None:
                    self.journal.counter(k, h, b, amount)
                if kind is _SUM and request_id is not None and spec.reconcilable:
                    if charges is None:
                        charges = []
                    charges.append((spec.id, k, spec.window, b, amount))
            else:
                used = before
            maximum = h.maximum
            left = maximum - used
            if spec.calendar is None:
                reset = reset_after(cur, prev, frac, spec.window, maximum - amount)
            else:
                reset = calendar_reset(cur, maximum - amount, now, spec.calendar.period(now).end)
            results.append(HitResult(used, left if left > 0.0 else 0.0, reset, over, commit))
        if charges:
            self._remember(request_id, charges, now)  # type: ignore[arg-type]
        return results

    def _plan(self, h: Hit, now: float, near: _Near) -> tuple[Any, ...]:
        """Read the hit's state rolled to `now` and decide `over`, without writing.
        COUNT/SUM: (state key, state or None, bucket, fraction, cur, prev, before,
        after, limit id in its group's entry or None, over)."""
        spec = h.spec
        if spec.group is not None and self.journal is None:
            return self._plan_grouped(h, spec.group, now, near)
        w = spec.window
        k = spec.id + _SEP + h.key
        st = self._keys.get(k)
        if self.journal is not None:
            self.journal.see(k, h)
        cal = spec.calendar
        if cal is None:
            b = floor(now / w)  # base.bucket_of
            frac = (now - b * w) / w  # base.elapsed_fraction
        else:
            b = cal.period(now).index
            frac = CALENDAR_FRACTION
        distinct = spec.kind is _DISTINCT
        if st is not None:
            if type(st) is not (_Distinct if distinct else _Counter):
                del self._keys[k]  # the limit changed kind on a policy reload: start afresh
                st = None
            elif st.b > b:  # time went backwards: stay in the stored bucket
                b = st.b
                frac = 0.0 if cal is None else CALENDAR_FRACTION
        if distinct:
            return self._plan_distinct(h, k, st, b, frac)  # type: ignore[arg-type]  # _Distinct: checked above
        if st is None or st.b < b - 1:
            cur = prev = 0.0
        elif st.b == b:
            cur = st.c  # type: ignore[assignment]  # a _Counter: checked above
            prev = st.p  # type: ignore[union-attr]
        else:
            cur = 0.0
            prev = st.c  # type: ignore[assignment]
        # base.usage, inlined (same operations, same order: the stores must agree bit for bit)
        before = cur + prev * (1.0 - frac)
        after = (cur + h.amount) + prev * (1.0 - frac)
        return (k, st, b, frac, cur, prev, before, after, None, after > h.maximum)

    def _plan_grouped(self, h: Hit, group: str, now: float, near: _Near) -> tuple[Any, ...]:
        """_plan for a COUNT/SUM hit of a group: the group's entry for the key is looked
        up once per store call (`near` holds it by group), and each limit of the group
        keeps its own counters and bucket (its own window) in it, so that the answers
        are the ones an entry per limit gives, bit for bit. Not for a local-first store:
        its journal and the shared store keep state per limit."""
        spec = h.spec
        key = h.key
        n = near.get(group)
        if n is not None and n[0] == key:
            k, g = n[1], n[2]
        else:
            k = group + _SEP + key
            g = self._keys.get(k)  # type: ignore[assignment]  # under a group's state key: a dict
            near[group] = (key, k, g)
        cal = spec.calendar
        if cal is None:
            w = spec.window
            b = floor(now / w)  # base.bucket_of
            frac = (now - b * w) / w  # base.elapsed_fraction
        else:
            b = cal.period(now).index
            frac = CALENDAR_FRACTION
        st = g.get(spec.id) if g is not None else None
        if st is None or st.b < b - 1:
            cur = prev = 0.0
        elif st.b == b:
            cur, prev = st.c, st.p
        elif st.b > b:  # time went backwards: stay in the stored bucket
            b = st.b
            frac = 0.0 if spec.calendar is None else CALENDAR_FRACTION
            cur, prev = st.c, st.p
        else:
            cur, prev = 0.0, st.c
        # base.usage, inlined (same operations, same order: the stores must agree bit for bit)
        before = cur + prev * (1.0 - frac)
        after = (cur + h.amount) + prev * (1.0 - frac)
        return (k, st, b, frac, cur, prev, before, after, spec.id, after > h.maximum)

    def _plan_distinct(self, h: Hit, k: str, st: _Distinct | None, b: int, frac: float) -> tuple[Any, ...]:
        """_plan for a DISTINCT hit: the sketches rolled to bucket `b`, their estimates
        before (`cn`, `un`) and, for a hit with a member, after inserting it (`ca`, `ua`):
        what inserting would leave, computed once (sketch_estimate of the same size, flag
        and K-th hash as _insert leaves), so that finishing needs no estimate of its own."""
        c: list[int]
        u: list[int]
        if st is None or st.b < b - 1:
            c, cs, u, us, cn, un = [], False, [], False, 0.0, 0.0
        elif st.b == b:
            c, cs, u, us, cn, un = st.c, st.cs, st.u, st.us, st.ce, st.ue
        else:  # previous bucket: the current sketch becomes the union sketch
            c, cs, u, us, cn, un = [], False, st.c, st.cs, 0.0, st.ce
        before = usage(cn, max(0.0, un - cn), frac)
        if h.member is None:  # a read: the current estimate; nothing is inserted
            return (k, st, b, frac, None, c, cs, u, us, cn, un, cn, un, before, before, False)
        hv = member_hash(h.member)
        ca = _est_after(c, cs, hv)
        ua = _est_after(u, us, hv)
        after = usage(ca, max(0.0, ua - ca), frac)
        return (k, st, b, frac, hv, c, cs, u, us, cn, un, ca, ua, before, after, after > h.maximum)

    def _finish_distinct(self, h: Hit, p: tuple[Any, ...], commit: bool, now: float) -> HitResult:
        k, st, b, frac, hv, c, cs, u, us, cn, un, ca, ua, before, after, over = p
        commit = commit and hv is not None  # a read (no member) never writes
        if commit:
            if st is None:
                st = _Distinct(b)
                self._insert_key(k, st)
            else:
                self._keys.move_to_end(k)
            if st.b != b:  # apply the roll computed in _plan
                st.b, st.c, st.cs, st.u, st.us = b, c, cs, u, us
            dropped, _ = _insert(st.c, hv)
            st.cs = st.cs or dropped
            dropped, _ = _insert(st.u, hv)
            st.us = st.us or dropped
            st.ce, st.ue = cn, un = ca, ua  # the estimates _plan computed for the inserted member
            if self.journal is not None:
                self.journal.member(k, h, b, hv)
        used = after if commit else before
        reset = _reset(h.spec, cn, max(0.0, un - cn), frac, h.maximum - 1.0, now)
        return HitResult(used, max(0.0, h.maximum - used), reset, over, commit)

    def _new_counter(self, k: str, slot: str | None, st: _Counter) -> None:
        """Store a COUNT/SUM state that did not exist: its own entry, or in its group's."""
        if slot is None:
            self._insert_key(k, st)
            return
        g = self._keys.get(k)
        if g is None:
            self._insert_key(k, {slot: st})
        else:
            g[slot] = st  # type: ignore[index]  # under a group's state key: a dict
            self._keys.move_to_end(k)

    def _insert_key(self, k: str, st: _Counter | _Distinct | dict[str, _Counter]) -> None:
        keys = self._keys
        while len(keys) >= self.max_keys:
            keys.popitem(last=False)
        keys[k] = st

    def _remember(self, request_id: str, charges: list[tuple[str, str, float, int, float]], now: float) -> None:
        expires = now + min(self.receipt_ttl, 2.0 * max(c[2] for c in charges))
        rc = self._receipts
        rc.pop(request_id, None)  # one acquire per request id: a second one replaces the first (as on Redis)
        while len(rc) >= self.max_receipts:
            rc.popitem(last=False)
        rc[request_id] = (expires, charges)

    # -- operators ------------------------------------------------------------------

    def preview_sync(self, hits: Sequence[Hit], now: float, *, admitted: bool = True) -> list[HitResult]:
        """acquire_sync's answer without writing (Store.preview)."""
        near: _Near = {}
        plans = [self._plan(h, now, near) for h in hits]
        blocked = any(p[-1] and h.enforce for h, p in zip(hits, plans))
        results = []
        for h, p in zip(hits, plans):
            spec = h.spec
            commit = (admitted and not blocked) or spec.record is _ATTEMPTS
            if spec.kind is _DISTINCT:
                results.append(self._preview_distinct(h, p, commit, now))
                continue
            _k, _st, _b, frac, cur, prev, before, after, _slot, over = p
            if commit:
                cur = cur + h.amount
            used = after if commit else before
            reset = _reset(spec, cur, prev, frac, h.maximum - h.amount, now)
            results.append(HitResult(used, max(0.0, h.maximum - used), reset, over, commit))
        return results

    def _preview_distinct(self, h: Hit, p: tuple[Any, ...], commit: bool, now: float) -> HitResult:
        _k, _st, _b, frac, hv, _c, _cs, _u, _us, cn, un, ca, ua, before, after, over = p
        commit = commit and hv is not None
        if commit:  # the estimates as _finish_distinct would leave them
            cn, un = ca, ua
        used = after if commit else before
        reset = _reset(h.spec, cn, max(0.0, un - cn), frac, h.maximum - 1.0, now)
        return HitResult(used, max(0.0, h.maximum - used), reset, over, commit)

    async def preview(self, hits: Sequence[Hit], now: float, *, admitted: bool = True) -> list[HitResult]:
        return self.preview_sync(hits, now, admitted=admitted)

    async def reset(self, spec: LimitSpec, key: str) -> bool:
        gone = self._keys.pop(spec.id + _SEP + key, None) is not None
        if spec.group is not None:  # its counters in its group's entry (none in a local-first store)
            k = spec.group + _SEP + key
            g = self._keys.get(k)
            if isinstance(g, dict) and g.pop(spec.id, None) is not None:
                gone = True
                if not g:
                    del self._keys[k]
        return gone

    # -- usage reports ----------------------------------------------------------

    def reconcile_sync(self, request_id: str, actual: dict[str, float], now: float) -> bool:
        entry = self._receipts.pop(request_id, None)
        if entry is None or entry[0] <= now:
            return False
        for limit_id, k, _window, bucket, estimate in entry[1]:
            if limit_id in actual:
                self._adjust(k, bucket, float(actual[limit_id]) - estimate, limit_id)
        return True

    def _adjust(self, k: str, bucket: int, delta: float, limit_id: str | None = None) -> None:
        """Add `delta` to the bucket a charge went into, if the window still holds it
        (`limit_id`: the limit's counters, when `k` is its group's entry)."""
        st = self._keys.get(k)
        if isinstance(st, dict):
            st = st.get(limit_id) if limit_id is not None else None
        if not isinstance(st, _Counter):
            return
        if st.b == bucket:
            st.c = max(0.0, st.c + delta)
        elif st.b == bucket + 1:
            st.p = max(0.0, st.p + delta)

    # -- local-first: the shared state, merged in (mirrors lua/sync.lua) ---------

    def take_receipt(self, request_id: str) -> tuple[float, list[tuple[str, str, float, int, float]]] | None:
        """Remove and return a request's receipt: (expires, [(limit id, state key, window, bucket, estimate)])."""
        return self._receipts.pop(request_id, None)

    def adjust(self, k: str, bucket: int, delta: float) -> None:
        """A usage report's difference, into the bucket that was charged (if still in the window)."""
        self._adjust(k, bucket, delta)

    def forget(self, k: str) -> None:
        self._keys.pop(k, None)

    def install_counter(self, k: str, b: int, cur: float, prev: float) -> None:
        """Replace a COUNT/SUM key's state with the shared store's."""
        st = self._keys.get(k)
        if isinstance(st, _Counter):
            st.b, st.c, st.p = b, cur, prev
        else:
            self._keys.pop(k, None)
            self._insert_key(k, _Counter(b, cur, prev))

    def install_distinct(self, k: str, b: int, cur: Iterable[int], cs: bool, union: Iterable[int], us: bool) -> None:
        """Replace a DISTINCT key's state with the shared store's sketches."""
        st = _Distinct(b)
        st.c, st.cs, st.u, st.us = sorted(cur), cs, sorted(union), us
        st.refresh()
        self._keys.pop(k, None)
        self._insert_key(k, st)

    def merge_counter(self, k: str, bucket: int, delta: float) -> None:
        """Add `delta` to `bucket`, rolling the state forward to it if it is newer
        (sync.lua's COUNT/SUM merge, case by case)."""
        st = self._keys.get(k)
        if not isinstance(st, _Counter):
            self._keys.pop(k, None)
            self._insert_key(k, _Counter(bucket, max(0.0, delta), 0.0))
        elif st.b == bucket + 1:
            st.p = max(0.0, st.p + delta)
        elif st.b == bucket:
            st.c = max(0.0, st.c + delta)
        elif st.b == bucket - 1:
            st.b, st.c, st.p = bucket, max(0.0, delta), st.c
        elif st.b < bucket - 1:
            st.b, st.c, st.p = bucket, max(0.0, delta), 0.0

    def merge_member(self, k: str, bucket: int, h: int) -> None:
        """Insert a DISTINCT member into `bucket`'s sketches (sync.lua's DISTINCT merge)."""
        st = self._keys.get(k)
        if not isinstance(st, _Distinct):
            self._keys.pop(k, None)
            st = _Distinct(bucket)
            self._insert_key(k, st)
        if st.b > bucket + 1:
            return
        into_cur = True
        if st.b == bucket + 1:
            into_cur = False
        elif st.b == bucket - 1:
            st.b, st.c, st.cs, st.u, st.us = bucket, [], False, st.c, st.cs
        elif st.b != bucket:
            st.b, st.c, st.cs, st.u, st.us = bucket, [], False, [], False
        if into_cur:
            st.cs = _insert(st.c, h)[0] or st.cs
        st.us = _insert(st.u, h)[0] or st.us
        st.refresh()

    # -- the Store protocol -------------------------------------------------------

    async def acquire(
        self, hits: Sequence[Hit], now: float, *, admitted: bool = True, request_id: str | None = None
    ) -> list[HitResult]:
        return self.acquire_sync(hits, now, admitted=admitted, request_id=request_id)

    async def reconcile(self, request_id: str, actual: dict[str, float], now: float) -> bool:
        return self.reconcile_sync(request_id, actual, now)

    async def close(self) -> None:
        await self.flush()

    async def flush(self) -> None:
        self._keys.clear()
        self._receipts.clear()

    def as_sync(self) -> SyncStore:
        return self

    # -- introspection (tests, `policyctl` debugging) ---------------------------

    async def ttl(self, spec: LimitSpec, key: str, now: float) -> float | None:
        """Seconds until the key's state no longer counts, or None if it holds nothing."""
        st = self._keys.get(spec.id + _SEP + key)
        if st is None and spec.group is not None:
            st = self._keys.get(spec.group + _SEP + key)
        if isinstance(st, dict):  # its group's entry: its own counters in it
            st = st.get(spec.id)
        if st is None:
            return None
        if spec.calendar is not None:  # kept until its period ends, like Redis's TTL
            p = spec.calendar.period(now)
            return p.end - now if st.b >= p.index else None
        left = (st.b + 2) * spec.window - now
        return left if left > 0 else None


_OPTIONS: dict[str, Callable[[str], Any]] = {"max_keys": int, "max_receipts": int, "receipt_ttl": float}


def open_url(url: str, options: StoreOptions) -> MemoryStore:
    """`memory://`, optionally `?max_keys=N&max_receipts=N&receipt_ttl=SECONDS`
    (the deadline and prefix do not apply: nothing is shared or waited for)."""
    try:
        return MemoryStore(**url_options(url, _OPTIONS))
    except StoreURLError:
        raise
    except ValueError as e:
        raise StoreURLError(f"{url!r}: {e}") from None


def check_url(url: str) -> None:
    open_url(url, StoreOptions())
