"""The randomised world: every population's parameters, drawn per seed.

A population declares its parameters as ranges (`ACCOUNTS`, `SHARE`, `PARAMS`);
`draw` picks one value per parameter from a generator seeded by (seed, name), so
two seeds give two different worlds and no threshold can sit just above one
world's benign maximum. World-wide facts that populations share (when a new
model is released; the carrier-grade NAT pools, VPN exits and office egress
addresses that strangers share) are drawn here too. `policyctl simulate
--describe` prints the drawn values.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from policy_engine.simulate import network as net
from policy_engine.simulate.network import Endpoint


@dataclass(frozen=True, slots=True)
class Uniform:
    lo: float
    hi: float

    def draw(self, rng: random.Random) -> float:
        return round(rng.uniform(self.lo, self.hi), 4)

    def contains(self, value: Any) -> bool:
        return isinstance(value, float) and self.lo <= value <= self.hi

    def describe(self) -> list[float]:
        return [self.lo, self.hi]


@dataclass(frozen=True, slots=True)
class Int:
    lo: int
    hi: int

    def draw(self, rng: random.Random) -> int:
        return rng.randint(self.lo, self.hi)

    def contains(self, value: Any) -> bool:
        return isinstance(value, int) and self.lo <= value <= self.hi

    def describe(self) -> list[int]:
        return [self.lo, self.hi]


@dataclass(frozen=True, slots=True)
class Choice:
    options: tuple[Any, ...]

    def draw(self, rng: random.Random) -> Any:
        return rng.choice(self.options)

    def contains(self, value: Any) -> bool:
        return value in self.options

    def describe(self) -> list[Any]:
        return list(self.options)


@dataclass(frozen=True, slots=True)
class Subset:
    """Between `lo` and `hi` distinct options, in the options' order."""

    options: tuple[Any, ...]
    lo: int
    hi: int

    def draw(self, rng: random.Random) -> list[Any]:
        picked = set(rng.sample(range(len(self.options)), rng.randint(self.lo, self.hi)))
        return [o for i, o in enumerate(self.options) if i in picked]

    def contains(self, value: Any) -> bool:
        return (
            isinstance(value, list)
            and self.lo <= len(value) <= self.hi
            and len(set(value)) == len(value)
            and all(v in self.options for v in value)
        )

    def describe(self) -> dict[str, Any]:
        return {"of": list(self.options), "size": [self.lo, self.hi]}


@dataclass(frozen=True, slots=True)
class Weights:
    """A weight in [lo, hi] for each option, normalised to sum to 1: a mix."""

    options: tuple[str, ...]
    lo: float = 0.0
    hi: float = 1.0

    def draw(self, rng: random.Random) -> dict[str, float]:
        raw = [rng.uniform(self.lo, self.hi) for _ in self.options]
        total = sum(raw) or 1.0
        return {o: round(w / total, 4) for o, w in zip(self.options, raw)}

    def contains(self, value: Any) -> bool:
        return (
            isinstance(value, dict)
            and list(value) == list(self.options)
            and all(0.0 <= w <= 1.0 for w in value.values())
            and abs(sum(value.values()) - 1.0) < 1e-3
        )

    def describe(self) -> dict[str, Any]:
        return {"mix of": list(self.options)}


Range = Uniform | Int | Choice | Subset | Weights


def draw(ranges: dict[str, Range], rng: random.Random) -> dict[str, Any]:
    """One value per parameter, drawn in the declared order (stable across runs)."""
    return {name: r.draw(rng) for name, r in ranges.items()}


def describe_ranges(ranges: dict[str, Range]) -> dict[str, Any]:
    return {name: r.describe() for name, r in ranges.items()}


# The new model that appears during the window: evaluation harnesses burst on
# it, users try it, a campaign may pivot to it.
WORLD_PARAMS: dict[str, Range] = {
    "release_at": Uniform(0.15, 0.65),  # share of the window when the new model appears
    "release_model": Choice(("frontier-large-2", "frontier-large-1.5", "frontier-reasoner")),
    "cgnat_per_carrier": Int(3, 40),  # public addresses per mobile carrier that our users land on
    "vpn_exits": Int(6, 80),  # VPN exit addresses in use by our users
    "zscaler_egress": Int(2, 12),  # cloud-proxy egress addresses shared by many offices
}


@dataclass(frozen=True, slots=True)
class Pools:
    """Addresses that strangers share, used by every population that goes there."""

    cgnat: dict[str, tuple[Endpoint, ...]]  # country -> carrier NAT addresses
    vpn: tuple[Endpoint, ...]
    zscaler: tuple[Endpoint, ...]

    def mobile(self, rng: random.Random, country: str) -> Endpoint:
        pool = self.cgnat.get(country)
        if pool:
            return rng.choice(pool)
        return net.residential_endpoint(rng, country)  # carriers not listed: the incumbent's CGNAT

    def vpn_exit(self, rng: random.Random, favourite: int | None = None) -> Endpoint:
        """A VPN exit; a client with a favourite (the "fastest server") mostly lands on it."""
        if favourite is not None and rng.random() < 0.8:
            return self.vpn[favourite % len(self.vpn)]
        return rng.choice(self.vpn)


def _pools(rng: random.Random, params: dict[str, Any]) -> Pools:
    cgnat: dict[str, list[Endpoint]] = {}
    for n in net.MOBILE_NETS:
        cgnat.setdefault(n.country, []).extend(net.endpoint(rng, n) for _ in range(params["cgnat_per_carrier"]))
    vpn = tuple(net.endpoint(rng, rng.choice(net.VPN_NETS)) for _ in range(params["vpn_exits"]))
    zs = tuple(
        net.endpoint(rng, rng.choice(net.nets_where("business", asns=(22616,))))
        for _ in range(params["zscaler_egress"])
    )
    return Pools({c: tuple(v) for c, v in cgnat.items()}, vpn, zs)


@dataclass(frozen=True, slots=True)
class World:
    seed: int
    params: dict[str, Any]
    release_ts: float
    pools: Pools

    @property
    def release_model(self) -> str:
        return str(self.params["release_model"])

    @classmethod
    def draw(cls, seed: int, start: float, span: float) -> World:
        rng = random.Random(f"{seed}|world")
        params = draw(WORLD_PARAMS, rng)
        return cls(seed, params, start + params["release_at"] * span, _pools(random.Random(f"{seed}|pools"), params))
