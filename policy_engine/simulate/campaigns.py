"""Campaigns, after the public reports of distillation and extraction campaigns:
fleets of surrogate accounts, proxy networks, templated queries eliciting
reasoning, mapping of safety behaviour. Each campaign's strategy (addresses,
pacing, phrasing, sizes) is drawn per seed, so the world is not one fixed
adversary.
"""

from __future__ import annotations

import random
from typing import Any

from policy_engine.simulate import agent_text as agent
from policy_engine.simulate import network as net
from policy_engine.simulate import probe_text as probe
from policy_engine.simulate import prompts as txt
from policy_engine.simulate.base import (
    DAY,
    TEST_PINGS,
    Account,
    Draft,
    Population,
    hours_time,
    session_groups,
    spaced,
    split_sizes,
    tokens,
)
from policy_engine.simulate.network import Endpoint
from policy_engine.simulate.world import Choice, Int, Subset, Uniform, Weights

PROXY_COUNTRIES: tuple[str, ...] = tuple(c for c, _ in net.BENIGN_COUNTRIES)
OPERATOR_TZ = Choice((8.0, 3.0, 5.5, -5.0, 1.0, 7.0, 2.0, -3.0))
AGENT_KINDS = {"script": net.SCRIPT_AGENTS, "sdk": net.SDK_AGENTS, "browser": net.BROWSER_AGENTS}
IP_STRATEGIES = ("datacenter", "rotating_residential", "stable_residential")


def _proxy_endpoint(rng: random.Random, countries: list[str], world: Any) -> Endpoint:
    """A residential proxy exit: a home line or, now and then, a phone."""
    country = rng.choice(countries)
    if rng.random() < 0.2:
        return world.pools.mobile(rng, country)
    return net.residential_endpoint(rng, country)


class FastDistill(Population):
    """Campaign (a): thousands of fresh, lightly verified surrogate accounts, each
    living a few hours and staying under per-account limits, sending slot-filled
    templates that sweep capabilities, most asking for step-by-step reasoning.
    Per seed: datacenter /24s, rotating residential proxies or stable home and
    business addresses shared by a few accounts; flat, office-hours or wave
    pacing; warm-up probes; best-of-n resampling; 1-6 phrasings; a pivot to the
    newly released model."""

    name = "distill_fast"
    campaign = "distill-fast"
    ACCOUNTS = Int(1500, 8000)
    SHARE = Uniform(0.08, 0.28)
    PARAMS = {
        "ip_strategy": Choice(IP_STRATEGIES),
        "ip_secondary": Uniform(0.0, 0.3),  # accounts on one of the other two strategies
        "blocks": Int(3, 40),  # datacenter /24s
        "per_address_max": Int(1, 6),  # accounts per stable address
        "proxy_countries": Subset(PROXY_COUNTRIES, 3, 18),
        "pacing": Choice(("flat", "office_hours", "waves")),
        "operator_tz": OPERATOR_TZ,
        "office_start": Int(7, 10),
        "office_end": Int(16, 22),
        "wave_min": Int(20, 120),
        "life_h_min": Uniform(0.3, 1.5),
        "life_h_max": Uniform(2.0, 10.0),
        "warmup": Uniform(0.0, 0.8),  # accounts that say "hi" or "test" first
        "best_of_n": Uniform(0.0, 0.5),  # prompts resampled n times
        "n_max": Int(2, 8),
        "phrasings": Int(1, 6),
        "pivot": Uniform(0.0, 1.0),  # share of requests after the release that use it
        "cot": Uniform(0.25, 0.9),
        "answer_median": Int(300, 900),  # without a reasoning request; with one, 2-3 times longer
        "focus": Uniform(0.4, 0.9),  # share of an account's prompts on its wave's capability
        "card_share": Uniform(0.1, 0.8),
        "accounts_per_card": Int(5, 40),
        "age_max": Uniform(1.0, 30.0),
        "phone_verified": Uniform(0.0, 0.3),
        "agents": Choice(("script", "sdk", "browser")),
        "max_tokens": Choice((4096, 8192, 16384)),
    }

    def make_accounts(self, n: int) -> list[Account]:
        r, p = self.rng, self.p
        hosting = net.nets_where("hosting", asns=net.SURROGATE_HOSTING_ASNS)
        self.blocks = [net.random_slash24(r, r.choice(hosting)) for _ in range(p["blocks"])]
        self.cards = [self._id("pf", k) for k in range(max(1, n // p["accounts_per_card"]))]
        self.phrasings = {
            cap: tuple(sorted(r.sample(range(len(txt.FAST_TEMPLATES[cap])), p["phrasings"])))
            for cap in txt.CAPABILITIES
        }
        others = [s for s in IP_STRATEGIES if s != p["ip_strategy"]]
        self.strategy = [p["ip_strategy"] if r.random() >= p["ip_secondary"] else r.choice(others) for _ in range(n)]
        self.stable: list[Endpoint] = []
        for size in split_sizes(r, n, 1, p["per_address_max"]):  # one address per group of accounts
            country = r.choice(p["proxy_countries"])
            kind = "business" if r.random() < 0.3 else "residential"
            self.stable.extend([net.endpoint(r, r.choice(net.nets_or_residential(kind, country)))] * size)
        return super().make_accounts(n)

    def _window(self) -> tuple[float, float, int]:
        """An account's active span [start, end) and wave, per the campaign's pacing."""
        r, p, w = self.rng, self.p, self.w
        life = r.uniform(p["life_h_min"], p["life_h_max"]) * 3600.0
        first, last = w.start + 0.02 * w.span, w.start + 0.98 * w.span
        if p["pacing"] == "office_hours":
            start = hours_time(r, w, p["operator_tz"], p["office_start"], p["office_end"])
            life = min(life, 3600.0 * max(0.5, p["office_end"] - p["office_start"]) / 2)
        else:
            start = r.uniform(first, max(first, last - life))
        wave_s = p["wave_min"] * 60.0
        wave = int((start - first) // wave_s)
        if p["pacing"] == "waves":
            start = first + wave * wave_s + r.uniform(0, min(300.0, wave_s / 4))
        start = min(start, w.end - 60.0)
        return start, min(w.end, start + life), wave

    def account(self, i: int) -> Account:
        r, p = self.rng, self.p
        strategy = self.strategy[i]
        pf = r.choice(self.cards) if r.random() < p["card_share"] else None
        start, end, wave = self._window()
        if strategy == "datacenter":
            block = r.choice(self.blocks)
            eps: tuple[Endpoint, ...] = tuple(net.endpoint(r, block) for _ in range(r.randint(1, 2)))
        elif strategy == "stable_residential":
            eps = (self.stable[i],)
        else:
            eps = (_proxy_endpoint(r, p["proxy_countries"], self.world),)
        age = r.uniform(0.0, p["age_max"])
        return self._account(
            i,
            created_ts=start - max(60.0, age * DAY),  # signed up `age` days before work
            verification="phone" if r.random() < p["phone_verified"] else r.choice(("none", "email")),
            tier="pro" if pf else "free",
            payment_fingerprint=pf,
            keys=self._keys(i, 1),
            endpoints=eps,
            agents=(r.choice(AGENT_KINDS[p["agents"]]),),
            tz=p["operator_tz"],
            active=(start, end),
            extra={"wave": wave, "rotating": strategy == "rotating_residential", "warmup": r.random() < p["warmup"]},
        )

    def weight(self, a: Account) -> float:
        return self.rng.uniform(0.6, 1.4)  # flat: each account stays under naive limits

    def requests(self, a: Account, n: int) -> list[Draft]:
        r, p = self.rng, self.p
        assert a.active is not None
        focus = txt.CAPABILITIES[a.extra["wave"] % len(txt.CAPABILITIES)]  # waves sweep capabilities
        out: list[Draft] = []
        times = spaced(r, a.active[0], a.active[1], n, jitter=0.7)
        warm = r.randint(1, 3) if a.extra["warmup"] and n > 3 else 0
        while len(out) < n:
            ts = times[len(out)]
            ep = _proxy_endpoint(r, p["proxy_countries"], self.world) if a.extra["rotating"] else None
            model = self._model(ts, p["pivot"], "frontier-large")
            if len(out) < warm:
                out.append(self._draft(a, ts, r.choice(TEST_PINGS), model, 64, tokens(r, 12, 0.5, 64), endpoint=ep))
                continue
            cap = focus if r.random() < p["focus"] else r.choice(txt.CAPABILITIES)
            cot = r.random() < p["cot"]
            prompt = txt.fast_distill_prompt(r, cap, self.phrasings[cap], cot)
            mt = p["max_tokens"]
            median = p["answer_median"] * (2.8 if cot else 1.0)
            draft = self._draft(a, ts, prompt, model, mt, tokens(r, median, 0.5, mt), endpoint=ep)
            out.append(draft)
            if r.random() < p["best_of_n"]:  # sample the same prompt again, keep the best answer
                delay = 0.0
                for _ in range(min(n - len(out), r.randint(1, p["n_max"] - 1))):
                    delay += r.uniform(0.5, 4.0)
                    out.append(self._resend(draft, delay, regenerate=True))
        return out


class SlowDistill(Population):
    """Campaign (b): fewer, older (30-1500 days), phone- or kyc-verified paying
    accounts on stable residential and business addresses (one per account, or
    home and a phone), working office hours in the operator's or the address's
    time zone, sweeping a curriculum of domains x subtopics x difficulty x
    format in paraphrased wording, with follow-ups."""

    name = "distill_slow"
    campaign = "distill-slow"
    ACCOUNTS = Int(60, 400)
    SHARE = Uniform(0.02, 0.08)
    PARAMS = {
        "age_min": Int(30, 200),
        "age_max": Int(400, 1500),
        "kyc": Uniform(0.1, 0.6),
        "home_mobile": Uniform(0.0, 1.0),  # accounts with a home line and a phone, the rest one address
        "business": Uniform(0.0, 0.5),  # accounts whose address is a business line
        "countries": Subset(PROXY_COUNTRIES, 1, 8),
        "pacing_tz": Choice(("operator", "address")),
        "operator_tz": OPERATOR_TZ,
        "office_start": Int(7, 10),
        "office_end": Int(16, 21),
        "follow_up": Uniform(0.1, 0.5),
        "cot": Uniform(0.1, 0.6),
        "levels": Subset(txt.DIFFICULTIES, 2, 5),
        "formats": Subset(txt.FORMATS, 2, 8),
        "agents": Choice(("browser", "sdk")),
        "tier": Choice(("pro", "team")),
        "answer_median": Int(600, 1800),
    }

    def make_accounts(self, n: int) -> list[Account]:
        p = self.p
        # the fleet's curriculum: every (domain, subtopic, difficulty, format), shuffled once
        self.curriculum = [
            (t, c, lv, f) for t in txt.TOPIC_NAMES for c in txt.TOPICS[t] for lv in p["levels"] for f in p["formats"]
        ]
        self.stride = max(1, len(self.curriculum) // max(1, n))
        return super().make_accounts(n)

    def account(self, i: int) -> Account:
        r, p = self.rng, self.p
        country = r.choice(p["countries"])
        kind = "business" if r.random() < p["business"] else "residential"
        home = net.endpoint(r, r.choice(net.nets_or_residential(kind, country)))
        eps = (home, self.world.pools.mobile(r, country)) if r.random() < p["home_mobile"] else (home,)
        tz = p["operator_tz"] if p["pacing_tz"] == "operator" else net.TZ_OFFSET[country]
        return self._account(
            i,
            created_ts=self._created(r.uniform(p["age_min"], p["age_max"])),
            verification="kyc" if r.random() < p["kyc"] else "phone",
            tier=p["tier"],
            payment_fingerprint=self._id("pf", i),
            keys=self._keys(i, 1),
            endpoints=eps,
            agents=(r.choice(AGENT_KINDS[p["agents"]]),),
            tz=tz,
            extra={"offset": i * self.stride},
        )

    def weight(self, a: Account) -> float:
        return self.rng.uniform(0.7, 1.3)

    def requests(self, a: Account, n: int) -> list[Draft]:
        r, p = self.rng, self.p
        times = sorted(hours_time(r, self.w, a.tz, p["office_start"], p["office_end"]) for _ in range(n))
        out: list[Draft] = []
        k = a.extra["offset"]
        last = ""
        for ts in times:
            topic, concept, level, fmt = self.curriculum[k % len(self.curriculum)]
            if last and r.random() < p["follow_up"]:
                prompt = f"{last}\n\nuser: {txt.follow_up(r, topic)}"
            else:
                prompt = last = txt.slow_distill_prompt(r, topic, concept, level, fmt, r.random() < p["cot"])
                k += 1
            out.append(
                self._draft(
                    a,
                    ts,
                    prompt,
                    self._model(ts, 0.3, "frontier-large"),
                    4096,
                    tokens(r, p["answer_median"], 0.4, 4096),
                )
            )
        return out


class AgenticDistill(Population):
    """Campaign (c): distillation shaped like coding-agent sessions: the same tool
    system prompts as real users, contexts growing and compacted, but running
    around the clock with several sessions in parallel per account, sweeping a
    catalogue of self-contained tasks and asking for complete code."""

    name = "distill_agentic"
    campaign = "distill-agentic"
    ACCOUNTS = Int(5, 40)
    SHARE = Uniform(0.02, 0.08)
    PARAMS = {
        "parallel_max": Int(1, 6),
        "gap_min": Uniform(2.0, 6.0),
        "gap_max": Uniform(6.0, 15.0),
        "ctx_start_min": Int(6000, 12000),
        "ctx_start_max": Int(15000, 30000),
        "ctx_cap_min": Int(90000, 120000),
        "ctx_cap_max": Int(140000, 190000),
        "growth_median": Int(1500, 5000),
        "steps_per_task_max": Int(30, 400),
        "completion_median": Int(800, 3000),
        "network": Choice(("hosting", "residential", "business")),
        "tier": Choice(("pro", "team", "enterprise")),
        "tools": Subset(agent.AGENT_TOOLS, 1, 3),
        "age_min": Int(5, 60),
        "age_max": Int(90, 700),
    }

    def account(self, i: int) -> Account:
        r, p = self.rng, self.p
        country = r.choice(PROXY_COUNTRIES[:8])
        if p["network"] == "hosting":
            eps: tuple[Endpoint, ...] = (net.hosting_endpoint(r),)
        else:
            eps = (net.endpoint(r, r.choice(net.nets_or_residential(p["network"], country))),)
        tools = tuple(p["tools"])
        return self._account(
            i,
            created_ts=self._created(r.uniform(p["age_min"], p["age_max"])),
            verification=r.choice(("phone", "kyc")),
            tier=p["tier"],
            payment_fingerprint=self._id("pf", i),
            keys=self._keys(i, len(tools)),
            endpoints=eps,
            agents=tuple(f"{t}/{r.randint(0, 3)}.{r.randint(0, 30)}.{r.randint(0, 9)}" for t in tools),
            tz=0.0,
            extra={"tools": tools, "lanes": r.randint(1, p["parallel_max"]), "task": i * 37},
        )

    def weight(self, a: Account) -> float:
        return self.rng.uniform(0.5, 1.5)

    def requests(self, a: Account, n: int) -> list[Draft]:
        r, p = self.rng, self.p
        lanes = a.extra["lanes"]
        out: list[Draft] = []
        for lane in range(lanes):
            size = n // lanes + (1 if lane < n % lanes else 0)
            if size == 0:
                continue
            gap = min(r.uniform(p["gap_min"], p["gap_max"]), self.w.span / size)
            steps = split_sizes(r, size, 10, p["steps_per_task_max"])
            # sessions back to back, the idle time spread between them: around the clock
            idle = [r.random() for _ in range(len(steps) + 1)]
            scale = max(0.0, self.w.span - size * gap) / sum(idle)
            t = self.w.start + idle[0] * scale
            for k, m in enumerate(steps):
                out.extend(self._session(a, lane, t, m, gap))
                t += m * gap + idle[k + 1] * scale
        return out

    def _session(self, a: Account, lane: int, t: float, steps: int, gap: float) -> list[Draft]:
        r, p = self.rng, self.p
        k = lane % len(a.extra["tools"])
        system = agent.tool_system_prompt(a.extra["tools"][k])
        a.extra["task"] += 1
        text = agent.transcript(r, system + agent.campaign_task(r, a.extra["task"]) + "\n", agent.PROMPT_CHAR_CAP)
        ctx = r.randint(p["ctx_start_min"], p["ctx_start_max"])
        cap = r.randint(p["ctx_cap_min"], p["ctx_cap_max"])
        mt = 32000
        model = self._model(t, 0.5, "frontier-large")
        return self._agent_loop(a, k, t, steps, gap, system, text, (ctx, cap), mt, model, 0.6)


class GuardrailProbe(Population):
    """Campaign (d): guardrail mapping. PAIR-style refinement (an attacker model
    rewrites the prompt after each refusal), refusal-boundary ladders of yes/no
    questions, system-prompt extraction, and wrappers (role-play, fiction,
    developer mode, base64, leetspeak, other languages); mostly refused, with
    short answers; from VPS blocks, VPN exits and home lines."""

    name = "guardrail_probe"
    campaign = "guardrail-probe"
    ACCOUNTS = Int(40, 400)
    SHARE = Uniform(0.008, 0.035)
    PARAMS = {
        "techniques": Weights(("pair", "ladder", "extraction", "wrapper"), 0.1, 1.0),
        "refusal": Uniform(0.55, 0.95),
        "pair_rounds": Int(3, 20),
        "wrappers": Subset(probe.WRAPPERS, 2, 6),
        "network": Weights(("vps", "vpn", "residential"), 0.0, 1.0),
        "vps_blocks": Int(1, 6),
        "age_max": Uniform(1.0, 90.0),
        "per_session": Int(5, 40),
        "gap_s": Uniform(5.0, 60.0),
        "agents": Choice(("script", "browser")),
    }

    def make_accounts(self, n: int) -> list[Account]:
        hosting = net.nets_where("hosting", asns=(20473, 14061, 63949, 16276, 51167))
        self.blocks = [net.random_slash24(self.rng, self.rng.choice(hosting)) for _ in range(self.p["vps_blocks"])]
        return super().make_accounts(n)

    def account(self, i: int) -> Account:
        r, p = self.rng, self.p
        country = r.choice(PROXY_COUNTRIES)
        kinds, weights = zip(*p["network"].items())
        eps = []
        for _ in range(r.randint(1, 3)):
            kind = r.choices(kinds, weights)[0]
            if kind == "vps":
                eps.append(net.endpoint(r, r.choice(self.blocks)))
            elif kind == "vpn":
                eps.append(self.world.pools.vpn_exit(r))
            else:
                eps.append(net.residential_endpoint(r, country))
        return self._account(
            i,
            created_ts=self._created(r.uniform(0.0, p["age_max"])),
            verification=r.choice(("none", "email", "email", "phone")),
            tier="free",
            payment_fingerprint=None,
            keys=self._keys(i, 1),
            endpoints=tuple(eps),
            agents=(r.choice(AGENT_KINDS[p["agents"]]),),
            tz=net.TZ_OFFSET[country],
            extra={"goal": r.randrange(probe.N_GOALS)},
        )

    def weight(self, a: Account) -> float:
        return self.rng.uniform(0.5, 1.5)

    def requests(self, a: Account, n: int) -> list[Draft]:
        r, p = self.rng, self.p
        techniques, weights = zip(*p["techniques"].items())
        out: list[Draft] = []
        for group in session_groups(r, self.w, a.tz, n, per_session=p["per_session"], gap_s=p["gap_s"], flat=0.5):
            technique = r.choices(techniques, weights)[0]
            goal = a.extra["goal"] = (a.extra["goal"] + r.randint(0, 2)) % probe.N_GOALS
            ladder, step, rnd = r.randrange(len(probe.LADDERS)), 0, 0
            for ts in group:
                if technique == "pair":
                    prompt, yes_no = probe.pair_prompt(r, goal, rnd % p["pair_rounds"]), False
                    rnd += 1
                elif technique == "ladder":
                    prompt, yes_no = probe.ladder_prompt(r, ladder, step), True
                    step += 1
                    if step > 6:
                        ladder, step = (ladder + 1) % len(probe.LADDERS), 0
                elif technique == "extraction":
                    prompt, yes_no = probe.extraction_prompt(r), False
                else:
                    prompt, yes_no = probe.wrapped(r, goal, r.choice(p["wrappers"])), False
                refused = r.random() < p["refusal"]
                completion = (
                    tokens(r, 2, 0.5, 2048)
                    if yes_no
                    else tokens(r, 45, 0.5, 2048)
                    if refused
                    else tokens(r, 450, 0.6, 2048)
                )
                out.append(self._draft(a, ts, prompt, "frontier-large", 2048, completion))
        return out


CAMPAIGNS: tuple[type[Population], ...] = (FastDistill, SlowDistill, AgenticDistill, GuardrailProbe)
