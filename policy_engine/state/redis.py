"""The shared limit store: Redis or Redis Cluster, one round trip per request.

Semantics: docs/limits.md; they are the memory store's, bit for bit: the Lua
scripts in lua/ mirror base.py's window math and memory.py's decisions.

Layout. Every (limit, key) pair owns keys under one hash tag,
`<prefix>:{<limit id>|<key>}:...`, so each script touches one slot. The hits of a
request are grouped by slot, one `acquire.lua` call per slot, sent together with
the request's reconcile receipt. On a single Redis all hits go into one call, so
the request is decided atomically as a whole. On a cluster, a request refused by
a hit in one slot may already have been charged in another: a second round trip
(`adjust.lua`) refunds those charges; in between the over-reservation can only
cause extra refusals, never over-admission.

Coalescing. Requests do not each pay a round trip: the commands of every call
that arrives while a pipeline is in flight (or in the same event-loop turn) go
out together in the next pipeline (`_Coalescer`), and each caller gets its own
replies back. Each request's script is still one EVALSHA, so atomicity per
request is unchanged. On a single Redis the pipeline is written and read on a
pooled connection directly (one packed write, replies parsed from one buffer):
redis-py's per-command machinery cost ~10 µs a reply, which dominated.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from importlib import resources
from typing import Any
from collections.abc import Awaitable, Callable, Sequence

from urllib.parse import parse_qsl, urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import URL_QUERY_ARGUMENT_PARSERS, parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import NoScriptError, RedisError, ResponseError

from .base import DEFAULT_DEADLINE, DEFAULT_RECEIPT_TTL, SKETCH_K, Hit, HitResult, Kind, LimitSpec, Record, Store
from .base import StoreUnavailable, member_hash, spec_bucket
from .factory import StoreOptions, StoreURLError, redact

_KIND_CODE = {Kind.COUNT: "c", Kind.SUM: "s", Kind.DISTINCT: "d"}
_STORE_ERRORS = (RedisError, OSError, asyncio.TimeoutError)

Command = tuple[Any, ...]


def _script(name: str) -> str:
    return resources.files("policy_engine.state").joinpath("lua", name).read_text(encoding="utf-8")


def _arg(a: Any) -> bytes:
    if isinstance(a, bytes):
        return a
    if isinstance(a, str):
        return a.encode("utf-8", "surrogatepass")  # as key_slot hashes it
    if isinstance(a, (int, float)):
        return repr(a).encode()
    raise TypeError(f"redis store: cannot send an argument of type {type(a).__name__}")


def _pack(cmds: Sequence[Command]) -> bytes:
    """RESP encoding of a whole pipeline, in one buffer."""
    out: list[bytes] = []
    append = out.append
    for cmd in cmds:
        append(b"*%d\r\n" % len(cmd))
        for a in cmd:
            b = a.encode("utf-8", "surrogatepass") if type(a) is str else _arg(a)  # str: the common case
            append(b"$%d\r\n%b\r\n" % (len(b), b))
    return b"".join(out)


class _Coalescer:
    """Shares round trips between concurrent callers.

    `run(cmds)` queues a caller's commands and waits for their replies (an
    exception instance in place of a failed command). At most `max_inflight`
    pipelines are in flight; calls that arrive meanwhile wait for the next one,
    which takes everything queued (up to `max_batch` commands). A caller that
    gives up (its deadline passed, it was cancelled) is skipped if its commands
    were not sent yet; the pipelines themselves are bounded by `send`.
    """

    def __init__(
        self, send: Callable[[list[Command]], Awaitable[list[Any]]], *, max_inflight: int, max_batch: int
    ) -> None:
        if max_inflight < 1 or max_batch < 1:
            raise ValueError(f"redis store: max_inflight and max_batch must be >= 1, got {max_inflight}, {max_batch}")
        self._send = send
        self._max_inflight = max_inflight
        self._max_batch = max_batch
        self._pending: list[tuple[list[Command], asyncio.Future[list[Any]]]] = []
        self._inflight = 0
        self._starting = False  # a drain task was created and has not taken its batch yet
        self._tasks: set[asyncio.Task[None]] = set()
        self.pipelines = 0  # counters for tests and benchmarks
        self.calls = 0

    async def run(self, cmds: list[Command]) -> list[Any]:
        if self._inflight == 0 and not self._pending:
            # alone: send from the caller's own task (no task, no extra loop turn);
            # calls arriving meanwhile queue for the next pipeline as usual
            self._inflight += 1
            self.pipelines += 1
            self.calls += 1
            try:
                return await self._send(cmds)
            finally:
                self._inflight -= 1
                self._kick()
        fut: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._pending.append((cmds, fut))
        self._kick()
        return await fut

    def _kick(self) -> None:
        if self._starting or self._inflight >= self._max_inflight or not self._pending:
            return
        self._starting = True
        self._inflight += 1
        task = asyncio.get_running_loop().create_task(self._drain())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self) -> None:
        try:
            while True:
                self._starting = False
                batch = self._take()
                if not batch:
                    return
                await self._flush(batch)
        finally:
            self._starting = False
            self._inflight -= 1
            self._kick()

    def _take(self) -> list[tuple[list[Command], asyncio.Future[list[Any]]]]:
        batch: list[tuple[list[Command], asyncio.Future[list[Any]]]] = []
        n = 0
        pending = self._pending
        i = 0
        while i < len(pending) and (not batch or n + len(pending[i][0]) <= self._max_batch):
            job = pending[i]
            i += 1
            if not job[1].done():  # its caller gave up before it was sent
                batch.append(job)
                n += len(job[0])
        del pending[:i]
        return batch

    async def _flush(self, batch: list[tuple[list[Command], asyncio.Future[list[Any]]]]) -> None:
        cmds = [c for job in batch for c in job[0]]
        self.pipelines += 1
        self.calls += len(batch)
        try:
            out = await self._send(cmds)
        except Exception as e:  # noqa: BLE001 - every caller of the batch gets the failure
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(e)
            return
        except BaseException:  # cancelled (store closing): nobody may wait forever
            for _, fut in batch:
                fut.cancel()
            raise
        i = 0
        for job_cmds, fut in batch:
            n = len(job_cmds)
            if not fut.done():
                fut.set_result(out[i : i + n])
            i += n

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            try:
                await task
            except BaseException:  # noqa: BLE001 - we cancelled it
                pass
        for _, fut in self._pending:
            fut.cancel()
        self._pending.clear()


class RedisStore(Store):
    """Limit store on Redis (`redis://`, `rediss://`, `unix://`) or Redis Cluster
    (`redis+cluster://host:port` or `cluster=True`).

    Every call is bounded by `deadline` seconds (socket timeouts and an overall
    `asyncio.timeout`); on a Redis failure `acquire` returns results with
    `error` set, so that the engine applies each limit's fail mode.
    `receipt_ttl` bounds how long a usage report can reconcile a request.
    """

    backend = "redis"

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        cluster: bool,
        deadline: float,
        prefix: str = "pe",
        receipt_ttl: float = DEFAULT_RECEIPT_TTL,
        max_inflight: int = 2,
        max_batch: int = 1024,
    ) -> None:
        if receipt_ttl <= 0:
            raise ValueError(f"RedisStore: receipt_ttl must be > 0 seconds, got {receipt_ttl}")
        self._client = client
        self._cluster = cluster
        self.deadline = deadline
        self.receipt_ttl = receipt_ttl
        self._prefix = prefix
        self._src = {name: _script(name) for name in ("acquire.lua", "adjust.lua", "sync.lua")}
        # EVALSHA needs only the digest: a server that lacks the script says NOSCRIPT and gets it
        self._sha = {name: hashlib.sha1(src.encode("utf-8")).hexdigest() for name, src in self._src.items()}
        send = self._send_cluster if cluster else self._send_single
        self._batch = _Coalescer(send, max_inflight=max_inflight, max_batch=max_batch)

    @classmethod
    def from_url(
        cls,
        url: str,
        deadline: float = DEFAULT_DEADLINE,
        *,
        cluster: bool | None = None,
        prefix: str = "pe",
        max_connections: int = 256,
        receipt_ttl: float = DEFAULT_RECEIPT_TTL,
        max_inflight: int = 2,
        max_batch: int = 1024,
        **kwargs: Any,
    ) -> RedisStore:
        """`max_connections` bounds the pool (per node on a cluster); on a single
        Redis a call waits for a free connection at most until its deadline.
        `max_inflight` pipelines of at most `max_batch` commands are in flight at once."""
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
        return cls(
            client,
            cluster=bool(cluster),
            deadline=deadline,
            prefix=prefix,
            receipt_ttl=receipt_ttl,
            max_inflight=max_inflight,
            max_batch=max_batch,
        )

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

    # -- pipelines ----------------------------------------------------------------

    def _evalsha(self, name: str, keys: list[str], args: list[Any]) -> Command:
        return ("EVALSHA", self._sha[name], len(keys), *keys, *args)

    async def _run(self, cmds: list[Command]) -> list[Any]:
        """Send commands in the next shared pipeline; raise the first failure."""
        out = await self._batch.run(cmds)
        for r in out:
            if isinstance(r, Exception):
                raise r
        return out

    async def send_now(self, cmds: list[Command], timeout: float) -> list[Any]:
        """Send `cmds` in a pipeline of their own, bounded by `timeout` rather than the
        request deadline (the local-first store's batches); replies may be exceptions."""
        if self._cluster:
            return await self._send_cluster(cmds, timeout)
        return await self._send_single(cmds, timeout)

    def evalsha(self, name: str, keys: list[str], args: list[Any]) -> Command:
        return self._evalsha(name, keys, args)

    def slot(self, key: str) -> int:
        """The key's hash slot on a cluster; 0 on a single Redis."""
        return self._slot(key)

    def tag(self, spec: LimitSpec, key: str) -> str:
        return self._tag(spec, key)

    def tag_of(self, limit_id: str, key: str) -> str:
        return f"{self._prefix}:{{{limit_id}|{key}}}"

    def receipt_key(self, request_id: str) -> str:
        return self._receipt_key(request_id)

    async def take_receipt(self, request_id: str) -> dict[str, Any] | None:
        """Read and delete a receipt (GETDEL): its JSON body, or None."""
        async with asyncio.timeout(self.deadline):
            (raw,) = await self._run([("GETDEL", self._receipt_key(request_id))])
        return None if raw is None else dict(json.loads(raw))

    def receipt_set(self, request_id: str, receipt: list[list[Any]], now: float, window: float) -> Command:
        return self._receipt_set(request_id, receipt, now, window)

    async def _send_single(self, cmds: list[Command], timeout: float | None = None) -> list[Any]:
        """One pipeline on one pooled connection, bounded by the deadline.

        Scripts the server forgot (restart, failover) are loaded again and only
        the commands that failed with NOSCRIPT are re-sent: the others already ran."""
        client = self._client
        assert isinstance(client, Redis)  # this sender is chosen for a single Redis only
        pool = client.connection_pool
        conn = await pool.get_connection()  # type: ignore[no-untyped-call]  # unannotated in redis-py
        try:
            async with asyncio.timeout(timeout or self.deadline):
                out = await _roundtrip(conn, cmds)
                missing = [i for i, r in enumerate(out) if isinstance(r, NoScriptError)]
                if missing:
                    loads: list[Command] = [("SCRIPT", "LOAD", src) for src in self._src.values()]
                    again = await _roundtrip(conn, loads + [cmds[i] for i in missing])
                    for i, r in zip(missing, again[len(loads) :]):
                        out[i] = r
        except BaseException:
            # replies may still be on their way: the connection's stream is out of step
            await conn.disconnect(nowait=True)
            raise
        finally:
            await pool.release(conn)
        return out

    async def _send_cluster(self, cmds: list[Command], timeout: float | None = None) -> list[Any]:
        """redis-py's cluster pipeline groups the commands by node and sends to
        the nodes concurrently (and follows MOVED/ASK)."""
        async with asyncio.timeout(timeout or self.deadline):
            out = await self._cluster_pipeline(cmds)
            missing = [i for i, r in enumerate(out) if isinstance(r, NoScriptError)]
            if missing:
                for src in self._src.values():
                    await self._client.script_load(src)
                for i, r in zip(missing, await self._cluster_pipeline([cmds[i] for i in missing])):
                    out[i] = r
        return out

    async def _cluster_pipeline(self, cmds: list[Command]) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        for cmd in cmds:
            pipe.execute_command(*cmd)
        return list(await pipe.execute(raise_on_error=False))

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
        self, hits: Sequence[Hit], now: float, admitted: bool, request_id: str | None, dry: bool = False
    ) -> list[HitResult]:
        groups: dict[int, list[int]] = {}
        keys_of = [self._keys_of(h) for h in hits]
        for i, ks in enumerate(keys_of):
            groups.setdefault(self._slot(ks[0]), []).append(i)
        cmds: list[Command] = []
        order: list[list[int]] = []
        for idx in groups.values():
            keys: list[str] = []
            mode = ("d" if dry else "") + ("1" if admitted else "0")
            args: list[Any] = [repr(float(now)), mode, SKETCH_K]
            for i in idx:
                h = hits[i]
                keys += keys_of[i]
                cal = h.spec.calendar
                period = cal.period(now) if cal is not None else None
                args += [
                    _KIND_CODE[h.spec.kind],
                    repr(float(h.spec.window)),
                    repr(float(h.maximum)),
                    repr(float(h.amount)),
                    # no member: "" (a DISTINCT read; ignored by COUNT and SUM)
                    str(member_hash(h.member)) if h.member is not None else "",
                    "1" if h.spec.record is Record.ATTEMPTS else "0",
                    "1" if h.enforce else "0",
                    # a calendar window: the period's index and end (the time zone stays here); else ""
                    str(period.index) if period is not None else "",
                    repr(float(period.end)) if period is not None else "",
                ]
            cmds.append(self._evalsha("acquire.lua", keys, args))
            order.append(idx)

        # Receipts only for charges a usage report can reconcile. The receipt is
        # written optimistically (the common case: admitted) and rewritten in the
        # refund round trip when the request is refused.
        sums = _receipt_hits(hits) if request_id is not None else []
        if not admitted:
            sums = [i for i in sums if hits[i].spec.record is Record.ATTEMPTS]
        receipt: list[list[Any]] = []
        if request_id is not None and sums:
            receipt = [[hits[i].spec.id, keys_of[i][0], spec_bucket(hits[i].spec, now), hits[i].amount] for i in sums]
            cmds.append(self._receipt_set(request_id, receipt, now, max(hits[i].spec.window for i in sums)))
        out = await self._run(cmds)

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
        if (refunds or stale_receipt) and not dry:
            await self._refund(hits, keys_of, raw, refunds, request_id, now, committed)

        results = []
        for i, h in enumerate(hits):
            r = raw[i]
            c = committed[i]
            used = float(r[0] if c else r[1])
            results.append(HitResult(used, max(0.0, h.maximum - used), float(r[2] if c else r[3]), bool(int(r[4])), c))
        return results

    async def preview(self, hits: Sequence[Hit], now: float, *, admitted: bool = True) -> list[HitResult]:
        """acquire.lua in its dry mode: the same answers, nothing written (one round trip)."""
        if not hits:
            return []
        async with asyncio.timeout(self.deadline):
            return await self._acquire(hits, now, admitted, None, dry=True)

    async def reset(self, spec: LimitSpec, key: str) -> bool:
        tag = self._tag(spec, key)
        suffixes = (":d", ":dc", ":du") if spec.kind is Kind.DISTINCT else (":c",)
        async with asyncio.timeout(self.deadline):
            return int(await self._client.delete(*(tag + x for x in suffixes))) > 0

    def _receipt_set(self, request_id: str, receipt: list[list[Any]], now: float, window: float) -> Command:
        # Kept for receipt_ttl, or two windows if shorter: by then the charged
        # bucket has left the window and there is nothing to adjust. Redis
        # expires it in real time; the stored deadline applies the injected
        # clock, exactly like the memory store.
        ttl = min(self.receipt_ttl, 2.0 * window)
        body = json.dumps({"expires": now + ttl, "charges": receipt})
        return ("SET", self._receipt_key(request_id), body, "PX", math.ceil(ttl * 1000) + 1000)

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
            args += [_KIND_CODE[h.spec.kind], r[6], repr(-float(h.amount)), hs, r[7], r[8]]
        cmds = [self._evalsha("adjust.lua", keys, args) for keys, args in groups.values()]
        if request_id is not None:
            sums = [i for i in _receipt_hits(hits) if committed[i]]
            if sums:
                receipt = [[hits[i].spec.id, keys_of[i][0], int(float(raw[i][6])), hits[i].amount] for i in sums]
                cmds.append(self._receipt_set(request_id, receipt, now, max(hits[i].spec.window for i in sums)))
            else:
                cmds.append(("DEL", self._receipt_key(request_id)))
        await self._run(cmds)

    # -- usage reports ----------------------------------------------------------

    async def reconcile(self, request_id: str, actual: dict[str, float], now: float) -> bool:
        return await self.reconcile_all([request_id], actual, now)

    async def reconcile_all(self, request_ids: Sequence[str], actual: dict[str, float], now: float) -> bool:
        """Every receipt of one report in two round trips: read and delete them all
        (GETDEL), then apply the differences of those still pending (adjust.lua)."""
        if not request_ids:
            return False

        async def run() -> bool:
            raws = await self._run([("GETDEL", self._receipt_key(rid)) for rid in request_ids])
            receipts = [json.loads(raw) for raw in raws if raw is not None]
            receipts = [r for r in receipts if r["expires"] > now]
            groups: dict[int, tuple[list[str], list[Any]]] = {}
            for receipt in receipts:
                for limit_id, key, bucket, estimate in receipt["charges"]:
                    if limit_id not in actual:
                        continue
                    keys, args = groups.setdefault(self._slot(key), ([], []))
                    keys.append(key)
                    args += ["s", str(bucket), repr(float(actual[limit_id]) - estimate), "0", "0", "0"]
            if groups:
                await self._run([self._evalsha("adjust.lua", k, a) for k, a in groups.values()])
            return bool(receipts)

        try:
            async with asyncio.timeout(self.deadline):
                return await run()
        except _STORE_ERRORS as e:
            what = repr(request_ids[0]) if len(request_ids) == 1 else f"{request_ids[0]!r} (and its measures)"
            raise RedisError(f"redis store: reconcile of request {what} failed: {type(e).__name__}: {e}") from e

    async def close(self) -> None:
        await self._batch.close()
        await self._client.aclose()

    async def check(self) -> None:
        try:
            async with asyncio.timeout(self.deadline):
                await self._client.ping()
        except _STORE_ERRORS as e:
            raise StoreUnavailable(f"cannot reach Redis: {type(e).__name__}: {e}") from e

    # -- introspection (tests, debugging) ---------------------------------------

    @property
    def pipelines(self) -> tuple[int, int]:
        """(pipelines sent, calls they carried) since the store opened."""
        return self._batch.pipelines, self._batch.calls

    async def ttl(self, spec: LimitSpec, key: str, now: float) -> float | None:
        """Seconds until the key's state expires in Redis, or None if it holds nothing."""
        tag = self._tag(spec, key)
        ms = await self._client.pttl(tag + (":d" if spec.kind is Kind.DISTINCT else ":c"))
        return ms / 1000.0 if ms >= 0 else None

    async def receipt_ttl_left(self, request_id: str) -> float | None:
        """Seconds (real time) until the request's receipt expires in Redis, or None if there is none."""
        ms = await self._client.pttl(self._receipt_key(request_id))
        return ms / 1000.0 if ms >= 0 else None

    async def flush(self) -> None:
        """Delete every key under this store's prefix (a replay's scratch prefix, tests)."""
        batch: list[Any] = []
        async for k in self._client.scan_iter(match=f"{self._prefix}:*", count=1000):
            batch.append(k)
            if len(batch) >= 500:  # one DEL per 500 keys, not a round trip per key
                await self._delete(batch)
                batch = []
        if batch:
            await self._delete(batch)

    async def _delete(self, keys: list[Any]) -> None:
        if self._cluster:  # a cluster takes one slot per multi-key command: a pipeline of DELs
            await self._cluster_pipeline([("DEL", k) for k in keys])
        else:
            await self._client.delete(*keys)


def open_url(url: str, options: StoreOptions) -> RedisStore:
    check_url(url)
    return RedisStore.from_url(url, deadline=options.deadline, prefix=options.prefix)


# Query options a Redis URL may carry: redis-py's own, TLS settings, credentials.
_URL_OPTIONS = frozenset({*URL_QUERY_ARGUMENT_PARSERS, "client_name", "username", "password"})


def check_url(url: str) -> None:
    """StoreURLError unless redis-py can open `url` as written: a host (redis://, rediss://)
    or a socket path (unix://), a port that is a number, a numeric db, known options."""
    scheme, _, rest = url.partition("://")
    plain = scheme.lower().removesuffix("+cluster") + "://" + rest
    try:
        parse_url(plain)
        parts = urlsplit(plain)
        if parts.scheme == "unix":
            if not parts.path:
                raise ValueError("unix:// needs the socket's path, e.g. unix:///run/redis.sock")
        else:
            if not parts.hostname:
                raise ValueError(f"{scheme}:// needs a host, e.g. {scheme}://127.0.0.1:6379")
            db = parts.path.strip("/")
            if db and not db.isdigit():
                raise ValueError(f"the database is a number (/0), not /{db}")
            if db not in ("", "0") and scheme.lower().endswith("+cluster"):
                raise ValueError("Redis Cluster has only database 0")
        unknown = sorted({k for k, _ in parse_qsl(parts.query)} - _URL_OPTIONS)
        unknown = [k for k in unknown if not k.startswith("ssl_")]
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(unknown)}")
    except ValueError as e:
        raise StoreURLError(f"{redact(url)!r}: {e}") from None


def _receipt_hits(hits: Sequence[Hit]) -> list[int]:
    """Indices of the hits whose charge a usage report may reconcile."""
    return [i for i, h in enumerate(hits) if h.spec.kind is Kind.SUM and h.spec.reconcilable]


async def _roundtrip(conn: Any, cmds: list[Command]) -> list[Any]:
    """Write a packed pipeline and read its replies (errors as exception values).

    Replies are parsed straight from the connection's parser (hiredis when
    installed): the public `read_response` sets up a timeout per reply, which
    cost more than the parse; the caller bounds the whole exchange instead."""
    await conn.send_packed_command(_pack(cmds), check_health=False)
    parser = getattr(conn, "_parser", None)
    read = getattr(parser, "read_response", None)
    if read is None:  # another redis-py layout: the slower public path
        return [await _read_public(conn) for _ in cmds]
    return [await read() for _ in cmds]


async def _read_public(conn: Any) -> Any:
    try:
        return await conn.read_response()
    except ResponseError as e:
        return e
