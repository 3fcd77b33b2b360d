"""Local-first shared limits: decide from local counters, exchange deltas with Redis
in batches (Kong's `sync_rate`, gubernator's GLOBAL behaviour).

A `LocalFirstStore` wraps a Redis store (single or Cluster). Hits of batched
limits (state/sync_mode.py) are decided by an in-process MemoryStore holding this
process's view of the shared state: no Redis round trip on the request path.
Every `interval` a background round sends what this process charged since the
last round (per key and bucket: a COUNT/SUM delta, DISTINCT member hashes) and
pulls the shared state of every key it decided on (lua/sync.lua, the same keys
exact mode uses); the view becomes that state plus what was charged while the
round was in flight. Hits of exact limits go to Redis as before, in the same call.

Overshoot: a process does not see the others' charges of the last two intervals
plus a round trip, so a key admits at most about `rate × (2 × interval + round
trip)` above its maximum, `rate` being the key's admitted rate over all processes,
and never more than `processes × maximum` (docs/limits.md, "Local-first limits").

Alone (`SyncMode.solo`, a replay), the process owns every key: its view is the
shared state, so a round only sends the changes and pulls nothing back.

Redis down: decisions go on locally, the deltas and receipts are kept (bounded)
and sent when Redis answers again. A round whose reply is lost may be counted
twice: stricter, never looser.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from policy_engine.tasks import cancel_and_wait

from .base import SKETCH_K, FailMode, Hit, HitResult, Kind, LimitSpec, Store, StoreUnavailable
from .memory import MemoryStore
from .redis import _STORE_ERRORS, Command, RedisStore
from .sync_mode import SyncMode

log = logging.getLogger("policy_engine.store")

_SEP = "\x1f"  # the memory store's state key: limit id, _SEP, key
RECEIPT_SUFFIX = "\x1fb"  # a batched request's receipt on Redis (its exact charges keep the plain id)
OPS_PER_CALL = 128  # sync.lua calls stay short: Redis runs one script at a time

Receipt = tuple[float, list[tuple[str, str, float, int, float]]]  # MemoryStore's: expires, charges


@dataclass
class _Batch:
    """What one process has to tell the shared store; filled between two rounds."""

    seen: dict[str, Hit] = field(default_factory=dict)  # state key -> a hit on it: pull its state
    counters: dict[tuple[str, int], float] = field(default_factory=dict)  # (state key, bucket) -> delta
    members: dict[tuple[str, int], set[int]] = field(default_factory=dict)  # (state key, bucket) -> hashes
    receipts: OrderedDict[str, Receipt] = field(default_factory=OrderedDict)
    now: float = 0.0  # the latest request time (stores never read a clock): TTLs count from it

    def __bool__(self) -> bool:
        return bool(self.seen or self.counters or self.members or self.receipts)

    # the MemoryStore's journal
    def see(self, k: str, hit: Hit) -> None:
        self.seen[k] = hit

    def counter(self, k: str, hit: Hit, b: int, amount: float) -> None:
        key = (k, b)
        self.counters[key] = self.counters.get(key, 0.0) + amount

    def member(self, k: str, hit: Hit, b: int, h: int) -> None:
        s = self.members.get((k, b))
        if s is None:
            self.members[(k, b)] = s = set()
        s.add(h)
        if len(s) > 4 * SKETCH_K:  # only the K smallest can stay in a sketch
            keep = sorted(s)[:SKETCH_K]
            s.clear()
            s.update(keep)

    def absorb(self, older: _Batch, max_keys: int, max_receipts: int) -> int:
        """Put back a round that failed: its changes go out with the next one. Beyond
        `max_keys` keys (a long outage), the oldest keys' changes are dropped: their
        count returned."""
        dropped = 0
        for k, hit in older.seen.items():
            if k not in self.seen and len(self.seen) >= max_keys:
                dropped += 1
                continue
            self.seen.setdefault(k, hit)
        seen = self.seen
        for ck, d in older.counters.items():
            if ck[0] in seen:
                self.counters[ck] = self.counters.get(ck, 0.0) + d
        for mk, hs in older.members.items():
            if mk[0] in seen:
                self.members.setdefault(mk, set()).update(hs)
        self.now = max(self.now, older.now)
        merged = OrderedDict(older.receipts)
        merged.update(self.receipts)
        while len(merged) > max_receipts:
            merged.popitem(last=False)
        self.receipts = merged
        return dropped


@dataclass
class SyncStats:
    rounds: int = 0
    failed_rounds: int = 0
    keys_sent: int = 0
    dropped_keys: int = 0  # pending changes dropped during an outage (max_pending_keys)
    last_error: str | None = None
    last_round_seconds: float = 0.0


class LocalFirstStore(Store):
    backend: ClassVar[str] = "redis-local-first"
    local_answers: ClassVar[bool] = True
    on_outage: ClassVar[str] = (
        "batched limits and measures are decided from this process's counters and their deltas are "
        "sent when it answers; exact limits apply their fail mode (on_error, open unless the policy "
        "says closed) and exact measures read null"
    )

    def __init__(
        self,
        inner: RedisStore,
        mode: SyncMode,
        *,
        max_keys: int = 3_000_000,
        max_receipts: int = 200_000,
        max_pending_keys: int = 1_000_000,
    ) -> None:
        if mode.interval is None:
            raise ValueError('a local-first store needs a sync interval (store_sync = "batched:<N>ms")')
        self.inner = inner
        self.mode = mode
        self.interval = mode.interval
        self.local = MemoryStore(max_keys=max_keys, max_receipts=max_receipts, receipt_ttl=inner.receipt_ttl)
        self.max_receipts = max_receipts
        self.max_pending_keys = max_pending_keys
        self._batch = _Batch()
        self.local.journal = self._batch
        self._task: asyncio.Task[None] | None = None
        self._round: asyncio.Future[None] | None = None  # the round in flight
        self._closed = False
        self._sent: OrderedDict[str, None] = OrderedDict()  # solo: receipts sent to Redis (bounded)
        self.stats = SyncStats()
        self.redis_ok = True

    # -- the request path -----------------------------------------------------

    def acquire_nowait(
        self, hits: Sequence[Hit], now: float, *, admitted: bool = True, request_id: str | None = None
    ) -> list[HitResult] | None:
        for h in hits:
            if not self.mode.is_batched(h.spec):
                return None
        return self._local(hits, now, admitted, request_id)

    def _local(self, hits: Sequence[Hit], now: float, admitted: bool, request_id: str | None) -> list[HitResult]:
        if self._task is None:
            self._start()
        if now > self._batch.now:
            self._batch.now = now
        results = self.local.acquire_sync(hits, now, admitted=admitted, request_id=request_id)
        if request_id is not None:
            receipt = self.local.take_receipt(request_id)
            if receipt is not None:
                rc = self._batch.receipts
                rc[request_id] = receipt
                while len(rc) > self.max_receipts:
                    rc.popitem(last=False)
        return results

    async def acquire(
        self, hits: Sequence[Hit], now: float, *, admitted: bool = True, request_id: str | None = None
    ) -> list[HitResult]:
        local = [i for i, h in enumerate(hits) if self.mode.is_batched(h.spec)]
        if len(local) == len(hits):
            return self._local(hits, now, admitted, request_id)
        if not local:
            return await self.inner.acquire(hits, now, admitted=admitted, request_id=request_id)
        # Mixed: the local hits' verdict first (nothing written), then the exact ones on
        # Redis, then the local commit knowing Redis's verdict. A local hit that another
        # request filled during the round trip leaves the exact charges in place: an
        # over-reservation of exact budgets, never an over-admission.
        exact = _others(local, len(hits))
        lh = [hits[i] for i in local]
        eh = [hits[i] for i in exact]
        preview = self.local.preview_sync(lh, now, admitted=admitted)
        local_blocked = any(r.over and h.enforce for h, r in zip(lh, preview))
        er = await self.inner.acquire(eh, now, admitted=admitted and not local_blocked, request_id=request_id)
        exact_blocked = any(_blocks(h, r) for h, r in zip(eh, er))
        lr = self._local(lh, now, admitted and not exact_blocked, request_id)
        return _merge(len(hits), (local, lr), (exact, er))

    async def preview(self, hits: Sequence[Hit], now: float, *, admitted: bool = True) -> list[HitResult]:
        local = [i for i, h in enumerate(hits) if self.mode.is_batched(h.spec)]
        exact = _others(local, len(hits))
        lh = [hits[i] for i in local]
        eh = [hits[i] for i in exact]
        lr = self.local.preview_sync(lh, now, admitted=admitted)
        local_blocked = any(r.over and h.enforce for h, r in zip(lh, lr))
        er = await self.inner.preview(eh, now, admitted=admitted and not local_blocked) if eh else []
        if any(_blocks(h, r) for h, r in zip(eh, er)):
            lr = self.local.preview_sync(lh, now, admitted=False)
        return _merge(len(hits), (local, lr), (exact, er))

    async def reset(self, spec: LimitSpec, key: str) -> bool:
        k = spec.id + _SEP + key
        self._batch.seen.pop(k, None)
        for d in (self._batch.counters, self._batch.members):
            for dk in [dk for dk in d if dk[0] == k]:
                del d[dk]
        local = await self.local.reset(spec, key)
        return await self.inner.reset(spec, key) or local

    # -- usage reports ----------------------------------------------------------

    async def reconcile(self, request_id: str, actual: dict[str, float], now: float) -> bool:
        receipt = self._batch.receipts.pop(request_id, None)
        if receipt is None and self.mode.solo and request_id not in self._sent:
            return False  # alone, and no receipt was made for it (refused, or nothing to reconcile)
        if receipt is None:  # sent already, perhaps by another process
            while self._round is not None:  # it may be on its way
                await asyncio.shield(self._round)
            body = await self.inner.take_receipt(request_id + RECEIPT_SUFFIX)
            if body is not None:
                receipt = (float(body["expires"]), [tuple(c) for c in body["charges"]])
        applied = receipt is not None and self._adjust(receipt, actual, now)
        if all(self.mode.limits.get(i) == "batched" for i in actual):
            return applied  # every reported limit is named batched: no exact receipt to look for
        exact = await self.inner.reconcile(request_id, actual, now)
        return applied or exact

    def _adjust(self, receipt: Receipt, actual: dict[str, float], now: float) -> bool:
        """A usage report's differences, into this process's view and the next round's deltas."""
        expires, charges = receipt
        if expires <= now:
            return False
        batch = self._batch
        for limit_id, k, _window, bucket, estimate in charges:
            if limit_id not in actual:
                continue
            delta = float(actual[limit_id]) - estimate
            self.local.adjust(k, bucket, delta)
            batch.counters[(k, bucket)] = batch.counters.get((k, bucket), 0.0) + delta
            if k not in batch.seen:  # a bare adjustment: the shared state keeps its TTL
                batch.seen[k] = Hit(LimitSpec(limit_id, Kind.SUM, 0.0), k.partition(_SEP)[2], 0.0)
        return True

    # -- the rounds ---------------------------------------------------------------

    def _start(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a synchronous caller): rounds start with the first async call
        self._task = loop.create_task(self._run(), name="local-first-sync")

    async def _run(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.interval)
            try:
                await self.sync()
            except Exception:  # noqa: BLE001 - a bug in a round must not stop the next ones
                log.exception("local-first sync round failed")

    @property
    def pending_keys(self) -> int:
        """Keys with changes not yet sent (or kept through an outage)."""
        return len(self._batch.seen)

    async def sync(self) -> bool:
        """One round now: send the deltas, pull the state of the keys decided on.
        False when Redis did not answer (the changes stay pending)."""
        while self._round is not None:
            await asyncio.shield(self._round)
        batch = self._batch
        if not batch:
            return True
        self._batch = _Batch()
        self.local.journal = self._batch
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._round = fut
        try:
            return await self._exchange(batch)
        finally:
            self._round = None
            fut.set_result(None)

    async def _exchange(self, batch: _Batch) -> bool:
        loop = asyncio.get_running_loop()
        started = loop.time()
        ops, cmds = self._commands(batch)
        try:
            out = await self.inner.send_now(cmds, timeout=max(1.0, 4 * self.interval))
            for r in out:
                if isinstance(r, Exception):
                    raise r
        except _STORE_ERRORS as e:
            lost = self._batch.absorb(batch, self.max_pending_keys, self.max_receipts)
            self.stats.dropped_keys += lost
            if lost:
                log.warning("local-first: %d keys' pending changes dropped (max_pending_keys)", lost)
            self.stats.failed_rounds += 1
            self.stats.last_error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            if self.redis_ok:
                log.warning(
                    "local-first sync with %s failed (%s): deciding locally, %d keys pending",
                    self.inner.backend,
                    self.stats.last_error,
                    len(self._batch.seen),
                )
            self.redis_ok = False
            return False
        if not self.redis_ok:
            log.warning("local-first sync: Redis answers again; pending deltas sent")
        self.redis_ok = True
        self._install(ops, out)
        self.stats.rounds += 1
        self.stats.keys_sent += (
            len(ops) if not self.mode.solo else len({k for k, _ in (*batch.counters, *batch.members)})
        )
        self.stats.last_round_seconds = loop.time() - started
        return True

    def _commands(self, batch: _Batch) -> tuple[list[tuple[str, Hit]], list[Command]]:
        """The sync.lua calls (grouped by slot, a bounded number of ops each) and the receipts.
        Returns, per op in reply order, the state key and a hit on it."""
        changes: dict[str, list[tuple[int, Any]]] = {}
        for (k, b), d in batch.counters.items():
            changes.setdefault(k, []).append((b, d))
        for (k, b), hs in batch.members.items():
            changes.setdefault(k, []).append((b, hs))
        # Alone (a replay), this process's view is the shared state: send the changes, pull nothing.
        solo = self.mode.solo
        groups: dict[int, list[tuple[str, Hit, int, list[str], list[Any]]]] = {}
        for k, hit in batch.seen.items():
            if solo and k not in changes:
                continue
            n, keys, args = self._ops(hit, sorted(changes.get(k, ()), key=lambda c: c[0]), batch.now)
            groups.setdefault(self.inner.slot(keys[0]), []).append((k, hit, n, keys, args))
        ops: list[tuple[str, Hit]] = []
        cmds: list[Command] = []
        for entries in groups.values():
            for i in range(0, len(entries), OPS_PER_CALL):
                call_keys: list[str] = []
                call_args: list[Any] = [SKETCH_K, "q" if solo else "r"]
                for k, hit, n, keys, args in entries[i : i + OPS_PER_CALL]:
                    call_keys += keys * n  # each op names its keys
                    call_args += args
                    if not solo:
                        ops += [(k, hit)] * n
                cmds.append(self.inner.evalsha("sync.lua", call_keys, call_args))
        for rid, (expires, charges) in batch.receipts.items():
            if self.mode.solo:
                self._sent[rid] = None
                while len(self._sent) > self.max_receipts:
                    self._sent.popitem(last=False)
            body = json.dumps({"expires": expires, "charges": charges})
            ms = max(1, math.ceil((expires - batch.now) * 1000)) + 1000
            cmds.append(("SET", self.inner.receipt_key(rid + RECEIPT_SUFFIX), body, "PX", ms))
        return ops, cmds

    def _ops(self, hit: Hit, changes: list[tuple[int, Any]], now: float) -> tuple[int, list[str], list[Any]]:
        """One key's sync.lua ops: one per bucket changed, or a pull. (ops, its keys, the args)"""
        tag = self.inner.tag(hit.spec, hit.key)
        distinct = hit.spec.kind is Kind.DISTINCT
        keys = [tag + ":d", tag + ":dc", tag + ":du"] if distinct else [tag + ":c"]
        kind = "d" if distinct else "c"
        if not changes:
            return 1, keys, [kind, "0", "0", 0]
        args: list[Any] = []
        for b, v in changes:
            ttl = str(_ttl_ms(hit.spec, b, now))
            if distinct:
                args += [kind, str(b), ttl, len(v), *(str(h) for h in sorted(v))]
            else:
                args += [kind, str(b), ttl, 1, repr(float(v))]
        return len(changes), keys, args

    def _install(self, ops: list[tuple[str, Hit]], out: list[Any]) -> None:
        """The shared state replaces this process's view; then what was charged while
        the round was in flight is merged in again."""
        replies = [row for reply in out if isinstance(reply, list) for row in reply]
        last: dict[str, tuple[Hit, Any]] = {}
        for (k, hit), row in zip(ops, replies):
            last[k] = (hit, row)
        local = self.local
        for k, (hit, row) in last.items():
            if not row[0]:
                local.forget(k)
            elif hit.spec.kind is Kind.DISTINCT:
                local.install_distinct(
                    k,
                    int(float(row[0])),
                    (int(h) for h in row[3]),
                    row[1] == b"1",
                    (int(h) for h in row[4]),
                    row[2] == b"1",
                )
            else:
                local.install_counter(k, int(float(row[0])), float(row[1]), float(row[2]))
        pending = self._batch
        for (k, b), d in pending.counters.items():
            if k in last:
                local.merge_counter(k, b, d)
        for (k, b), hs in pending.members.items():
            if k in last:
                for h in hs:
                    local.merge_member(k, b, h)

    # -- lifecycle ----------------------------------------------------------------

    async def check(self) -> None:
        try:
            await self.inner.check()
        except StoreUnavailable as e:
            raise StoreUnavailable(
                f"{e}; deciding batched limits locally ({len(self._batch.seen)} keys pending)"
            ) from e

    async def close(self) -> None:
        self._closed = True
        await cancel_and_wait(self._task)
        self._task = None
        try:
            await self.sync()  # the last deltas, best effort
        finally:
            await self.inner.close()

    async def flush(self) -> None:
        while self._round is not None:  # a round in flight would write after the flush
            await asyncio.shield(self._round)
        await self.local.flush()
        self._batch = _Batch()
        self.local.journal = self._batch
        await self.inner.flush()


def wrap(store: Store, mode: SyncMode) -> LocalFirstStore:
    """The local-first store over a shared store (state/factory.py calls it)."""
    if not isinstance(store, RedisStore):
        raise TypeError(f"local-first limits need a Redis store, not {store.backend}")
    return LocalFirstStore(store, mode)


def _blocks(h: Hit, r: HitResult) -> bool:
    """Does this exact hit's answer refuse the request (as the engine will read it)?"""
    if not h.enforce:
        return False
    if r.error is not None:
        return h.spec.fail is FailMode.CLOSED
    return r.over


def _merge(n: int, *parts: tuple[list[int], list[HitResult]]) -> list[HitResult]:
    """One result list, in the hits' order, from the parts' (indices, results)."""
    out: list[HitResult] = [None] * n  # type: ignore[list-item]  # every index is filled below
    for idx, results in parts:
        for i, r in zip(idx, results):
            out[i] = r
    return out


def _others(some: list[int], n: int) -> list[int]:
    chosen = set(some)
    return [i for i in range(n) if i not in chosen]


def _ttl_ms(spec: LimitSpec, bucket: int, now: float) -> int:
    """How long the shared state of a bucket must live: until it has left the window."""
    if spec.window <= 0.0:
        return 0  # an adjustment: the state keeps its TTL
    cal = spec.calendar
    if cal is not None:
        end = cal.period(now).end
        return math.ceil((end - now) * 1000) + 1000
    return max(1, math.ceil(((bucket + 2) * spec.window - now) * 1000) + 1000)
