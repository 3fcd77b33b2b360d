"""Hot reload: recompile when a policy or data file changes (watchfiles) or on SIGHUP.

Compilation runs in a worker thread, off the event loop; a new `PolicySet` is
swapped into the engine in one assignment, and requests in flight keep the one
they started with. A broken edit is never loaded: the last good version keeps
serving and the error is kept for `GetPolicy`, logged and counted.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

import watchfiles

from dsl.diagnostics import PolicyError
from policy_engine.engine import Engine
from policy_engine.policyset import PolicySet, load_policy_set
from policy_engine.server.metrics import Metrics
from policy_engine.tasks import cancel_and_wait

log = logging.getLogger("policy_engine.server")


def describe_policy_error(err: Exception) -> str:
    if isinstance(err, PolicyError):
        return str(err)  # every diagnostic, rendered with its file:line:column
    return f"{type(err).__name__}: {err}"


class Reloader:
    def __init__(
        self, engine: Engine, folder: Path, metrics: Metrics, *, watch: bool = True, debounce_ms: int = 200
    ) -> None:
        self.engine = engine
        self.folder = folder
        self.metrics = metrics
        self.watch = watch
        self.debounce_ms = debounce_ms
        self.last_error: str | None = None
        self.last_attempt: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wanted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._watcher: threading.Thread | None = None
        self._stop = threading.Event()
        self.reloads = 0  # completed attempts, for tests and logs

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name="policy-reload")
        if self.watch:
            self._watcher = threading.Thread(target=self._watch, name="policy-watch", daemon=True)
            self._watcher.start()

    async def close(self) -> None:
        self._stop.set()
        await cancel_and_wait(self._task)
        if self._watcher is not None:
            await asyncio.to_thread(self._watcher.join, 5)

    def trigger(self) -> None:
        """Ask for a reload (SIGHUP, a file change); requests arriving together coalesce into one."""
        self._wanted.set()

    # -- work ---------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            await self.reload_now()

    async def reload_now(self) -> bool:
        """Compile the folder in a thread and swap it in; False (old version kept) on error."""
        self.last_attempt = time.time()
        try:
            policy: PolicySet = await asyncio.to_thread(load_policy_set, self.folder)
        except Exception as e:  # noqa: BLE001 - any failure keeps the last good version
            self.last_error = describe_policy_error(e)
            self.reloads += 1
            self.metrics.reloaded("error", self.engine.policy.version)
            log.error("policy reload refused, still serving %s:\n%s", self.engine.policy.version, self.last_error)
            return False
        self.last_error = None
        self.reloads += 1
        if policy.version == self.engine.policy.version:
            self.metrics.reloaded("unchanged", policy.version)
            return True
        old = self.engine.policy.version
        self.engine.swap(policy)
        self.metrics.reloaded("ok", policy.version)
        stages = ", ".join(f"{name} {sec * 1000:.0f} ms" for name, sec in policy.stage_seconds.items())
        log.info(
            "policy reloaded: %s -> %s (%d rules, %d limits; %s)",
            old,
            policy.version,
            len(policy.rules),
            len(policy.limits),
            stages,
        )
        return True

    def _watch(self) -> None:
        try:
            for _changes in watchfiles.watch(
                self.folder, stop_event=self._stop, debounce=self.debounce_ms, raise_interrupt=False
            ):
                loop = self._loop
                if loop is not None and not loop.is_closed():
                    loop.call_soon_threadsafe(self.trigger)
        except Exception:  # noqa: BLE001 - without a watcher, SIGHUP still reloads
            log.exception("policy watcher stopped; SIGHUP still reloads")
