"""Assemble a blind world from a seed and write its traffic and ground truth.

`draw_params(seed)` draws every world parameter; `describe(config)` shows
them with the resulting plan; `generate(config)` yields (context, truth) in
time order; `write(config, traffic, truth)` writes both files.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from policy_engine.context import RequestContext
from policy_engine.simulate.blind import nets
from policy_engine.simulate.blind.campaigns import CAMPAIGNS, DistillFast
from policy_engine.simulate.blind.common import Draw, World
from policy_engine.simulate.blind.core import DAY, Ids, Models, Req, Window, lazy_merge
from policy_engine.simulate.blind.honest import HONEST
from policy_engine.simulate.generator import START_TS, GenerateSummary


class Population(Protocol):
    NAME: str
    CAMPAIGN: str | None
    share: float

    def build(self, w: World, budget: float) -> None: ...


POPULATIONS: tuple[Any, ...] = HONEST + CAMPAIGNS
# Truth labels a population's requests may carry beyond its own name.
EXTRA_LABELS: dict[str, str] = {DistillFast.RESALE: DistillFast.NAME}


@dataclass(frozen=True, slots=True)
class BlindConfig:
    seed: int = 1
    scale: float = 1.0  # multiplies accounts and requests
    hours: float = 24.0
    start_ts: float = START_TS

    def __post_init__(self) -> None:
        if self.scale <= 0 or self.hours <= 0:
            raise ValueError(f"scale and hours must be positive (got scale={self.scale}, hours={self.hours})")


@dataclass(frozen=True, slots=True)
class WorldParams:
    requests_per_day: int
    release_at: float  # fraction of the window at which a new model is released
    cgnat_size: int  # public addresses per carrier NAT pool
    vpn_exit_size: int  # addresses per VPN exit server
    age_median_days: float  # median age of established honest accounts (each population scales it)
    populations: dict[str, Population]


def draw_params(seed: int) -> WorldParams:
    """Every parameter of the world, drawn from wide ranges. Each population
    draws from its own stream, so adding one does not shift the others."""
    d = Draw(random.Random(f"{seed}|world"))
    return WorldParams(
        requests_per_day=d.i(150_000, 250_000),
        release_at=d.u(0.15, 0.6),
        cgnat_size=d.i(8, 256),
        vpn_exit_size=d.i(1, 8),
        age_median_days=d.u(150, 700),
        populations={cls.NAME: cls.draw(Draw(random.Random(f"{seed}|params|{cls.NAME}"))) for cls in POPULATIONS},
    )


def _budgets(config: BlindConfig, params: WorldParams) -> dict[str, float]:
    """Expected requests per population over the window."""
    total = params.requests_per_day * config.scale * config.hours / 24.0
    shares = {name: p.share for name, p in params.populations.items()}
    s = sum(shares.values())
    return {name: total * v / s for name, v in shares.items()}


def describe(config: BlindConfig) -> dict[str, Any]:
    """The drawn parameters and the plan they give, as JSON-ready data."""
    params = draw_params(config.seed)
    budgets = _budgets(config, params)
    window = Window(config.start_ts, config.start_ts + config.hours * 3600.0)
    pops = {}
    for name, p in params.populations.items():
        pops[name] = {"campaign": type(p).CAMPAIGN, "expected_requests": round(budgets[name]), **dataclasses.asdict(p)}  # type: ignore[call-overload]
    return {
        "world": "blind",
        "seed": config.seed,
        "scale": config.scale,
        "hours": config.hours,
        "start_ts": config.start_ts,
        "requests_per_day": params.requests_per_day,
        "new_model_release_ts": round(window.at(params.release_at), 3),
        "cgnat_size": params.cgnat_size,
        "vpn_exit_size": params.vpn_exit_size,
        "age_median_days": params.age_median_days,
        "populations": pops,
    }


def _world(config: BlindConfig, params: WorldParams) -> World:
    window = Window(config.start_ts, config.start_ts + config.hours * 3600.0)
    net = nets.Network(random.Random(f"{config.seed}|network"), params.cgnat_size, params.vpn_exit_size)
    w = World(
        config.seed,
        config.scale,
        window,
        Ids(config.seed),
        net,
        Models(window.at(params.release_at)),
        params.age_median_days,
    )
    for name, budget in _budgets(config, params).items():
        params.populations[name].build(w, budget)
    w.starts.sort(key=lambda s: s[0])  # stable: ties keep build order
    return w


def _context(req: Req, request_id: str, rng: random.Random) -> dict[str, Any]:
    a, ep = req.account, req.ep
    # The gateway estimates chars/4; billing counts real tokens plus message framing.
    estimate = max(1, math.ceil(req.prompt.chars / 4))
    billed = max(1, round(req.prompt.tokens * rng.uniform(0.97, 1.03)) + rng.randint(3, 12))
    return {
        "request": {
            "id": request_id,
            "ts": round(req.ts, 3),
            "model": req.model,
            "prompt": req.prompt.text,
            "max_tokens": req.max_tokens,
            "prompt_tokens": estimate,
        },
        "account": {
            "id": a.id,
            "org": a.org,
            "age_days": round(max(0.0, (req.ts - a.signup_ts) / DAY), 4),
            "verification": a.verification,
            "tier": a.tier,
            "payment_fingerprint": a.payment,
            "labels": list(a.labels),
        },
        "api_key": {"id": req.key, "scopes": list(a.scopes)},
        "client": {"ip": ep.ip, "country": ep.country, "asn": ep.asn, "user_agent": req.ua},
        "usage": {"prompt_tokens": billed, "completion_tokens": min(req.completion, req.max_tokens)},
    }


def generate(config: BlindConfig) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(context, truth) pairs in time order; each context is validated."""
    w = _world(config, draw_params(config.seed))
    rng = random.Random(f"{config.seed}|usage")
    for i, req in enumerate(lazy_merge(w.starts)):
        ctx = _context(req, f"r-{i:07d}", rng)
        RequestContext.model_validate(ctx)
        campaign = req.account.campaign
        yield (
            ctx,
            {
                "request_id": ctx["request"]["id"],
                "population": req.population,
                "campaign": campaign,
                "account": req.account.id,
                "is_campaign": campaign is not None,
            },
        )


def population_names() -> list[str]:
    """Every truth population label the world can write, in a stable order."""
    names = [cls.NAME for cls in POPULATIONS]
    for extra, owner in EXTRA_LABELS.items():
        names.insert(names.index(owner) + 1, extra)
    return names


def write(config: BlindConfig, traffic: Path, truth: Path) -> GenerateSummary:
    started = time.perf_counter()
    summary = GenerateSummary()
    accounts: dict[str, set[str]] = {}
    with traffic.open("wb") as tf, truth.open("wb") as gf:
        for ctx, t in generate(config):
            tf.write(orjson.dumps(ctx, option=orjson.OPT_APPEND_NEWLINE))
            gf.write(orjson.dumps(t, option=orjson.OPT_APPEND_NEWLINE))
            summary.requests += 1
            row = summary.per_population.setdefault(t["population"], {"requests": 0, "accounts": 0})
            row["requests"] += 1
            accounts.setdefault(t["population"], set()).add(t["account"])
    for name, accs in accounts.items():
        summary.per_population[name]["accounts"] = len(accs)
    summary.seconds = time.perf_counter() - started
    return summary
