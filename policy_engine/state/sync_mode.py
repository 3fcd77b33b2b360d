"""How a shared store's limits are kept in step: exact (every decision on Redis) or
batched (local-first: decided from local counters, deltas exchanged every N ms).

    store_sync = "batched:50ms"                       # the deployment's default
    store_sync_limits = {daily_tokens = "batched"}     # per limit or measure

In batched mode measures and `count` and `distinct` limits are batched and
`sum` limits (budgets) stay exact unless named here: a budget that must never
be exceeded keeps its round trip. The overshoot bound is in docs/limits.md ("Local-first limits").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from .base import Kind, LimitSpec

SyncChoice = Literal["exact", "batched"]

_BATCHED = re.compile(r"batched:(\d+(?:\.\d+)?)(ms|s)")
MIN_INTERVAL = 0.001  # seconds
MAX_INTERVAL = 60.0


@dataclass(frozen=True, slots=True)
class SyncMode:
    """`interval`: seconds between two exchanges with the shared store; None: exact."""

    interval: float | None = None
    limits: Mapping[str, SyncChoice] = field(default_factory=dict)
    # One process owns every key (a replay): a usage report's receipt is never elsewhere.
    solo: bool = False

    @property
    def batched(self) -> bool:
        """Some limit may be decided locally (the store is wrapped in a local-first store)."""
        return self.interval is not None or "batched" in self.limits.values()

    def is_batched(self, spec: LimitSpec) -> bool:
        choice = self.limits.get(spec.id)
        if choice is not None:
            return choice == "batched"
        return self.interval is not None and (spec.kind is not Kind.SUM or spec.measure)

    def describe(self) -> str:
        if self.interval is None and not self.limits:
            return "exact"
        head = "exact" if self.interval is None else f"batched:{self.interval * 1000:g}ms"
        if not self.limits:
            return head
        return head + " (" + ", ".join(f"{k}={v}" for k, v in sorted(self.limits.items())) + ")"


def parse_interval(text: str) -> float | None:
    """`exact` -> None; `batched:50ms` / `batched:0.5s` -> seconds. ValueError otherwise."""
    t = text.strip()
    if t == "exact":
        return None
    m = _BATCHED.fullmatch(t)
    if m is None:
        raise ValueError(f"store sync {text!r}: expected `exact` or `batched:<N>ms` (e.g. batched:50ms)")
    seconds = float(m.group(1)) / (1000.0 if m.group(2) == "ms" else 1.0)
    if not MIN_INTERVAL <= seconds <= MAX_INTERVAL:
        raise ValueError(f"store sync {text!r}: the interval must be between 1ms and 60s")
    return seconds


def parse_sync(default: str, limits: Mapping[str, str] | None = None) -> SyncMode:
    """The mode from its settings; ValueError naming what is wrong."""
    interval = parse_interval(default)
    chosen: dict[str, SyncChoice] = {}
    for name, choice in (limits or {}).items():
        if choice not in ("exact", "batched"):
            raise ValueError(f"store sync of limit {name!r}: {choice!r} is neither `exact` nor `batched`")
        chosen[name] = "exact" if choice == "exact" else "batched"
    if interval is None and "batched" in chosen.values():
        raise ValueError(
            'a limit is batched but store_sync is `exact`: set store_sync = "batched:<N>ms" to give the interval'
        )
    return SyncMode(interval, chosen)
