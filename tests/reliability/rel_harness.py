"""Load generation for the reliability tests (the served process: `served.Served`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from policy_engine.client import CheckResult, PolicyClient

VERIFIED = {"age_days": 30, "verification": "kyc", "tier": "pro"}


def ctx(account: str, **request: Any) -> dict[str, Any]:
    return {
        "account": {**VERIFIED, "id": account},
        "api_key": {"id": "key-1"},
        "request": {"model": "m", "prompt": "hello", **request},
    }


@dataclass
class Call:
    start: float  # monotonic
    seconds: float
    result: CheckResult | None = None
    error: grpc.StatusCode | None = None
    thread: int = 0


@dataclass
class Load:
    """`threads` clients, each on its own channel, calling Check back to back until stopped."""

    target: str
    threads: int = 8
    timeout: float = 1.0
    make_ctx: Callable[[int, int], dict[str, Any]] = lambda t, i: ctx(f"acct-{t}")
    calls: list[Call] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _run(self, t: int) -> None:
        with PolicyClient(self.target, timeout=self.timeout) as pe:
            i = 0
            while not self._stop.is_set() and i < 1_000_000:
                c = Call(time.monotonic(), 0.0, thread=t)
                try:
                    c.result = pe.check(self.make_ctx(t, i))
                except grpc.RpcError as e:
                    c.error = e.code()
                    self._stop.wait(0.01)  # a refusing server is not hammered in a busy loop
                c.seconds = time.monotonic() - c.start
                with self._lock:
                    self.calls.append(c)
                i += 1

    def __enter__(self) -> Load:
        self._workers = [threading.Thread(target=self._run, args=(t,), daemon=True) for t in range(self.threads)]
        for w in self._workers:
            w.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for w in self._workers:
            w.join(30)

    def between(self, t0: float, t1: float) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if t0 <= c.start < t1]


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else 0.0
