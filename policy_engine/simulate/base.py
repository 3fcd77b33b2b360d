"""What every population is made of: accounts, drafts of requests, time, places.

A population makes its accounts (identity, network, user agents, topics) and,
given how many requests an account sends in the window, that account's
requests (`Draft`s). Its parameters were drawn for the seed (see world.py);
the helpers here turn them into times, addresses and token counts.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from policy_engine.simulate import agent_text as agent
from policy_engine.simulate import network as net
from policy_engine.simulate.network import Endpoint
from policy_engine.simulate.world import Int, Range, Uniform, World

MODELS = ("frontier-large", "frontier-small")
DAY = 86400.0
# What people (and surrogates warming up) send to see that a key works.
TEST_PINGS = ("hi", "test", "hello", "ping", "Say OK.", "1+1=?", "Are you there?", "test 123")


@dataclass(frozen=True, slots=True)
class Window:
    """The simulated time span: [start, start + span)."""

    start: float
    span: float

    @property
    def end(self) -> float:
        return self.start + self.span

    def clamp(self, ts: float) -> float:
        return min(max(ts, self.start), self.end - 0.001)


@dataclass(slots=True)
class Account:
    id: str
    population: str
    campaign: str | None
    org: str | None
    created_ts: float  # age_days of a request is (its ts - created_ts) / 1 day
    verification: str
    tier: str
    payment_fingerprint: str | None
    labels: tuple[str, ...]
    keys: tuple[str, ...]
    scopes: tuple[str, ...]
    endpoints: tuple[Endpoint, ...]
    agents: tuple[str, ...]
    tz: float
    topics: tuple[str, ...] = ()
    template: str = ""
    company: str = ""
    # [first, last) active time for accounts that live briefly (surrogates, classes)
    active: tuple[float, float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Draft:
    """One request before it gets its id: what the generator sorts and writes."""

    ts: float
    account: Account
    key: str
    endpoint: Endpoint
    agent: str
    model: str
    prompt: str
    max_tokens: int
    completion_tokens: int
    # the whole prompt's size when `prompt` holds only what the gateway read of it
    context_tokens: int | None = None


class Ids:
    """Opaque ids derived from (seed, kind, population, index): nothing in an id
    reveals the population, and ids don't depend on generation order."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.owner: dict[str, str] = {}

    def make(self, prefix: str, population: str, index: int) -> str:
        source = f"{self.seed}|{prefix}|{population}|{index}"
        out = f"{prefix}-{hashlib.blake2b(source.encode(), digest_size=6).hexdigest()}"
        if self.owner.setdefault(out, source) != source:  # 48 bits: practically never; never merge accounts
            raise RuntimeError(f"id collision for {out}; change the seed")
        return out


# Relative activity per local hour: quiet nights, busy working hours.
DIURNAL = (
    0.15,
    0.1,
    0.08,
    0.08,
    0.1,
    0.15,
    0.3,
    0.55,
    0.8,
    0.95,
    1.0,
    1.0,
    0.9,
    0.95,
    1.0,
    1.0,
    0.95,
    0.85,
    0.7,
    0.6,
    0.55,
    0.45,
    0.35,
    0.25,
)


def local_hour(ts: float, tz: float) -> float:
    return ((ts / 3600.0) + tz) % 24


def diurnal_time(rng: random.Random, w: Window, tz: float, flat: float = 0.0) -> float:
    """A time in the window, denser in local working hours; `flat` in [0,1] mixes
    in a uniform share (backends with users in every time zone)."""
    ts = w.start
    for _ in range(64):  # acceptance >= 8%, so 64 rounds fail with p < 0.005
        ts = w.start + rng.random() * w.span
        if rng.random() < flat + (1.0 - flat) * DIURNAL[int(local_hour(ts, tz))]:
            return ts
    return ts


def hours_time(rng: random.Random, w: Window, tz: float, first_h: float, last_h: float) -> float:
    """A time in the window inside local hours [first_h, last_h): an operator's
    office day. Falls back to any time if the window holds none of those hours."""
    for _ in range(200):
        ts = w.start + rng.random() * w.span
        if first_h <= local_hour(ts, tz) < last_h:
            return ts
    return w.start + rng.random() * w.span


def session_groups(
    rng: random.Random, w: Window, tz: float, n: int, per_session: float, gap_s: float, flat: float = 0.0
) -> list[list[float]]:
    """n times grouped in sessions: a diurnal start, then exponential gaps."""
    out: list[list[float]] = []
    left = n
    while left > 0:
        t = diurnal_time(rng, w, tz, flat)
        size = max(1, min(left, int(rng.expovariate(1.0 / per_session)) + 1))
        group = []
        for _ in range(size):
            group.append(w.clamp(t))
            t += rng.expovariate(1.0 / gap_s) + 1.0
        out.append(group)
        left -= size
    return out


def sessions(
    rng: random.Random, w: Window, tz: float, n: int, per_session: float, gap_s: float, flat: float = 0.0
) -> list[float]:
    return [t for g in session_groups(rng, w, tz, n, per_session, gap_s, flat) for t in g]


def spaced(rng: random.Random, first: float, last: float, n: int, jitter: float) -> list[float]:
    """n times evenly spaced over [first, last) with relative jitter: scripted clients."""
    step = (last - first) / n
    return [first + step * (i + 0.5 + rng.uniform(-jitter, jitter) * 0.5) for i in range(n)]


def tokens(rng: random.Random, median: float, sigma: float, cap: int) -> int:
    return max(1, min(cap, int(rng.lognormvariate(math.log(median), sigma))))


def pick_country(rng: random.Random) -> str:
    codes, weights = zip(*net.BENIGN_COUNTRIES)
    return rng.choices(codes, weights)[0]


def split_sizes(rng: random.Random, total: int, lo: int, hi: int) -> list[int]:
    """Group sizes in [lo, hi] (the last may be smaller) that sum to `total`."""
    out: list[int] = []
    while sum(out) < total:
        out.append(min(rng.randint(lo, max(lo, hi)), total - sum(out)))
    return out


@dataclass(slots=True)
class Places:
    """Where one person connects from, chosen per session: a fixed home address
    (which the ISP may renumber during the day), an office egress shared with
    colleagues, a phone on a carrier NAT pool, a VPN exit, a cloud box."""

    country: str
    home: Endpoint
    weights: dict[str, float]
    office: Endpoint | None = None
    cloud: Endpoint | None = None
    vpn_favourite: int | None = None
    home_changes_at: float | None = None
    new_home: Endpoint | None = None
    abroad: tuple[float, str] | None = None  # (from ts, country): a traveller

    def pick(self, rng: random.Random, world: World, ts: float) -> Endpoint:
        country = self.country
        if self.abroad is not None and ts >= self.abroad[0]:
            country = self.abroad[1]
            if rng.random() < 0.5:
                return world.pools.mobile(rng, country)  # roaming, then hotel or venue wifi
            return net.endpoint(rng, rng.choice(net.nets_or_residential("business", country)))
        hour = local_hour(ts, net.TZ_OFFSET[self.country])
        weights = dict(self.weights)
        if self.office is not None and not 8.5 <= hour < 18.5:
            weights["office"] = weights.get("office", 0.0) * 0.1
        if "mobile" in weights and (7.0 <= hour < 9.5 or 17.0 <= hour < 19.5):
            weights["mobile"] *= 4.0  # on the way to or from work
        kinds = [k for k, v in weights.items() if v > 0]
        if not kinds:
            return self.home
        kind = rng.choices(kinds, [weights[k] for k in kinds])[0]
        if kind == "office" and self.office is not None:
            return self.office
        if kind == "mobile":
            return world.pools.mobile(rng, country)
        if kind == "vpn":
            return world.pools.vpn_exit(rng, self.vpn_favourite)
        if kind == "cloud" and self.cloud is not None:
            return self.cloud
        if self.home_changes_at is not None and self.new_home is not None and ts >= self.home_changes_at:
            return self.new_home
        return self.home


class Population:
    name: ClassVar[str]
    campaign: ClassVar[str | None] = None
    ACCOUNTS: ClassVar[Int]
    SHARE: ClassVar[Uniform]
    PARAMS: ClassVar[dict[str, Range]] = {}

    def __init__(self, rng: random.Random, ids: Ids, window: Window, world: World, params: dict[str, Any]) -> None:
        self.rng, self.ids, self.w, self.world, self.p = rng, ids, window, world, params

    @property
    def is_campaign(self) -> bool:
        return self.campaign is not None

    def make_accounts(self, n: int) -> list[Account]:
        return [self.account(i) for i in range(n)]

    def account(self, i: int) -> Account:
        raise NotImplementedError

    def weight(self, a: Account) -> float:
        """Relative volume of an account within its population."""
        return 1.0

    def requests(self, a: Account, n: int) -> list[Draft]:
        raise NotImplementedError

    # helpers shared by populations
    def _id(self, prefix: str, i: int) -> str:
        return self.ids.make(prefix, self.name, i)

    def _account(self, i: int, **fields: Any) -> Account:
        """Account `i` of this population: what most accounts share (no org, no
        labels, inference only), then `fields`."""
        common: dict[str, Any] = {
            "id": self._id("acct", i),
            "population": self.name,
            "campaign": self.campaign,
            "org": None,
            "labels": (),
            "scopes": ("inference",),
        }
        return Account(**(common | fields))

    def _agent_loop(
        self,
        a: Account,
        k: int,
        t: float,
        steps: int,
        gap: float,
        system: str,
        text: str,
        context: tuple[int, int],
        max_tokens: int,
        model: str,
        spread: float,
        endpoint: Endpoint | None = None,
    ) -> list[Draft]:
        """One agent loop on the account's key and agent `k`: the context (start,
        cap) grows by each step's tool output until the tool compacts it into a
        summary. Needs the population's completion, growth and context-start params."""
        r, p = self.rng, self.p
        ctx, cap = context
        out = []
        for _ in range(steps):
            completion = tokens(r, p["completion_median"], spread, max_tokens)
            out.append(
                self._draft(
                    a,
                    t,
                    text,
                    model,
                    max_tokens,
                    completion,
                    endpoint,
                    context_tokens=ctx,
                    key=a.keys[k],
                    agent=a.agents[k],
                )
            )
            t += r.uniform(0.6, 1.4) * gap
            ctx += tokens(r, p["growth_median"], 0.9, 40_000)
            if ctx > cap:  # compaction: a summary replaces the conversation
                ctx = r.randint(p["ctx_start_min"], p["ctx_start_max"])
                text = agent.transcript(r, agent.compaction_head(r, system), agent.PROMPT_CHAR_CAP)
        return out

    def _keys(self, i: int, count: int) -> tuple[str, ...]:
        return tuple(self._id("key", i * 16 + k) for k in range(count))

    def _created(self, age_days: float) -> float:
        """Creation time of an account `age_days` old when the window starts."""
        return self.w.start - age_days * DAY

    def _draft(
        self,
        a: Account,
        ts: float,
        prompt: str,
        model: str,
        max_tokens: int,
        completion: int,
        endpoint: Endpoint | None = None,
        context_tokens: int | None = None,
        key: str | None = None,
        agent: str | None = None,
    ) -> Draft:
        r = self.rng
        return Draft(
            ts=self.w.clamp(ts),
            account=a,
            key=key or r.choice(a.keys),
            endpoint=endpoint or r.choice(a.endpoints),
            agent=agent or r.choice(a.agents),
            model=model,
            prompt=prompt,
            max_tokens=max_tokens,
            completion_tokens=min(completion, max_tokens),
            context_tokens=context_tokens,
        )

    def _resend(self, d: Draft, delay: float, regenerate: bool) -> Draft:
        """The same request again `delay` seconds later: a retry after a timeout or
        an error (same answer size), or a user's "regenerate" (a new sample)."""
        completion = d.completion_tokens
        if regenerate:
            completion = max(1, min(d.max_tokens, int(completion * self.rng.uniform(0.6, 1.4))))
        return replace(d, ts=self.w.clamp(d.ts + delay), completion_tokens=completion)

    def _with_resends(self, out: list[Draft], rate: float, lo: float = 1.0, hi: float = 20.0) -> list[Draft]:
        """Turn a share `rate` of the requests into resends of the one before (the
        count stays exact): retries and regenerations within seconds."""
        r = self.rng
        for i in range(1, len(out)):
            if r.random() < rate:
                out[i] = self._resend(out[i - 1], r.uniform(lo, hi), regenerate=r.random() < 0.5)
        return out

    def _tester(self, out: list[Draft], share: float) -> None:
        """With probability `share`, the account's first request is a "hi" or a
        "test": someone checking that a new key works."""
        if out and self.rng.random() < share:
            first = min(range(len(out)), key=lambda k: out[k].ts)
            out[first] = replace(
                out[first],
                prompt=self.rng.choice(TEST_PINGS),
                max_tokens=min(out[first].max_tokens, 256),
                completion_tokens=tokens(self.rng, 12, 0.5, 64),
            )

    def _model(self, ts: float, new_share: float, default: str) -> str:
        """`default`, or the newly released model for a share of requests after its release."""
        if ts >= self.world.release_ts and self.rng.random() < new_share:
            return self.world.release_model
        return default
