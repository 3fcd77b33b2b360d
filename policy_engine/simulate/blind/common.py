"""What every population of the blind world shares: drawing parameters,
making accounts, choosing where a person connects from, planning sessions."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from policy_engine.simulate.blind import lexicon as lx
from policy_engine.simulate.blind import nets
from policy_engine.simulate.blind.core import (
    DAY,
    HOUR,
    Account,
    Factory,
    Ids,
    Models,
    Window,
    budget_split,
    intensity,
    pick,
    sample_time,
)
from policy_engine.simulate.network import Endpoint


class Draw:
    """Parameter draws, rounded so `--describe` stays readable."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def u(self, lo: float, hi: float) -> float:
        return round(self.rng.uniform(lo, hi), 4)

    def logu(self, lo: float, hi: float) -> float:
        """Log-uniform: sizes and rates that span orders of magnitude."""
        return round(math.exp(self.rng.uniform(math.log(lo), math.log(hi))), 4)

    def i(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def c(self, options: tuple[str, ...]) -> str:
        return self.rng.choice(options)

    def mix(self, names: tuple[str, ...], concentration: float = 1.0) -> dict[str, float]:
        """Random weights over `names` that sum to 1 (a Dirichlet draw)."""
        g = [self.rng.gammavariate(concentration, 1.0) for _ in names]
        s = sum(g)
        return {n: round(x / s, 4) for n, x in zip(names, g)}


@dataclass(slots=True)
class World:
    """What a population needs from the world it lives in."""

    seed: int
    scale: float
    window: Window
    ids: Ids
    net: nets.Network
    models: Models
    age_median: float = 400.0  # days: the median age of an established honest account
    starts: list[tuple[float, Factory]] = field(default_factory=list)

    def rng(self, *parts: object) -> random.Random:
        return random.Random("|".join(map(str, (self.seed, *parts))))

    def count(self, n: float, minimum: int = 1) -> int:
        """An account count at this world's scale."""
        return max(minimum, round(n * self.scale))

    def add(self, start: float, factory: Factory) -> None:
        if start < self.window.end:
            self.starts.append((start, factory))


# --- accounts ---------------------------------------------------------------


def labels(rng: random.Random) -> tuple[str, ...]:
    """Back-office labels: rare, and unrelated to who the account is."""
    return (rng.choice(lx.LABELS),) if rng.random() < 0.06 else ()


def scopes(rng: random.Random) -> tuple[str, ...]:
    r = rng.random()
    return ("inference",) if r < 0.85 else ("inference", "batch") if r < 0.95 else ("inference", "files")


def verification(rng: random.Random, none: float, phone: float, kyc: float) -> str:
    r = rng.random()
    if r < none:
        return "none"
    if r < none + phone:
        return "phone"
    return "kyc" if r < none + phone + kyc else "email"


def account(
    w: World,
    rng: random.Random,
    population: str,
    index: object,
    *,
    signup_ts: float,
    verif: str,
    tier: str,
    payment: str | None,
    org: str | None = None,
    keys: int = 1,
    campaign: str | None = None,
) -> Account:
    aid = w.ids.make("acct", population, index)
    return Account(
        id=aid,
        org=org or w.ids.make("org", population, index),
        signup_ts=signup_ts,
        verification=verif,
        tier=tier,
        payment=payment,
        labels=labels(rng),
        scopes=scopes(rng),
        keys=tuple(w.ids.make("key", population, index, k) for k in range(max(1, keys))),
        population=population,
        campaign=campaign,
    )


def card(w: World, population: str, index: object) -> str:
    return w.ids.make("pf", population, index)


def signup_before(w: World, age_days: float) -> float:
    """A sign-up time `age_days` before the window starts."""
    return w.window.start - age_days * DAY


def established_age(rng: random.Random, median_days: float, young: float) -> float:
    """Account age at window start: a lognormal body, a share of young accounts."""
    if rng.random() < young:
        return rng.uniform(0.5, 30.0)
    return min(3000.0, rng.lognormvariate(math.log(median_days), 0.9))


def user_agent(rng: random.Random, sdk: float, agent: float) -> str:
    r = rng.random()
    if r < sdk:
        return rng.choice(lx.SDK_AGENTS)
    if r < sdk + agent:
        return rng.choice(lx.AGENT_AGENTS)
    return rng.choice(lx.BROWSER_AGENTS)


def country(rng: random.Random) -> str:
    """Where a developer lives: a coarse share of API developers by country."""
    return pick(rng, _DEV_COUNTRIES)


_DEV_COUNTRIES: tuple[tuple[str, float], ...] = (
    ("US", 0.30),
    ("IN", 0.08),
    ("GB", 0.06),
    ("DE", 0.06),
    ("FR", 0.04),
    ("CA", 0.04),
    ("JP", 0.04),
    ("BR", 0.05),
    ("KR", 0.03),
    ("ES", 0.03),
    ("IT", 0.02),
    ("NL", 0.02),
    ("PL", 0.02),
    ("MX", 0.02),
    ("TR", 0.02),
    ("ID", 0.02),
    ("VN", 0.02),
    ("AU", 0.02),
    ("SG", 0.01),
    ("CH", 0.01),
)
NATIVE_LANG: dict[str, str] = {
    "DE": "de",
    "FR": "fr",
    "ES": "es",
    "IT": "it",
    "BR": "pt",
    "MX": "es",
    "PL": "pl",
    "TR": "tr",
    "JP": "ja",
    "KR": "ko",
    "ID": "id",
    "VN": "vi",
    "CH": "de",
}


# --- where a person connects from -------------------------------------------


@dataclass(slots=True)
class Places:
    """A person's addresses: home (re-leased now and then), their carrier's NAT,
    an office or campus egress shared with colleagues, a VPN exit shared with
    strangers. A session picks one; mobile addresses may change within it."""

    country: str
    home: Endpoint
    office: nets.Pool | None
    p_mobile: float
    p_vpn: float
    p_office: float
    vpn_country: str

    def session(self, rng: random.Random, w: World, ts: float) -> tuple[str, Endpoint]:
        r = rng.random()
        if r < self.p_vpn:
            return "vpn", w.net.vpn_exit(rng, self.vpn_country)
        r -= self.p_vpn
        if self.office is not None and r < self.p_office and intensity("work", ts, nets.TZ.get(self.country, 0)) > 0.5:
            return "office", self.office.pick(rng)
        if rng.random() < self.p_mobile:
            return "mobile", w.net.mobile(rng, self.country)
        if rng.random() < 0.02:  # the ISP re-leased the home address
            self.home = w.net.home(rng, self.country)
        return "home", self.home

    def step(self, rng: random.Random, w: World, kind: str, ep: Endpoint) -> Endpoint:
        """The address for the next request of a session on `ep`."""
        if kind == "mobile" and rng.random() < 0.05:
            return w.net.mobile(rng, self.country)
        return ep


def places(
    rng: random.Random,
    w: World,
    home_country: str,
    office: nets.Pool | None,
    p_mobile: float,
    p_vpn: float,
    p_office: float,
) -> Places:
    vpn_country = home_country if rng.random() < 0.6 else rng.choice(("US", "US", "NL", "DE", "GB", "SG", "JP", "CH"))
    return Places(home_country, w.net.home(rng, home_country), office, p_mobile, p_vpn, p_office, vpn_country)


def office_pool(rng: random.Random, country: str, size: int) -> nets.Pool:
    """An office egress: a business ISP where one is listed, else a home ISP's business line."""
    blocks = nets.where(nets.BUSINESS, country) or nets.where(nets.HOME, country) or nets.where(nets.HOME, "US")
    return nets.Pool(rng, blocks, size)


def cloud_pool(
    rng: random.Random, size: int, asns: tuple[int, ...] | None = None, country: str | None = None
) -> nets.Pool:
    """A backend's NAT gateway: a few addresses in one hosting /24."""
    block = nets.slash24(rng, nets.hosting(rng, asns, country))
    return nets.Pool(rng, [block], size)


# --- planning ---------------------------------------------------------------


def session_sizes(rng: random.Random, n: int, median: float, sigma: float) -> list[int]:
    """Split `n` requests into sessions of lognormal size."""
    out = []
    while n > 0:
        k = min(n, max(1, round(rng.lognormvariate(math.log(max(1.0, median)), sigma))))
        out.append(k)
        n -= k
    return out


def session_starts(rng: random.Random, w: World, sizes: list[int], profile: str, tz: float) -> list[float]:
    return sorted(sample_time(rng, w.window.start, w.window.end, profile, tz) for _ in sizes)


def stream_times(
    rng: random.Random, n: int, window: Window, profile: str, tz: float, shape: float = 1.0, noise: float = 0.0
) -> Iterator[float]:
    """About `n` sorted arrival times over the window following the profile,
    made an hour at a time so a busy backend does not hold its day in memory.

    `shape` < 1 makes arrivals bursty (Gamma inter-arrival gaps, as BurstGPT
    measured on real API traces); `noise` varies the hourly volume around the
    profile (lognormal sigma)."""
    slots = max(1, math.ceil(window.seconds / HOUR))
    edges = [window.start + i * HOUR for i in range(slots)] + [window.end]
    weights = [
        intensity(profile, (edges[i] + edges[i + 1]) / 2, tz)
        * (edges[i + 1] - edges[i])
        * (rng.lognormvariate(0.0, noise) if noise else 1.0)
        for i in range(slots)
    ]
    for i, k in enumerate(budget_split(rng, n, weights)):
        lo, hi = edges[i], edges[i + 1]
        if shape >= 1.0:
            yield from sorted(rng.uniform(lo, hi) for _ in range(k))
            continue
        gaps = [rng.gammavariate(shape, 1.0) for _ in range(k + 1)]
        scale, acc = (hi - lo) / sum(gaps), 0.0
        for g in gaps[:-1]:
            acc += g
            yield lo + acc * scale
