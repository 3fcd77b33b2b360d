"""A TCP proxy on loopback that delays every chunk by a settable latency (or
holds it entirely), run on its own event loop in a thread; put it between the
engine and Redis to make Redis slow without touching Redis."""

from __future__ import annotations

import asyncio
import threading


class LatencyProxy:
    def __init__(self, upstream_port: int, delay: float = 0.0) -> None:
        self.upstream_port = upstream_port
        self.delay = delay  # seconds added to each chunk, each direction; change at any time
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="latency-proxy", daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def __enter__(self) -> LatencyProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._client, "127.0.0.1", 0), self._loop
        ).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        async def down() -> None:
            assert self._server is not None
            self._server.close()
            for t in list(self._tasks):
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(down(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        pair = [asyncio.create_task(self._pump(reader, up_w)), asyncio.create_task(self._pump(up_r, writer))]
        self._tasks.update(pair)
        await asyncio.wait(pair, return_when=asyncio.FIRST_COMPLETED)
        for t in pair:
            t.cancel()
            self._tasks.discard(t)
        for w in (writer, up_w):
            w.close()

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        # Order is kept: each chunk waits its delay before the next is read.
        while data := await src.read(65536):
            if self.delay > 0:
                await asyncio.sleep(self.delay)
            dst.write(data)
            await dst.drain()
