"""The simulated populations: who sends traffic, from where, when, and what.

Each population makes its accounts (identity, network, user agents, topics) and,
given how many requests an account sends in the window, that account's requests.
Benign populations include the traps a naive rule falls into (fresh accounts,
cloud addresses, shared payment cards, templated prompts, "step by step",
breadth of topics behind one chat key, retries); campaigns follow the public
reports of distillation campaigns (see docs/simulation.md).
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field
from typing import ClassVar

from policy_engine.simulate import network as net
from policy_engine.simulate import prompts as txt
from policy_engine.simulate.network import Endpoint

MODELS = ("frontier-large", "frontier-small")


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
    age_days: float
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
    # [first, last) active time for campaign accounts (surrogates live briefly)
    active: tuple[float, float] | None = None
    extra: dict[str, int] = field(default_factory=dict)


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
DIURNAL = (0.15, 0.1, 0.08, 0.08, 0.1, 0.15, 0.3, 0.55, 0.8, 0.95, 1.0, 1.0,
           0.9, 0.95, 1.0, 1.0, 0.95, 0.85, 0.7, 0.6, 0.55, 0.45, 0.35, 0.25)


def diurnal_time(rng: random.Random, w: Window, tz: float, flat: float = 0.0) -> float:
    """A time in the window, denser in local working hours; `flat` in [0,1] mixes
    in a uniform share (backends with users in every time zone)."""
    for _ in range(64):  # acceptance >= 8%, so 64 rounds fail with p < 0.005
        ts = w.start + rng.random() * w.span
        hour = int(((ts / 3600.0) + tz) % 24)
        if rng.random() < flat + (1.0 - flat) * DIURNAL[hour]:
            return ts
    return ts


def sessions(rng: random.Random, w: Window, tz: float, n: int, per_session: float,
             gap_s: float, flat: float = 0.0) -> list[float]:
    """n times grouped in sessions: a diurnal start, then exponential gaps."""
    out: list[float] = []
    while len(out) < n:
        t = diurnal_time(rng, w, tz, flat)
        size = max(1, min(n - len(out), int(rng.expovariate(1.0 / per_session)) + 1))
        for _ in range(size):
            out.append(w.clamp(t))
            t += rng.expovariate(1.0 / gap_s) + 1.0
    return out


def spaced(rng: random.Random, first: float, last: float, n: int, jitter: float) -> list[float]:
    """n times evenly spaced over [first, last) with relative jitter: scripted clients."""
    step = (last - first) / n
    return [first + step * (i + 0.5 + rng.uniform(-jitter, jitter) * 0.5) for i in range(n)]


def tokens(rng: random.Random, median: float, sigma: float, cap: int) -> int:
    return max(1, min(cap, int(rng.lognormvariate(math.log(median), sigma))))


def pick_country(rng: random.Random) -> str:
    codes, weights = zip(*net.BENIGN_COUNTRIES)
    return rng.choices(codes, weights)[0]


class Population:
    name: ClassVar[str]
    campaign: ClassVar[str | None] = None

    def __init__(self, rng: random.Random, ids: Ids, window: Window) -> None:
        self.rng, self.ids, self.w = rng, ids, window

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

    def _keys(self, i: int, count: int) -> tuple[str, ...]:
        return tuple(self._id("key", i * 16 + k) for k in range(count))

    def _draft(self, a: Account, ts: float, prompt: str, model: str, max_tokens: int, completion: int,
               endpoint: Endpoint | None = None) -> Draft:
        r = self.rng
        return Draft(ts=ts, account=a, key=r.choice(a.keys), endpoint=endpoint or r.choice(a.endpoints),
                     agent=r.choice(a.agents), model=model, prompt=prompt, max_tokens=max_tokens,
                     completion_tokens=min(completion, max_tokens))


# ---------------------------------------------------------------- benign populations

class SmallDev(Population):
    """Many small developers: a few requests in one or two sessions, one or two topics."""

    name = "small_dev"
    last_card: str | None = None

    def account(self, i: int) -> Account:
        r = self.rng
        country = pick_country(r)
        fresh = r.random() < 0.15  # new sign-ups happen every day
        age = r.uniform(0, 7) if fresh else min(2500.0, r.lognormvariate(math.log(200), 1.0))
        ver = r.choices(("none", "email", "phone", "kyc"), (0.2, 0.7, 0.1, 0.0) if fresh else (0.05, 0.55, 0.3, 0.1))[0]
        pro = r.random() < 0.25
        pf = self._id("pf", i) if pro else None
        if pro and self.last_card and r.random() < 0.05:  # a team sharing a company card
            pf = self.last_card
        self.last_card = pf or self.last_card
        eps = [net.residential_endpoint(r, country) if r.random() < 0.8
               else net.endpoint(r, r.choice(net.HOSTING_NETS)) for _ in range(r.randint(1, 2))]
        topics = tuple(r.sample(txt.TECH_TOPICS, 1) + r.sample(txt.TOPIC_NAMES, r.randint(0, 1)))
        return Account(id=self._id("acct", i), population=self.name, campaign=None, org=None,
                       age_days=round(age, 2), verification=ver, tier="pro" if pro else "free",
                       payment_fingerprint=pf, labels=(), keys=self._keys(i, r.choice((1, 1, 2))),
                       scopes=("inference",), endpoints=tuple(eps), agents=(r.choice(net.SDK_AGENTS),),
                       tz=net.TZ_OFFSET[country], topics=topics)

    def weight(self, a: Account) -> float:
        return self.rng.lognormvariate(0.0, 0.9)

    def requests(self, a: Account, n: int) -> list[Draft]:
        r = self.rng
        out = []
        for ts in sessions(r, self.w, a.tz, n, per_session=6, gap_s=90):
            prompt = txt.casual_question(r, r.choice(a.topics), step_p=0.06)
            mt = r.choice((512, 1024, 2048, 4096))
            out.append(self._draft(a, ts, prompt, r.choice(MODELS), mt, tokens(r, 350, 0.8, mt)))
        return out


class PowerUser(Population):
    """Power users: hundreds of requests a day over several topics, long prompts."""

    name = "power_user"

    def account(self, i: int) -> Account:
        r = self.rng
        country = pick_country(r)
        eps = [net.residential_endpoint(r, country) for _ in range(r.randint(1, 3))]
        if r.random() < 0.3:
            eps.append(net.endpoint(r, r.choice(net.HOSTING_NETS)))
        return Account(id=self._id("acct", i), population=self.name, campaign=None, org=None,
                       age_days=round(r.uniform(60, 1500), 2),
                       verification=r.choices(("email", "phone", "kyc"), (0.3, 0.5, 0.2))[0],
                       tier=r.choice(("pro", "pro", "team")), payment_fingerprint=self._id("pf", i), labels=(),
                       keys=self._keys(i, r.randint(1, 3)), scopes=("inference",), endpoints=tuple(eps),
                       agents=tuple(r.sample(net.SDK_AGENTS, 2)), tz=net.TZ_OFFSET[country],
                       topics=tuple(r.sample(txt.TOPIC_NAMES, r.randint(3, 8))))

    def weight(self, a: Account) -> float:
        return self.rng.lognormvariate(0.0, 0.5)

    def requests(self, a: Account, n: int) -> list[Draft]:
        r = self.rng
        out = []
        for ts in sessions(r, self.w, a.tz, n, per_session=15, gap_s=45):
            topic = r.choice(a.topics)
            prompt = (txt.power_question(r, topic, 0.12) if r.random() < 0.6
                      else txt.casual_question(r, topic, 0.12))
            mt = r.choice((1024, 2048, 4096, 8192))
            out.append(self._draft(a, ts, prompt, r.choice(MODELS), mt, tokens(r, 600, 0.7, mt)))
        return out


class Enterprise(Population):
    """Enterprise applications: very high, narrow, templated volume from one org with
    several keys, old kyc accounts on cloud addresses, one template per app (some
    with "step by step" baked in), a payment card shared by the org's accounts."""

    name = "enterprise"
    ACCOUNTS_PER_ORG = 2

    def account(self, i: int) -> Account:
        r = self.rng
        org_i = i // self.ACCOUNTS_PER_ORG
        org_rng = random.Random(f"{self.ids.seed}|org|{org_i}")  # same org attributes for its accounts
        company = txt.COMPANIES[org_i % len(txt.COMPANIES)]
        cloud = org_rng.choice(net.nets_where("hosting", asns=net.ENTERPRISE_CLOUD_ASNS))
        block = net.random_slash24(org_rng, cloud)
        slug = company.split()[0].lower()
        return Account(id=self._id("acct", i), population=self.name, campaign=None, org=self._id("org", org_i),
                       age_days=round(r.uniform(200, 1500), 2), verification="kyc", tier="enterprise",
                       payment_fingerprint=self._id("pf", org_i), labels=("enterprise",),
                       keys=self._keys(i, r.randint(3, 6)), scopes=("inference", "batch"),
                       endpoints=tuple(net.endpoint(r, block) for _ in range(r.randint(3, 8))),
                       agents=(f"{slug}-app/3.{r.randint(0, 9)} sdk-java/2.3.0",), tz=net.TZ_OFFSET[cloud.country],
                       template=r.choice(txt.ENTERPRISE_TEMPLATES), company=company)

    def weight(self, a: Account) -> float:
        return self.rng.uniform(0.6, 1.4)

    def requests(self, a: Account, n: int) -> list[Draft]:
        r = self.rng
        out = []
        for _ in range(n):
            ts = diurnal_time(r, self.w, a.tz, flat=0.3)
            prompt = txt.enterprise_prompt(r, a.template, a.company)
            out.append(self._draft(a, ts, prompt, "frontier-small" if r.random() < 0.7 else "frontier-large",
                                   512, tokens(r, 150, 0.5, 512)))
        return out


class ChatBackend(Population):
    """Consumer chat products: one account and one key in front of many end users,
    conversational free text across many topics (breadth), with history."""

    name = "chat_backend"

    def account(self, i: int) -> Account:
        r = self.rng
        cloud = r.choice(net.nets_where("hosting", asns=(16509, 14061, 396982)))
        return Account(id=self._id("acct", i), population=self.name, campaign=None, org=self._id("org", i),
                       age_days=round(r.uniform(100, 900), 2), verification="kyc", tier="enterprise",
                       payment_fingerprint=self._id("pf", i), labels=("platform",), keys=self._keys(i, 1),
                       scopes=("inference",), endpoints=tuple(net.endpoint(r, cloud) for _ in range(r.randint(2, 4))),
                       agents=("sdk-node/4.67.3",), tz=net.TZ_OFFSET[cloud.country])

    def weight(self, a: Account) -> float:
        return self.rng.uniform(0.5, 1.5)

    def requests(self, a: Account, n: int) -> list[Draft]:
        r = self.rng
        out = []
        for _ in range(n):
            ts = diurnal_time(r, self.w, net.TZ_OFFSET[pick_country(r)], flat=0.2)  # users everywhere
            prompt = txt.chat_prompt(r, r.choice(txt.CHAT_TOPICS))
            out.append(self._draft(a, ts, prompt, "frontier-small" if r.random() < 0.8 else "frontier-large",
                                   1024, tokens(r, 250, 0.6, 1024)))
        return out


class Bursty(Population):
    """Batch jobs and flaky clients: one template sent in bursts a second apart,
    and identical prompts resent within seconds after a timeout."""

    name = "bursty"

    def account(self, i: int) -> Account:
        r = self.rng
        country = pick_country(r)
        ep = (net.residential_endpoint(r, country) if r.random() < 0.5
              else net.endpoint(r, r.choice(net.HOSTING_NETS)))
        return Account(id=self._id("acct", i), population=self.name, campaign=None, org=None,
                       age_days=round(r.uniform(10, 1000), 2), verification=r.choice(("email", "phone")),
                       tier=r.choice(("free", "pro")), payment_fingerprint=self._id("pf", i) if r.random() < 0.6 else None,
                       labels=(), keys=self._keys(i, 1), scopes=("inference",), endpoints=(ep,),
                       agents=(r.choice(net.SCRIPT_AGENTS),), tz=net.TZ_OFFSET[country],
                       template=r.choice(txt.BATCH_TEMPLATES))

    def weight(self, a: Account) -> float:
        return self.rng.lognormvariate(0.0, 0.7)

    def requests(self, a: Account, n: int) -> list[Draft]:
        r = self.rng
        out: list[Draft] = []
        while len(out) < n:
            t = diurnal_time(r, self.w, a.tz)
            for _ in range(r.randint(5, 60)):  # one batch
                if len(out) >= n:
                    break
                prompt = txt.batch_prompt(r, a.template)
                draft = self._draft(a, self.w.clamp(t), prompt, "frontier-small", 256, tokens(r, 80, 0.5, 256))
                out.append(draft)
                t += r.uniform(0.3, 2.0)
                while len(out) < n and r.random() < 0.15:  # timeout, same prompt again
                    t += r.uniform(1.0, 8.0)
                    out.append(self._draft(a, self.w.clamp(t), prompt, draft.model, 256, draft.completion_tokens,
                                           endpoint=draft.endpoint))
        return out


# ---------------------------------------------------------------- campaigns

class FastDistill(Population):
    """Campaign (a): thousands of fresh, lightly verified surrogate accounts on a few
    hosting /24s, some sharing payment cards, each living a few hours and staying
    under per-account limits, sending slot-filled templates that sweep capabilities,
    most asking for step-by-step reasoning."""

    name = "distill_fast"
    campaign = "distill-fast"
    N_BLOCKS = 12
    WAVE_S = 2700.0

    def __init__(self, rng: random.Random, ids: Ids, window: Window) -> None:
        super().__init__(rng, ids, window)
        hosting = net.nets_where("hosting", asns=net.SURROGATE_HOSTING_ASNS)
        self.blocks = [net.random_slash24(rng, rng.choice(hosting)) for _ in range(self.N_BLOCKS)]
        self.first = window.start + 0.05 * window.span
        self.last = window.start + 0.95 * window.span

    def make_accounts(self, n: int) -> list[Account]:
        self.cards = [self._id("pf", k) for k in range(max(1, n // 25))]  # shared by ~14 accounts each
        return super().make_accounts(n)

    def account(self, i: int) -> Account:
        r = self.rng
        block = r.choice(self.blocks)
        pf = r.choice(self.cards) if r.random() < 0.55 else None
        life = r.uniform(1.0, 3.0) * 3600.0
        start = r.uniform(self.first, max(self.first, self.last - life))
        start = self.first + ((start - self.first) // self.WAVE_S) * self.WAVE_S + r.uniform(0, 300)  # waves
        wave = int((start - self.first) // self.WAVE_S)
        return Account(id=self._id("acct", i), population=self.name, campaign=self.campaign, org=None,
                       age_days=round(r.uniform(0.0, 6.9), 2), verification=r.choice(("none", "email")),
                       tier="pro" if pf else "free", payment_fingerprint=pf, labels=(), keys=self._keys(i, 1),
                       scopes=("inference",),
                       endpoints=tuple(net.endpoint(r, block) for _ in range(r.randint(1, 2))),
                       agents=(r.choice(net.SCRIPT_AGENTS),), tz=0.0,
                       active=(start, min(self.w.end, start + life)), extra={"wave": wave})

    def weight(self, a: Account) -> float:
        return self.rng.uniform(0.8, 1.2)  # flat: each account stays under naive limits

    def requests(self, a: Account, n: int) -> list[Draft]:
        r = self.rng
        assert a.active is not None
        focus = txt.CAPABILITIES[a.extra["wave"] % len(txt.CAPABILITIES)]  # waves sweep capabilities
        out = []
        for ts in spaced(r, a.active[0], a.active[1], n, jitter=0.7):
            cap = focus if r.random() < 0.7 else r.choice(txt.CAPABILITIES)
            prompt = txt.fast_distill_prompt(r, cap)
            mt = r.choice((4096, 8192, 8192))
            median = 1400 if txt.asks_step_by_step(prompt) else 500
            out.append(self._draft(a, self.w.clamp(ts), prompt, "frontier-large", mt, tokens(r, median, 0.5, mt)))
        return out


class GuardrailProbe(Population):
    """Campaign (b): paraphrased safety probes from fresh accounts on VPS and home
    addresses, in bursts, mapping what the model refuses (mostly short refusals)."""

    name = "guardrail_probe"
    campaign = "guardrail-probe"

    def __init__(self, rng: random.Random, ids: Ids, window: Window) -> None:
        super().__init__(rng, ids, window)
        hosting = net.nets_where("hosting", asns=(20473, 14061, 63949))
        self.blocks = [net.random_slash24(rng, rng.choice(hosting)) for _ in range(3)]

    def account(self, i: int) -> Account:
        r = self.rng
        country = pick_country(r)
        eps = [net.endpoint(r, r.choice(self.blocks)) if r.random() < 0.7 else net.residential_endpoint(r, country)
               for _ in range(r.randint(1, 3))]
        return Account(id=self._id("acct", i), population=self.name, campaign=self.campaign, org=None,
                       age_days=round(r.uniform(0.0, 30.0), 2), verification=r.choice(("none", "email", "email", "phone")),
                       tier="free", payment_fingerprint=None, labels=(), keys=self._keys(i, 1),
                       scopes=("inference",), endpoints=tuple(eps),
                       agents=(r.choice(net.SCRIPT_AGENTS + net.BROWSER_AGENTS),), tz=net.TZ_OFFSET[country],
                       extra={"intent": r.randrange(txt.N_PROBE_INTENTS)})

    def weight(self, a: Account) -> float:
        return self.rng.uniform(0.5, 1.5)

    def requests(self, a: Account, n: int) -> list[Draft]:
        r = self.rng
        out = []
        for k, ts in enumerate(sessions(r, self.w, 0.0, n, per_session=20, gap_s=40, flat=1.0)):
            intent = (a.extra["intent"] + k // 8) % txt.N_PROBE_INTENTS  # covers intents in turn
            refused = r.random() < 0.8
            out.append(self._draft(a, ts, txt.guardrail_probe(r, intent), "frontier-large", 2048,
                                   tokens(r, 90, 0.5, 2048) if refused else tokens(r, 500, 0.6, 2048)))
        return out


class SlowDistill(Population):
    """Campaign (c): fewer, older, phone/kyc-verified accounts on residential proxies
    across countries, each sweeping many topics with systematic but paraphrased
    prompts at a modest, regular pace all day long."""

    name = "distill_slow"
    campaign = "distill-slow"

    def account(self, i: int) -> Account:
        r = self.rng
        eps = tuple(net.endpoint(r, r.choice(net.RESIDENTIAL_NETS)) for _ in range(r.randint(4, 10)))
        return Account(id=self._id("acct", i), population=self.name, campaign=self.campaign, org=None,
                       age_days=round(r.uniform(60, 700), 2), verification=r.choice(("phone", "phone", "kyc")),
                       tier="pro", payment_fingerprint=self._id("pf", i), labels=(), keys=self._keys(i, 1),
                       scopes=("inference",), endpoints=eps,
                       agents=(r.choice(net.BROWSER_AGENTS + net.SDK_AGENTS[:2]),), tz=0.0,
                       topics=tuple(r.sample(txt.TOPIC_NAMES, r.randint(18, 28))))

    def weight(self, a: Account) -> float:
        return self.rng.uniform(0.7, 1.3)

    def requests(self, a: Account, n: int) -> list[Draft]:
        r = self.rng
        per_topic = max(1, math.ceil(n / len(a.topics)))
        out = []
        for k, ts in enumerate(spaced(r, self.w.start, self.w.end, n, jitter=0.8)):
            topic = a.topics[(k // per_topic) % len(a.topics)]  # systematic sweep
            concept = txt.TOPICS[topic][k % len(txt.TOPICS[topic])]
            out.append(self._draft(a, self.w.clamp(ts), txt.slow_distill_prompt(r, topic, concept),
                                   "frontier-large", 4096, tokens(r, 900, 0.4, 4096)))
        return out


POPULATIONS: dict[str, type[Population]] = {
    p.name: p for p in (SmallDev, PowerUser, Enterprise, ChatBackend, Bursty, FastDistill, GuardrailProbe, SlowDistill)
}
