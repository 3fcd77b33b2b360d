"""The seeded traffic generator: a simulated day of request contexts.

`generate(config)` yields (context, truth) pairs in time order; `write(config,
traffic, truth)` writes them as two aligned JSON-lines files. Every context is
validated with `RequestContext` before it is written. The seed draws the world
(every population's size and parameters, see world.py); the same config and
seed always give byte-identical files.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from policy_engine.context import RequestContext
from policy_engine.simulate.agent_text import PROMPT_CHAR_CAP
from policy_engine.simulate.base import DAY
from policy_engine.simulate.populations import POPULATIONS, Draft, Ids, Population, Window
from policy_engine.simulate.world import World, describe_ranges, draw

START_TS = 1764288000.0  # 2025-11-28T00:00:00Z: a fixed start keeps files reproducible
CHARS_PER_TOKEN = 4.0


@dataclass(frozen=True, slots=True)
class PopulationSpec:
    name: str
    accounts: int
    share: float  # of all requests; shares are normalised to sum to 1


def population_specs(seed: int) -> tuple[PopulationSpec, ...]:
    """Every population's accounts and share of requests, drawn for `seed` from the
    population's ranges (its `ACCOUNTS` and `SHARE`)."""
    out = []
    for name, cls in POPULATIONS.items():
        rng = random.Random(f"{seed}|size|{name}")
        out.append(PopulationSpec(name, cls.ACCOUNTS.draw(rng), cls.SHARE.draw(rng)))
    return tuple(out)


def population_params(seed: int, name: str) -> dict[str, Any]:
    """The behaviour parameters of one population, drawn for `seed`."""
    return draw(POPULATIONS[name].PARAMS, random.Random(f"{seed}|params|{name}"))


@dataclass(frozen=True, slots=True)
class SimConfig:
    seed: int = 1
    scale: float = 1.0  # multiplies accounts and requests
    hours: float = 24.0  # simulated span; request volume follows it, accounts do not
    start_ts: float = START_TS
    requests_per_day: int = 230_000
    populations: tuple[PopulationSpec, ...] | None = None  # None: drawn from the seed

    def __post_init__(self) -> None:
        if self.populations is None:
            object.__setattr__(self, "populations", population_specs(self.seed))
        if self.scale <= 0 or self.hours <= 0:
            raise ValueError(f"scale and hours must be positive (got scale={self.scale}, hours={self.hours})")
        names = [p.name for p in self.specs]
        for p in self.specs:
            if p.name not in POPULATIONS:
                raise ValueError(f"unknown population {p.name!r}; known: {', '.join(POPULATIONS)}")
            if p.accounts < 0 or p.share < 0:
                raise ValueError(f"population {p.name!r}: accounts and share must be >= 0")
        if len(set(names)) != len(names):
            raise ValueError("each population may appear once")
        if sum(p.share for p in self.specs) <= 0:
            raise ValueError("population shares sum to 0: nothing to generate")

    @property
    def total_requests(self) -> int:
        return round(self.requests_per_day * self.scale * self.hours / 24.0)

    @property
    def specs(self) -> tuple[PopulationSpec, ...]:
        assert self.populations is not None  # filled in by __post_init__
        return self.populations

    def plan(self) -> list[tuple[PopulationSpec, int, int]]:
        """(spec, accounts, requests) per population, after scale, hours and normalisation."""
        out = []
        for p, n_req in zip(self.specs, split(self.total_requests, [p.share for p in self.specs])):
            n_acc = min(n_req, max(1, round(p.accounts * self.scale))) if p.accounts else 0
            out.append((p, n_acc, n_req if n_acc else 0))
        return out

    def with_overrides(self, overrides: dict[str, dict[str, float]]) -> SimConfig:
        """Apply {population: {"accounts": n, "share": f}}, e.g. from `--set`."""
        known = {p.name: p for p in self.specs}
        for name, fields in overrides.items():
            if name not in known:
                raise ValueError(f"--set: unknown population {name!r}; known: {', '.join(known)}")
            for key, value in fields.items():
                if key == "accounts":
                    known[name] = replace(known[name], accounts=int(value))
                elif key == "share":
                    known[name] = replace(known[name], share=float(value))
                else:
                    raise ValueError(f"--set: {name}.{key}: only 'accounts' and 'share' can be set")
        return replace(self, populations=tuple(known[p.name] for p in self.specs))


def split(total: int, weights: list[float]) -> list[int]:
    """Split `total` proportionally to the weights (largest remainder): the parts
    sum to exactly `total`, ties go to the earlier slot."""
    wsum = sum(weights)
    exact = [total * w / wsum for w in weights]
    counts = [int(x) for x in exact]
    for i in sorted(range(len(weights)), key=lambda i: (counts[i] - exact[i], i))[: total - sum(counts)]:
        counts[i] += 1
    return counts


def apportion(total: int, weights: list[float]) -> list[int]:
    """Split `total` over len(weights) slots, each at least 1, proportionally to the
    weights (largest remainder), so account counts are exactly as configured."""
    n = len(weights)
    if n == 0:
        return []
    if total < n:
        raise ValueError(f"cannot give {n} accounts at least one of {total} requests")
    return [c + 1 for c in split(total - n, weights)]


def _window(config: SimConfig) -> Window:
    return Window(config.start_ts, config.hours * 3600.0)


def _population(config: SimConfig, name: str, ids: Ids, world: World) -> Population:
    return POPULATIONS[name](
        random.Random(f"{config.seed}|{name}"), ids, _window(config), world, population_params(config.seed, name)
    )


def _drafts(config: SimConfig) -> list[Draft]:
    window = _window(config)
    world = World.draw(config.seed, window.start, window.span)
    ids = Ids(config.seed)
    drafts: list[Draft] = []
    for spec, n_acc, n_req in config.plan():
        if n_acc == 0:
            continue
        pop = _population(config, spec.name, ids, world)
        accounts = pop.make_accounts(n_acc)
        for account, n in zip(accounts, apportion(n_req, [pop.weight(a) for a in accounts])):
            made = pop.requests(account, n)
            if len(made) != n:  # a population bug would silently skew shares
                raise AssertionError(f"{spec.name}: asked for {n} requests, made {len(made)}")
            drafts.extend(made)
    drafts.sort(key=lambda d: d.ts)  # stable: ties keep generation order
    return drafts


def _context(d: Draft, request_id: str, rng: random.Random) -> dict[str, Any]:
    a, ep = d.account, d.endpoint
    # the gateway reads the head of a long prompt and still counts all of it
    estimate = d.context_tokens or max(1, round(len(d.prompt) / CHARS_PER_TOKEN))
    return {
        "request": {
            "id": request_id,
            "ts": round(d.ts, 3),
            "model": d.model,
            "prompt": d.prompt[:PROMPT_CHAR_CAP],
            "max_tokens": d.max_tokens,
            "prompt_tokens": estimate,
        },
        "account": {
            "id": a.id,
            "org": a.org,
            "age_days": round(max(0.0, d.ts - a.created_ts) / DAY, 3),
            "verification": a.verification,
            "tier": a.tier,
            "payment_fingerprint": a.payment_fingerprint,
            "labels": list(a.labels),
        },
        "api_key": {"id": d.key, "scopes": list(a.scopes)},
        "client": {"ip": ep.ip, "country": ep.country, "asn": ep.asn, "user_agent": d.agent},
        # the real tokenizer disagrees a little with the gateway's estimate
        "usage": {
            "prompt_tokens": max(1, round(estimate * rng.uniform(0.9, 1.1))),
            "completion_tokens": d.completion_tokens,
        },
    }


def generate(config: SimConfig) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(context, truth) pairs in time order; each context is validated."""
    rng = random.Random(f"{config.seed}|usage")
    for i, d in enumerate(_drafts(config)):
        ctx = _context(d, f"r-{i:07d}", rng)
        RequestContext.model_validate(ctx)
        a = d.account
        yield (
            ctx,
            {
                "request_id": ctx["request"]["id"],
                "population": a.population,
                "campaign": a.campaign,
                "account": a.id,
                "is_campaign": a.campaign is not None,
            },
        )


def describe(config: SimConfig) -> dict[str, Any]:
    """The world `config` draws, as JSON: the new model's release, the shared
    address pools, and per population its size, share, planned volume and
    behaviour parameters (with the ranges they were drawn from)."""
    window = _window(config)
    world = World.draw(config.seed, window.start, window.span)
    pools = world.pools
    total_share = sum(s.share for s in config.specs)
    pops: dict[str, Any] = {}
    for spec, n_acc, n_req in config.plan():
        cls = POPULATIONS[spec.name]
        pops[spec.name] = {
            "campaign": cls.campaign,
            "accounts": spec.accounts,
            "share": round(spec.share / total_share, 4),
            "planned_accounts": n_acc,
            "planned_requests": n_req,
            "params": population_params(config.seed, spec.name),
            "ranges": {
                "accounts": cls.ACCOUNTS.describe(),
                "share": cls.SHARE.describe(),
                **describe_ranges(cls.PARAMS),
            },
        }
    return {
        "seed": config.seed,
        "scale": config.scale,
        "hours": config.hours,
        "start_ts": config.start_ts,
        "requests": config.total_requests,
        "world": {
            **world.params,
            "release_ts": round(world.release_ts, 3),
            "cgnat_addresses": sum(len(v) for v in pools.cgnat.values()),
            "vpn_addresses": len(pools.vpn),
            "zscaler_addresses": len(pools.zscaler),
        },
        "populations": pops,
    }


@dataclass(slots=True)
class GenerateSummary:
    requests: int = 0
    seconds: float = 0.0
    per_population: dict[str, dict[str, int]] = field(default_factory=dict)


def write(config: SimConfig, traffic: Path, truth: Path) -> GenerateSummary:
    started = time.perf_counter()
    summary = GenerateSummary()
    accounts: dict[str, set[str]] = {}
    with traffic.open("w", encoding="utf-8") as tf, truth.open("w", encoding="utf-8") as gf:
        for ctx, t in generate(config):
            tf.write(json.dumps(ctx, ensure_ascii=False) + "\n")
            gf.write(json.dumps(t) + "\n")
            summary.requests += 1
            row = summary.per_population.setdefault(t["population"], {"requests": 0, "accounts": 0})
            row["requests"] += 1
            accounts.setdefault(t["population"], set()).add(t["account"])
    for name, accs in accounts.items():
        summary.per_population[name]["accounts"] = len(accs)
    summary.seconds = time.perf_counter() - started
    return summary
