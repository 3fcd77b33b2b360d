"""The shared limit store: Redis or Redis Cluster, one round trip per request.

Semantics: docs/limits.md; they are the memory store's, bit for bit: the Lua
scripts in lua/ mirror base.py's window math and memory.py's decisions.

Layout. Every (limit, key) pair owns keys under one hash tag,
`<prefix>:{<limit id>|<key>}:...`, so each script touches one slot. The hits of a
request are grouped by slot, one `acquire.lua` call per slot, all sent in one
pipeline together with the request's reconcile receipt. On a single Redis all
hits go into one call, so the request is decided atomically as a whole. On a
cluster, a request refused by a hit in one slot may already have been charged in
another: a second round trip (`adjust.lua`) refunds those charges; in between
the over-reservation can only cause extra refusals, never over-admission.
"""

from __future__ import annotations

import asyncio
import json
import math
from importlib import resources
from typing import Any, Sequence

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import NoScriptError, RedisError

from .base import SKETCH_K, Hit, HitResult, Kind, LimitSpec, Record, bucket_of, member_hash

_KIND_CODE = {Kind.COUNT: "c", Kind.SUM: "s", Kind.DISTINCT: "d"}
_STORE_ERRORS = (RedisError, OSError, asyncio.TimeoutError)


def _script(name: str) -> str:
    return resources.files("policy_engine.state").joinpath("lua", name).read_text(encoding="utf-8")


class RedisStore:
    """Limit store on Redis (`redis://`, `rediss://`, `unix://`) or Redis Cluster
    (`redis+cluster://host:port` or `cluster=True`).

    Every call is bounded by `deadline` seconds (socket timeouts and an overall
    `asyncio.wait_for`); on a Redis failure `acquire` returns results with
    `error` set, so that the engine applies each limit's fail mode.
    """

    def __init__(self, client: Redis | RedisCluster, *, cluster: bool, deadline: float, prefix: str = "pe") -> None:
        self._client = client
        self._cluster = cluster
        self.deadline = deadline
        self._prefix = prefix
        self._src = {name: _script(name) for name in ("acquire.lua", "adjust.lua")}
        self._sha: dict[str, str] = {}

    @classmethod
    def from_url(
        cls,
        url: str,
        deadline: float = 0.05,
        *,
        cluster: bool | None = None,
        prefix: str = "pe",
        max_connections: int = 256,
        **kwargs: Any,
    ) -> RedisStore:
        """`max_connections` bounds the pool (per node on a cluster); on a single
        Redis a call waits for a free connection at most until its deadline."""
        if deadline <= 0:
            raise ValueError(f"RedisStore: deadline must be > 0 seconds, got {deadline}")
        scheme, sep, rest = url.partition("://")
        if not sep:
            raise ValueError(f"RedisStore: {url!r} is not a URL (expected redis://host:port/db)")
        if scheme.endswith("+cluster"):
            cluster = True
            url = scheme.removesuffix("+cluster") + "://" + rest
        opts: dict[str, Any] = {
            "socket_timeout": deadline,
            "socket_connect_timeout": deadline,
            # retries would outlive the deadline; the engine's fail mode is the retry policy
            "retry": Retry(NoBackoff(), 0),
        }
        opts.update(kwargs)
        client: Redis | RedisCluster
        if cluster:
            client = RedisCluster.from_url(url, max_connections=max_connections, **opts)
        else:
            pool = BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=deadline, **opts)
            client = Redis(connection_pool=pool, retry=Retry(NoBackoff(), 0))
        return cls(client, cluster=bool(cluster), deadline=deadline, prefix=prefix)

    # -- keys -----------------------------------------------------------------

    def _tag(self, spec: LimitSpec, key: str) -> str:
        return f"{self._prefix}:{{{spec.id}|{key}}}"

    def _keys_of(self, hit: Hit) -> list[str]:
        tag = self._tag(hit.spec, hit.key)
        if hit.spec.kind is Kind.DISTINCT:
            return [tag + ":d", tag + ":dc", tag + ":du"]
        return [tag + ":c"]

    def _receipt_key(self, request_id: str) -> str:
        return f"{self._prefix}:r:{{{request_id}}}"

    def _slot(self, key: str) -> int:
        return key_slot(key.encode("utf-8", "surrogatepass")) if self._cluster else 0

    # -- scripts ----------------------------------------------------------------

    async def _load_scripts(self) -> None:
        for name, src in self._src.items():
            self._sha[name] = await self._client.script_load(src)

    async def _run(self, calls: list[tuple[str, list[str], list[Any]]], extra: list[tuple] = ()) -> list[Any]:
        """Run script calls (name, keys, args) and plain commands in one pipeline.

        Scripts the server forgot (restart, failover) are loaded again and only
        the calls that failed with NOSCRIPT are re-run: the others already ran."""
        if not self._sha:
            await self._load_scripts()
        if len(calls) == 1 and not extra:  # the common single-slot case: no pipeline object
            name, keys, args = calls[0]
            try:
                return [await self._client.execute_command("EVALSHA", self._sha[name], len(keys), *keys, *args)]
            except NoScriptError:
                await self._load_scripts()
                return [await self._client.execute_command("EVALSHA", self._sha[name], len(keys), *keys, *args)]
        pipe = self._client.pipeline(transaction=False)
        for name, keys, args in calls:
            pipe.execute_command("EVALSHA", self._sha[name], len(keys), *keys, *args)
        for cmd in extra:
            pipe.execute_command(*cmd)
        out = list(await pipe.execute(raise_on_error=False))
        missing = [i for i, r in enumerate(out[: len(calls)]) if isinstance(r, NoScriptError)]
        if missing:
            await self._load_scripts()
            pipe = self._client.pipeline(transaction=False)
            for i in missing:
                name, keys, args = calls[i]
                pipe.execute_command("EVALSHA", self._sha[name], len(keys), *keys, *args)
            for i, r in zip(missing, await pipe.execute(raise_on_error=False)):
                out[i] = r
        for r in out:
            if isinstance(r, Exception):
                raise r
        return out

    # -- the request path -----------------------------------------------------

    async def acquire(
        self, hits: Sequence[Hit], now: float, *, admitted: bool = True, request_id: str | None = None
    ) -> list[HitResult]:
        if not hits:
            return []
        try:
            async with asyncio.timeout(self.deadline):  # no extra task, unlike wait_for
                return await self._acquire(hits, now, admitted, request_id)
        except _STORE_ERRORS as e:
            msg = f"redis store: {type(e).__name__}: {e}" if str(e) else f"redis store: {type(e).__name__}"
            return [HitResult(0.0, h.maximum, 0.0, False, False, error=msg) for h in hits]

    async def _acquire(
        self, hits: Sequence[Hit], now: float, admitted: bool, request_id: str | None
    ) -> list[HitResult]:
        groups: dict[int, list[int]] = {}
        keys_of = [self._keys_of(h) for h in hits]
        for i, ks in enumerate(keys_of):
            groups.setdefault(self._slot(ks[0]), []).append(i)
        calls = []
        order: list[list[int]] = []
        for idx in groups.values():
            keys: list[str] = []
            args: list[Any] = [repr(float(now)), "1" if admitted else "0", SKETCH_K]
            for i in idx:
                h = hits[i]
                if h.spec.kind is Kind.DISTINCT and h.member is None:
                    raise ValueError(f"limit {h.spec.id!r}: a distinct hit needs a member (key {h.key!r})")
                keys += keys_of[i]
                args += [
                    _KIND_CODE[h.spec.kind],
                    repr(float(h.spec.window)),
                    repr(float(h.maximum)),
                    repr(float(h.amount)),
                    str(member_hash(h.member)) if h.member is not None else "0",
                    "1" if h.spec.record is Record.ATTEMPTS else "0",
                    "1" if h.enforce else "0",
                ]
            calls.append(("acquire.lua", keys, args))
            order.append(idx)

        # The receipt is written optimistically (the common case: admitted) and
        # rewritten in the refund round trip when the request is refused.
        sums = [i for i, h in enumerate(hits) if h.spec.kind is Kind.SUM]
        if not admitted:
            sums = [i for i in sums if hits[i].spec.record is Record.ATTEMPTS]
        receipt: list[list[Any]] = []
        extra: list[tuple] = []
        if request_id is not None and sums:
            receipt = [[hits[i].spec.id, keys_of[i][0], bucket_of(now, hits[i].spec.window), hits[i].amount]
                       for i in sums]
            extra.append(self._receipt_set(request_id, receipt, now, max(hits[i].spec.window for i in sums)))
        out = await self._run(calls, extra)

        raw: list[list[Any]] = [[] for _ in hits]
        for idx, rows in zip(order, out):
            for i, row in zip(idx, rows):
                raw[i] = row
        blocked = any(h.enforce and int(raw[i][4]) for i, h in enumerate(hits))
        refunds: list[int] = []
        if blocked and admitted:
            refunds = [i for i, h in enumerate(hits) if int(raw[i][5]) and h.spec.record is Record.ADMITTED]
        committed = [bool(int(r[5])) and i not in refunds for i, r in enumerate(raw)]
        stale_receipt = bool(receipt) and any(
            not committed[i] or int(float(raw[i][6])) != row[2] for row, i in zip(receipt, sums)
        )
        if refunds or stale_receipt:
            await self._refund(hits, keys_of, raw, refunds, request_id, now, committed)

        results = []
        for i, h in enumerate(hits):
            r = raw[i]
            c = committed[i]
            used = float(r[0] if c else r[1])
            results.append(HitResult(used, max(0.0, h.maximum - used), float(r[2] if c else r[3]), bool(int(r[4])), c))
        return results

    def _receipt_set(self, request_id: str, receipt: list[list[Any]], now: float, window: float) -> tuple:
        # Redis expires it in real time; the stored deadline applies the
        # injected clock, exactly like the memory store.
        ttl_ms = math.ceil(2.0 * window * 1000) + 1000
        body = json.dumps({"expires": now + 2.0 * window, "charges": receipt})
        return ("SET", self._receipt_key(request_id), body, "PX", ttl_ms)

    async def _refund(
        self,
        hits: Sequence[Hit],
        keys_of: list[list[str]],
        raw: list[list[Any]],
        refunds: list[int],
        request_id: str | None,
        now: float,
        committed: list[bool],
    ) -> None:
        """Second round trip: undo the charges of a refused request made in other
        slots, and rewrite its receipt to what was really charged."""
        groups: dict[int, tuple[list[str], list[Any]]] = {}
        for i in refunds:
            h = hits[i]
            r = raw[i]
            keys, args = groups.setdefault(self._slot(keys_of[i][0]), ([], []))
            keys += keys_of[i]
            hs = str(member_hash(h.member)) if h.member is not None else "0"
            args += [_KIND_CODE[h.spec.kind], r[6], repr(-float(h.amount)), hs, str(r[7]), str(r[8])]
        calls = [("adjust.lua", keys, args) for keys, args in groups.values()]
        extra: list[tuple] = []
        if request_id is not None:
            sums = [i for i, h in enumerate(hits) if h.spec.kind is Kind.SUM and committed[i]]
            if sums:
                receipt = [[hits[i].spec.id, keys_of[i][0], int(float(raw[i][6])), hits[i].amount] for i in sums]
                extra.append(self._receipt_set(request_id, receipt, now, max(hits[i].spec.window for i in sums)))
            else:
                extra.append(("DEL", self._receipt_key(request_id)))
        await self._run(calls, extra)

    # -- usage reports ----------------------------------------------------------

    async def reconcile(self, request_id: str, actual: dict[str, float], now: float) -> bool:
        async def run() -> bool:
            raw = await self._client.getdel(self._receipt_key(request_id))
            if raw is None:
                return False
            receipt = json.loads(raw)
            if receipt["expires"] <= now:
                return False
            groups: dict[int, tuple[list[str], list[Any]]] = {}
            for limit_id, key, bucket, estimate in receipt["charges"]:
                if limit_id not in actual:
                    continue
                keys, args = groups.setdefault(self._slot(key), ([], []))
                keys.append(key)
                args += ["s", str(bucket), repr(float(actual[limit_id]) - estimate), "0", "0", "0"]
            if groups:
                await self._run([("adjust.lua", k, a) for k, a in groups.values()])
            return True

        try:
            async with asyncio.timeout(self.deadline):
                return await run()
        except _STORE_ERRORS as e:
            raise RedisError(f"redis store: reconcile of request {request_id!r} failed: {type(e).__name__}: {e}") from e

    async def close(self) -> None:
        await self._client.aclose()

    # -- introspection (tests, debugging) ---------------------------------------

    async def ttl(self, spec: LimitSpec, key: str, now: float) -> float | None:
        """Seconds until the key's state expires in Redis, or None if it holds nothing."""
        tag = self._tag(spec, key)
        ms = await self._client.pttl(tag + (":d" if spec.kind is Kind.DISTINCT else ":c"))
        return ms / 1000.0 if ms >= 0 else None

    async def flush(self) -> None:
        """Delete every key under this store's prefix (tests)."""
        async for k in self._client.scan_iter(match=f"{self._prefix}:*", count=1000):
            await self._client.delete(k)
