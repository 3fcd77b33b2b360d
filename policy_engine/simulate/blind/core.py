"""The blind world's building blocks: accounts, requests, prompts, time, merging.

An actor (a person, a backend, a campaign worker) is a lazily created iterator
of `Req` in time order; `lazy_merge` merges actors (and, inside an actor, its
sessions) by timestamp, creating each iterator only when its start time comes
up, so memory holds the active sessions, never the day.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from policy_engine.simulate.blind.lexicon import CHARS_PER_TOKEN
from policy_engine.simulate.network import Endpoint

T = TypeVar("T")

DAY = 86_400.0
HOUR = 3_600.0
MINUTE = 60.0

# Rendered prompts longer than this keep their head and tail; the middle is
# replaced by a marker, and the token counts still describe the whole prompt.
RENDER_LIMIT = 6_000
HEAD_CHARS = 2_000
TAIL_CHARS = 2_500
# A resent agent or document context shows less: its head is the same for every
# request of a session, and files a day long stay manageable.
CONTEXT_HEAD_CHARS = 1_000
CONTEXT_TAIL_CHARS = 1_000


# --- identities -------------------------------------------------------------


class Ids:
    """Opaque ids: a keyed hash of (seed, population, kind, index), so nothing in
    an id says who owns it and the same world always gets the same ids."""

    def __init__(self, seed: int) -> None:
        self._key = f"blind-world|{seed}".encode()

    def make(self, prefix: str, *parts: object) -> str:
        h = hashlib.blake2b("|".join(map(str, (prefix, *parts))).encode(), key=self._key[:64], digest_size=8)
        return f"{prefix}-{h.hexdigest()}"


@dataclass(slots=True)
class Account:
    id: str
    org: str
    signup_ts: float
    verification: str  # none | email | phone | kyc
    tier: str  # free | pro | enterprise
    payment: str | None
    labels: tuple[str, ...]
    scopes: tuple[str, ...]
    keys: tuple[str, ...]
    population: str
    campaign: str | None = None


# --- prompts ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prompt:
    """What the gateway sees: the text (possibly elided in the middle), the
    length of the whole prompt in characters, and its real token count."""

    text: str
    chars: int
    tokens: int


def tokens_of(text: str, lang: str = "en") -> int:
    return max(1, round(len(text) / CHARS_PER_TOKEN.get(lang, 3.5)))


def prompt(text: str, lang: str = "en") -> Prompt:
    return Prompt(text, len(text), tokens_of(text, lang))


def join(*parts: Prompt, sep: str = "\n\n") -> Prompt:
    """Concatenate prompts; elide the middle when the result is long."""
    text = sep.join(p.text for p in parts)
    chars = sum(p.chars for p in parts) + len(sep) * (len(parts) - 1)
    tokens = sum(p.tokens for p in parts)
    return elide(text, chars, tokens)


def elide(text: str, chars: int, tokens: int) -> Prompt:
    if len(text) <= RENDER_LIMIT:
        return Prompt(text, chars, tokens)
    return Prompt(
        f"{text[:HEAD_CHARS]}\n[... {chars - HEAD_CHARS - TAIL_CHARS:,} characters omitted ...]\n{text[-TAIL_CHARS:]}",
        chars,
        tokens,
    )


def context_prompt(head: Prompt, history_chars: int, history_tokens: int, tail: Prompt) -> Prompt:
    """A long conversation: `head` (system prompt, tools), a history known only
    by its size, and the newest `tail`; rendered as head + marker + tail."""
    chars = head.chars + history_chars + tail.chars + 4
    tokens = head.tokens + history_tokens + tail.tokens
    h = head.text[:CONTEXT_HEAD_CHARS]
    t = tail.text[-CONTEXT_TAIL_CHARS:]
    omitted = chars - len(h) - len(t)
    return Prompt(f"{h}\n[... {omitted:,} characters omitted ...]\n{t}", chars, tokens)


# --- requests ---------------------------------------------------------------


@dataclass(slots=True)
class Req:
    ts: float
    account: Account
    key: str
    ep: Endpoint
    ua: str
    model: str
    prompt: Prompt
    max_tokens: int
    completion: int
    population: str  # truth: usually the account's, but a resold account carries others' traffic


def completion(rng: random.Random, median: float, sigma: float, max_tokens: int, floor: int = 1) -> int:
    """A lognormal completion length, cut at max_tokens (a truncated answer)."""
    return max(floor, min(max_tokens, round(rng.lognormvariate(math.log(median), sigma))))


# --- time -------------------------------------------------------------------

# Relative activity by local hour (0-23).
PROFILES: dict[str, tuple[float, ...]] = {
    # people at work: office hours, a lunch dip, a little evening
    "work": (
        0.04,
        0.03,
        0.02,
        0.02,
        0.02,
        0.04,
        0.10,
        0.30,
        0.65,
        0.90,
        1.0,
        0.95,
        0.75,
        0.90,
        1.0,
        0.95,
        0.85,
        0.60,
        0.35,
        0.25,
        0.20,
        0.15,
        0.10,
        0.06,
    ),
    # developers and researchers: late mornings to late evenings
    "dev": (
        0.25,
        0.15,
        0.08,
        0.05,
        0.04,
        0.05,
        0.08,
        0.18,
        0.40,
        0.65,
        0.85,
        0.95,
        0.85,
        0.95,
        1.0,
        1.0,
        0.95,
        0.85,
        0.75,
        0.70,
        0.75,
        0.70,
        0.55,
        0.40,
    ),
    # consumers: evenings
    "leisure": (
        0.35,
        0.22,
        0.12,
        0.07,
        0.05,
        0.06,
        0.12,
        0.25,
        0.38,
        0.48,
        0.55,
        0.60,
        0.65,
        0.62,
        0.62,
        0.65,
        0.70,
        0.78,
        0.88,
        0.97,
        1.0,
        0.95,
        0.80,
        0.55,
    ),
    # students: daytime and late nights
    "student": (
        0.45,
        0.35,
        0.22,
        0.10,
        0.05,
        0.05,
        0.08,
        0.20,
        0.45,
        0.70,
        0.85,
        0.90,
        0.80,
        0.90,
        0.95,
        0.95,
        0.90,
        0.80,
        0.75,
        0.80,
        0.90,
        1.0,
        0.90,
        0.70,
    ),
    # machines with a slight daytime lean (a backend serving a region)
    "backend": (
        0.45,
        0.40,
        0.38,
        0.36,
        0.36,
        0.40,
        0.50,
        0.65,
        0.80,
        0.92,
        1.0,
        1.0,
        0.98,
        1.0,
        1.0,
        0.98,
        0.94,
        0.88,
        0.80,
        0.72,
        0.66,
        0.60,
        0.54,
        0.50,
    ),
    "flat": (1.0,) * 24,
}


def intensity(profile: str, ts: float, tz_hours: float) -> float:
    local = ((ts / HOUR) + tz_hours) % 24.0
    p = PROFILES[profile]
    i = int(local)
    frac = local - i
    return p[i] * (1 - frac) + p[(i + 1) % 24] * frac


def sample_time(rng: random.Random, start: float, end: float, profile: str, tz_hours: float) -> float:
    """A time in [start, end) with density following the local-time profile."""
    for _ in range(200):
        t = rng.uniform(start, end)
        if rng.random() < intensity(profile, t, tz_hours):
            return t
    return rng.uniform(start, end)


@dataclass(frozen=True, slots=True)
class Window:
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start

    @property
    def days(self) -> float:
        return self.seconds / DAY

    def at(self, fraction: float) -> float:
        return self.start + fraction * self.seconds


# --- models -----------------------------------------------------------------

LARGE, MEDIUM, SMALL = "frontier-large-2025-08", "frontier-medium-2025-08", "frontier-small-2025-05"
NEW_LARGE = "frontier-large-2025-11"


@dataclass(frozen=True, slots=True)
class Models:
    """The served models and the release of a new one partway through the window."""

    release_ts: float

    def pick(
        self, rng: random.Random, ts: float, weights: tuple[float, float, float], adopt: float, adopt_hours: float
    ) -> str:
        """A model for a request at `ts`: base weights over (large, medium, small);
        after the release, a share rising to `adopt` (time constant
        `adopt_hours`) moves to the new model."""
        if ts >= self.release_ts and adopt > 0:
            share = adopt * (1.0 - math.exp(-(ts - self.release_ts) / (adopt_hours * HOUR)))
            if rng.random() < share:
                return NEW_LARGE
        r = rng.random() * sum(weights)
        if r < weights[0]:
            return LARGE
        return MEDIUM if r < weights[0] + weights[1] else SMALL


# --- merging ----------------------------------------------------------------

Factory = Callable[[], Iterator[Req]]


def lazy_merge(starts: Iterable[tuple[float, Factory]]) -> Iterator[Req]:
    """Merge iterators of `Req` by time. `starts` yields (start, factory) in
    non-decreasing start order; each factory's requests are all at or after
    its start. An iterator is created only when its start comes up; ties keep
    the order of `starts`, so the merge is deterministic."""
    heap: list[tuple[float, int, Req, Iterator[Req]]] = []
    order = 0
    pending = iter(starts)
    nxt = next(pending, None)
    while heap or nxt is not None:
        while nxt is not None and (not heap or nxt[0] <= heap[0][0]):
            it = nxt[1]()
            first = next(it, None)
            if first is not None:
                heapq.heappush(heap, (first.ts, order, first, it))
                order += 1
            nxt = next(pending, None)
        if not heap:
            continue
        ts, o, req, it = heap[0]
        yield req
        following = next(it, None)
        if following is None:
            heapq.heappop(heap)
        else:
            if following.ts < ts:
                raise AssertionError(f"an actor went back in time ({following.ts} < {ts})")
            heapq.heapreplace(heap, (following.ts, o, following, it))


def budget_split(rng: random.Random, total: float, weights: list[float]) -> list[int]:
    """Integer shares of `total` proportional to `weights`, rounded at random so
    the expected share is exact and small actors sometimes get nothing."""
    wsum = sum(weights) or 1.0
    out = []
    for w in weights:
        x = total * w / wsum
        n = int(x)
        out.append(n + (1 if rng.random() < x - n else 0))
    return out


def heavy_weights(rng: random.Random, n: int, alpha: float) -> list[float]:
    """Pareto weights: a few actors carry most of the volume."""
    return [rng.paretovariate(alpha) for _ in range(n)]


def pick(rng: random.Random, items: Sequence[tuple[T, float]]) -> T:
    """One item of (item, weight) pairs, with probability proportional to its weight."""
    r = rng.random() * sum(w for _, w in items)
    for item, w in items:
        r -= w
        if r < 0:
            return item
    return items[-1][0]
