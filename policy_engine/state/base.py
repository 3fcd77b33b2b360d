"""The store interface every limit store implements (memory, Redis).

The engine turns each `limit` a request touches into a `Hit`; the store answers,
atomically per hit, whether the request fits under the limit's maximum, and
commits the charges of an admitted request in the same call. The semantics are
written down in docs/limits.md and proven against every store by
tests/engine/test_store_contract.py.
"""

from __future__ import annotations

import abc
import datetime as dt
import enum
import math
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal, Protocol

import xxhash


class Kind(enum.Enum):
    COUNT = "count"  # requests per key per window
    SUM = "sum"  # a cost per key per window (token budgets)
    DISTINCT = "distinct"  # distinct values of an expression per key per window


class Record(enum.Enum):
    """What a limit charges for."""

    ADMITTED = "admitted"  # only requests that the whole policy admits (budgets; the default)
    ATTEMPTS = "attempts"  # every request the limit applies to, denied or not (detection counters)


class FailMode(enum.Enum):
    OPEN = "open"  # store error: the limit is treated as not exceeded
    CLOSED = "closed"  # store error: the limit is treated as exceeded


@dataclass(frozen=True, slots=True)
class Period:
    """One calendar period: its index (consecutive periods have consecutive
    indices) and its bounds in seconds since the epoch, `start <= t < end`."""

    index: int
    start: float
    end: float


@dataclass(frozen=True, eq=True)
class Calendar:
    """A calendar window: a day, an ISO week (from Monday) or a month of the
    local calendar of an IANA time zone, reset at local midnight. Stores ask
    it for the period holding `now`; the last answer is cached, so that
    all but one request per period cost two comparisons."""

    unit: Literal["day", "week", "month"]
    zone: str = "UTC"
    _tz: zoneinfo.ZoneInfo = field(init=False, repr=False, compare=False)
    _last: list[Period] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.unit not in ("day", "week", "month"):
            raise ValueError(f"calendar window: unknown unit {self.unit!r} (day, week or month)")
        object.__setattr__(self, "_tz", zoneinfo.ZoneInfo(self.zone))
        object.__setattr__(self, "_last", [Period(0, 0.0, 0.0)])

    def __str__(self) -> str:
        return f'calendar {self.unit} in "{self.zone}"'

    def period(self, now: float) -> Period:
        last = self._last[0]
        if last.start <= now < last.end:
            return last
        p = self._compute(now)
        self._last[0] = p
        return p

    def _compute(self, now: float) -> Period:
        day = dt.datetime.fromtimestamp(now, self._tz).date()
        if self.unit == "day":
            first, nxt = day, day + dt.timedelta(days=1)
            index = first.toordinal()
        elif self.unit == "week":
            first = day - dt.timedelta(days=day.weekday())
            nxt = first + dt.timedelta(days=7)
            index = first.toordinal() // 7  # Mondays are the ordinals 7k + 1
        else:
            first = day.replace(day=1)
            nxt = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
            index = first.year * 12 + first.month - 1
        return Period(index, self._midnight(first), self._midnight(nxt))

    def _midnight(self, day: dt.date) -> float:
        """The instant a local day starts. Where midnight is skipped (a DST change at
        00:00) the day starts at the change: fold=0 reads a skipped time with the
        offset in force before it, which lands exactly on the change."""
        return dt.datetime(day.year, day.month, day.day, tzinfo=self._tz).timestamp()


@dataclass(frozen=True, slots=True)
class LimitSpec:
    """The static part of a limit, fixed when the policy is compiled."""

    id: str  # the limit's name in the policy
    kind: Kind
    window: float  # seconds, 1 to 30 days; a calendar window's longest period
    record: Record = Record.ADMITTED
    fail: FailMode = FailMode.OPEN
    reconcilable: bool = False  # SUM with a `usage` clause: its charges keep a receipt for `reconcile`
    calendar: Calendar | None = None  # a calendar window instead of a sliding one
    measure: bool = False  # a policy's measure (counts, never refuses), not a limit
    # The store keeps amounts in 1/scale units. A `sum` of decimals (money) is kept in
    # whole micro-units (DECIMAL_SCALE), so that adding up charges never drifts and every
    # store, adding integers exactly in doubles, gives the same answer to the unit.
    scale: int = 1
    # COUNT/SUM limits and measures with the same key expression share one group (set by
    # the compiler from the key as written): the memory store keeps their counters, each
    # limit's its own, in one entry per key, looked up once per store call. None: an entry
    # of its own. Other stores keep one entry per limit either way.
    group: str | None = None


# Units per 1 of a decimal `sum`: micro-units (a millionth of a dollar). Exact up to 2**53
# units: 9 billion per key and window.
DECIMAL_SCALE = 1_000_000


def to_units(value: float, scale: int) -> float:
    """An amount as the store keeps it: whole units (rounded half to even) when scaled."""
    return value if scale == 1 else float(round(value * scale))


@dataclass(slots=True)
class Hit:
    """One limit applied to one request."""

    spec: LimitSpec
    key: str  # rendered key expression, e.g. "acct-42" or "org-7|64500"
    maximum: float  # the limit's max for this request (may depend on tier)
    amount: float = 1.0  # COUNT: 1; SUM: the estimated cost; DISTINCT: unused
    member: str | None = None  # DISTINCT: the value whose distinct count is limited; None: a read
    enforce: bool = True  # False for shadow and flag-only limits: never blocks the request


@dataclass(slots=True)
class HitResult:
    used: float  # usage in the window, including this request when committed
    remaining: float  # max(0, maximum - used)
    reset: float  # seconds until enough of the window slides out to admit one more unit
    over: bool  # this request does not fit under the maximum
    committed: bool  # the charge was recorded
    error: str | None = None  # the store failed; the engine applies the limit's fail mode


DEFAULT_DEADLINE = 0.05  # seconds a store call may take on the request path
DEFAULT_RECEIPT_TTL = 3600.0  # seconds: usage reports arrive seconds after the call; later ones are ignored


class SyncStore(Protocol):
    """The synchronous API of a store that answers without I/O (the memory store):
    the engine calls it directly, with no task, timer or event-loop turn."""

    def acquire_sync(
        self, hits: Sequence[Hit], now: float, *, admitted: bool = True, request_id: str | None = None
    ) -> list[HitResult]: ...

    def reconcile_sync(self, request_id: str, actual: dict[str, float], now: float) -> bool: ...


class StoreUnavailable(Exception):
    """`Store.check` could not reach the store; the message says what failed."""


class StoreUnsupported(Exception):
    """The store does not offer an optional operation (preview, reset)."""


class Store(abc.ABC):
    """A limit store. Backends are opened by URL (state/factory.py) and proven by
    tests/engine/test_store_contract.py.

    `acquire` is the only call on the request path. For each hit it decides
    `over` atomically against the current window, then commits:
      * a hit with Record.ATTEMPTS is always committed (its own `over` included);
      * a hit with Record.ADMITTED is committed only when the request is admitted:
        `admitted` is True (no rule denied it already) and no hit with
        `enforce=True` is over. A request denied by one limit does not consume
        the budget of the others.
    A *read* reports a key's current usage and writes nothing (no charge, no
    key created, no receipt): a COUNT or SUM hit with `amount` 0 and
    Record.ADMITTED in a call with `admitted=False`, or a DISTINCT hit without
    a `member` (never committed, whatever its record). Measures use reads for
    the requests they do not apply to.
    Committed SUM hits of `reconcilable` limits are remembered under `request_id`
    (bounded, for `receipt_ttl` or two windows of the longest such limit,
    whichever is shorter) so that `reconcile` can add or refund the difference
    between estimate and actual usage, once per request id.
    """

    backend: ClassVar[str]  # the name summaries and logs show: "memory", "redis"
    # What the server says requests get while the store does not answer (server/store_health.py).
    # Answers come from this process's memory (local-first): a decision proves nothing about
    # the shared store's health; only the probe says when it is back (server/store_health.py).
    local_answers: ClassVar[bool] = False
    on_outage: ClassVar[str] = (
        "each limit applies its fail mode (on_error, open unless the policy says closed) "
        "and measures read null until it answers"
    )

    @abc.abstractmethod
    async def acquire(
        self, hits: Sequence[Hit], now: float, *, admitted: bool = True, request_id: str | None = None
    ) -> list[HitResult]: ...

    @abc.abstractmethod
    async def reconcile(self, request_id: str, actual: dict[str, float], now: float) -> bool:
        """Apply actual costs (limit id -> cost) to the SUM charges made for request_id.

        Returns False when nothing is pending for that id (unknown, expired, or
        already reconciled): a duplicate report counts once."""

    async def reconcile_all(self, request_ids: Sequence[str], actual: dict[str, float], now: float) -> bool:
        """`reconcile` for each of one report's receipts (a request's limits and its
        measure levels charge different keys); True if any was pending. A shared
        store overrides it to settle them together (RedisStore: two round trips)."""
        applied = False
        for rid in request_ids:
            applied = bool(await self.reconcile(rid, actual, now)) or applied
        return applied

    @abc.abstractmethod
    async def close(self) -> None: ...

    def acquire_nowait(
        self, hits: Sequence[Hit], now: float, *, admitted: bool = True, request_id: str | None = None
    ) -> list[HitResult] | None:
        """`acquire`'s answer when it needs no I/O for these hits (a local-first store's
        batched limits), else None: the engine then awaits `acquire`."""
        return None

    def as_sync(self) -> SyncStore | None:
        """The synchronous API, for a store that answers without I/O; None otherwise."""
        return None

    async def check(self) -> None:
        """Raise StoreUnavailable unless the store answers (a tool checks before it starts)."""
        return None  # a store without I/O always answers

    async def preview(self, hits: Sequence[Hit], now: float, *, admitted: bool = True) -> list[HitResult]:
        """What `acquire` would answer, writing nothing: the same `used`, `remaining`,
        `reset` and `over`, and `committed` saying whether the charge *would* be
        recorded. No receipt is kept. For dry runs (the admin service)."""
        raise StoreUnsupported(f"the {self.backend} store cannot preview a request")

    async def reset(self, spec: LimitSpec, key: str) -> bool:
        """Forget the state of one key of a limit or measure (its window starts
        afresh); False when it held nothing. For operators (the admin service)."""
        raise StoreUnsupported(f"the {self.backend} store cannot reset a key")

    async def flush(self) -> None:
        """Delete all the state this store holds (under its prefix, on a shared store):
        for scratch stores such as a replay's and for tests, never a live one."""
        return None  # nothing to delete unless the store keeps state


# --- Window arithmetic -------------------------------------------------------
# The one Python copy of the math every store shares. lua/acquire.lua and
# lua/adjust.lua mirror it expression by expression (same operations in the same
# order on IEEE doubles), so memory and Redis give bit-identical answers; see
# docs/limits.md for the semantics and the error bounds.

SKETCH_K = 1024  # DISTINCT: exact up to K members per bucket, then K smallest hashes (KMV)
HASH_BITS = 52  # member hashes are 52-bit so that they are exact in a double (Lua, Redis scores)
HASH_SPACE = float(1 << HASH_BITS)


def bucket_of(now: float, window: float) -> int:
    """Index of the fixed bucket (of width `window`) that holds `now`."""
    return math.floor(now / window)


def spec_bucket(spec: LimitSpec, now: float) -> int:
    """The bucket a charge at `now` goes into: the calendar period's index, or the sliding bucket."""
    cal = spec.calendar
    return cal.period(now).index if cal is not None else bucket_of(now, spec.window)


# A calendar window has no previous bucket to slide out of: the elapsed fraction
# used in its arithmetic is 1, so that `usage` counts none of the previous period
# (prev × 0) and the rest of the math is shared unchanged.
CALENDAR_FRACTION = 1.0


def calendar_reset(used: float, allowed: float, now: float, end: float) -> float:
    """Seconds until a calendar window has room for the request: none when it
    fits, else until the period ends (nothing slides out before)."""
    return 0.0 if used <= allowed else end - now


def elapsed_fraction(now: float, window: float, bucket: int) -> float:
    """How far `now` is into its bucket, in [0, 1)."""
    return (now - bucket * window) / window


def usage(cur: float, prev: float, frac: float) -> float:
    """Sliding-window estimate: the current bucket plus the part of the previous
    bucket that the window still overlaps, assuming it was spread evenly."""
    return cur + prev * (1.0 - frac)


def reset_after(cur: float, prev: float, frac: float, window: float, allowed: float) -> float:
    """Seconds until usage(cur, prev) falls to `allowed` if no other traffic arrives.

    When `allowed` < 0 (the request is larger than the maximum) it never fits:
    the answer is then the time until the window is empty."""
    if cur + prev * (1.0 - frac) <= allowed:
        return 0.0
    if cur <= allowed:  # the previous bucket slides out far enough within this bucket
        return (1.0 - (allowed - cur) / prev - frac) * window
    if cur <= 0.0:
        return (1.0 - frac) * window
    g = 1.0 - allowed / cur  # fraction of the next bucket after which cur has slid out enough
    if g > 1.0:
        g = 1.0
    return (1.0 - frac + g) * window


def sketch_estimate(size: int, saturated: bool, kth: int) -> float:
    """Distinct count of a bucket sketch: exact while it never dropped a hash,
    else the KMV estimate (K-1)/U_K with U_K the K-th smallest hash in (0, 1]."""
    if not saturated:
        return float(size)
    return (SKETCH_K - 1) * HASH_SPACE / (kth + 1)


def member_hash(member: str) -> int:
    """The 52-bit hash under which a DISTINCT member is stored (xxh64, top bits)."""
    return xxhash.xxh64_intdigest(member.encode("utf-8", "surrogatepass")) >> (64 - HASH_BITS)
