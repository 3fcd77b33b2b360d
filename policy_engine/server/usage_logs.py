"""Usage reports from proxies' JSON access logs (nginx, Caddy, Traefik), followed like `tail -F`.

A proxy in front of the model writes one JSON line per finished call with the
engine's request id and the upstream's usage headers (the reference configs in
deploy/ say how); each line with both becomes a usage report, so a token budget
holds what the model produced. Reading starts at the end of the file (lines
written before the engine started are not replayed), follows rotation (a new
file under the name) and truncation, and never blocks the event loop: reads run
in a thread, at most `max_read` bytes per poll.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from policy_engine.ingress.usage import DEFAULT_USAGE_HEADERS, LoggedUsage, Usage, UsageHeaders, usage_from_log
from policy_engine.tasks import cancel_and_wait

log = logging.getLogger("policy_engine.server")

Report = Callable[[str, Usage], Awaitable[bool]]
MAX_LINE = 64 << 10  # a longer line is not an access-log entry of ours: skipped


class LogFollower:
    """Follows one file; `poll` reads what was appended since the last poll."""

    def __init__(self, path: Path, max_read: int = 1 << 20) -> None:
        self.path = path
        self.max_read = max_read
        self._inode: int | None = None
        self._offset = 0
        self._partial = b""
        self._skipping = False  # inside an over-long line
        try:
            st = os.stat(path)
            self._inode, self._offset = st.st_ino, st.st_size
        except OSError:
            pass  # not there yet: read it from its start once it appears

    def _read(self) -> bytes:
        try:
            st = os.stat(self.path)
        except OSError:
            return b""
        if st.st_ino != self._inode or st.st_size < self._offset:
            self._inode, self._offset, self._partial, self._skipping = st.st_ino, 0, b"", False
        if st.st_size == self._offset:
            return b""
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read(self.max_read)
        self._offset += len(data)
        return data

    def lines(self, data: bytes) -> list[bytes]:
        """The complete lines of `data` after what was left over from the last read."""
        *done, rest = (self._partial + data).split(b"\n")
        if self._skipping and done:
            done, self._skipping = done[1:], False
        if len(rest) > MAX_LINE:
            rest, self._skipping = b"", True
        self._partial = rest
        return [line for line in done if line.strip() and len(line) <= MAX_LINE]

    async def poll(self) -> list[bytes]:
        return self.lines(await asyncio.to_thread(self._read))


class UsageLogs:
    """Follows every configured access log and reports the usage its lines carry."""

    def __init__(
        self,
        paths: list[Path],
        report: Report,
        headers: UsageHeaders = DEFAULT_USAGE_HEADERS,
        poll_seconds: float = 0.1,
    ) -> None:
        self.followers = [LogFollower(p) for p in paths]
        self.report = report
        self.headers = headers
        self.poll_seconds = poll_seconds
        self.applied = 0
        self.skipped = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.followers and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="usage-logs")

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            for f in self.followers:
                try:
                    for line in await f.poll():
                        await self.line(line)
                except OSError as e:
                    log.warning("usage log %s: %s", f.path, e)
            await asyncio.sleep(self.poll_seconds)

    def entry(self, line: bytes) -> LoggedUsage | None:
        try:
            doc = json.loads(line)
        except ValueError:
            return None
        return usage_from_log(doc, self.headers)

    async def line(self, line: bytes) -> None:
        found = self.entry(line)
        if found is None:
            self.skipped += 1
            return
        try:
            if await self.report(found.request_id, found.usage):
                self.applied += 1
        except Exception as e:  # noqa: BLE001 - one lost report must not stop the follower
            log.warning("usage log: report for %s failed: %s: %s", found.request_id, type(e).__name__, e)
