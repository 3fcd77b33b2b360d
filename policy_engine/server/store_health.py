"""Whether the limit store answers, said out loud: logs, health, GetPolicy, metrics.

The request path reports each decision's store outcome (`failed(error)` when a
limit or measure could not be read, `answered()` when the store answered); a
probe (`Store.check`) runs every `probe_seconds` too, so that an idle server
notices an outage and a recovery. While the store fails, the server keeps
serving: each limit applies its fail mode.

Logging is loud but bounded: a warning when the store starts failing and one
when it recovers; while it keeps failing, a reminder at most every
`remind_seconds`; a store that flaps logs its next failure only after
`quiet_seconds`, counting the failures it did not log.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from policy_engine.state.base import Store, StoreUnavailable
from policy_engine.tasks import cancel_and_wait

log = logging.getLogger("policy_engine.store")


class StoreState(enum.Enum):
    UNKNOWN = "unknown"  # not asked yet
    OK = "ok"
    FAILING = "failing"


@dataclass(frozen=True, slots=True)
class StoreStatus:
    """What GetPolicy and `policyctl client status` show."""

    backend: str
    url: str  # the password, if any, redacted
    state: StoreState
    last_error: str | None
    failing_since: float | None  # unix time
    errors: int  # failed store calls since the server started
    outages: int  # times the store went from answering to failing


class StoreHealth:
    def __init__(
        self,
        store: Store,
        url: str,
        *,
        remind_seconds: float = 60.0,
        quiet_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.url = url
        self.remind_seconds = remind_seconds
        self.quiet_seconds = quiet_seconds
        self.clock = clock
        self.state = StoreState.UNKNOWN
        self.failing = False  # read on every decision: a plain bool
        self.last_error: str | None = None
        self.failing_since: float | None = None
        self.errors = 0
        self.outages = 0
        self._since_mono = 0.0
        self._errors_at_warning = 0
        self._errors_at_outage = 0
        self._warned_at: float | None = None  # monotonic time of the last warning
        self._announced = False  # a failure was logged and its recovery not yet
        self._listeners: list[Callable[[StoreState], None]] = []
        self._probe: asyncio.Task[None] | None = None

    def on_change(self, listener: Callable[[StoreState], None]) -> None:
        """Call `listener(state)` on every change of state (health, for one)."""
        self._listeners.append(listener)

    # -- reports ------------------------------------------------------------------
    def failed(self, error: str, *, count: int = 1) -> None:
        """`count` store calls failed (each limit's fail mode was applied)."""
        self.errors += count
        self.last_error = error
        now = self.clock()
        if not self.failing:
            first_contact = self.state is StoreState.UNKNOWN
            if self.state is StoreState.OK:
                self.outages += 1
            self.failing, self.failing_since, self._since_mono = True, time.time(), now
            self._errors_at_outage = self.errors - count
            self._set(StoreState.FAILING)
            if self._warned_at is None or now - self._warned_at >= self.quiet_seconds:
                self._warn_failing(error, first_contact)
        elif not self._announced:  # a flapping store: its failure waited for the quiet time
            if self._warned_at is None or now - self._warned_at >= self.quiet_seconds:
                self._warn_failing(error, False)
        elif now - (self._warned_at or now) >= self.remind_seconds:
            log.warning(
                "limit store %s still failing after %.0fs: %d failed calls since the last warning; last: %s",
                self.url,
                now - self._since_mono,
                self.errors - self._errors_at_warning,
                error,
            )
            self._warned_at, self._errors_at_warning = now, self.errors

    def answered(self) -> None:
        """A store call succeeded."""
        if self.state is StoreState.OK:
            return
        was_failing = self.failing
        self.failing, self.last_error, self.failing_since = False, None, None
        self._set(StoreState.OK)
        if was_failing and self._announced:
            now = self.clock()
            log.warning(
                "limit store %s recovered after %.1fs (%d failed calls); limits are enforced again",
                self.url,
                now - self._since_mono,
                self.errors - self._errors_at_outage,
            )
            self._announced, self._warned_at = False, now
        elif self.errors == 0 and not was_failing:
            log.info("limit store %s answers", self.url)

    def _warn_failing(self, error: str, first_contact: bool) -> None:
        what = "is unreachable at start-up" if first_contact else "is failing"
        log.warning(
            "limit store %s %s: %s; serving on: %s",
            self.url,
            what,
            error,
            self.store.on_outage,
        )
        self._warned_at, self._errors_at_warning, self._announced = self.clock(), self.errors, True

    def _set(self, state: StoreState) -> None:
        self.state = state
        for listener in self._listeners:
            listener(state)

    # -- probing ------------------------------------------------------------------
    async def probe(self) -> None:
        try:
            await self.store.check()
        except StoreUnavailable as e:
            self.failed(str(e))
        else:
            self.answered()

    def start(self, every: float) -> None:
        if every > 0 and self._probe is None:
            self._probe = asyncio.get_running_loop().create_task(self._run(every), name="store-probe")

    async def _run(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            await self.probe()

    async def close(self) -> None:
        await cancel_and_wait(self._probe)
        self._probe = None

    def status(self) -> StoreStatus:
        return StoreStatus(
            self.store.backend, self.url, self.state, self.last_error, self.failing_since, self.errors, self.outages
        )
