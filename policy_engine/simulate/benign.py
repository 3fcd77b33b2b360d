"""Honest populations, each carrying the traps a naive rule falls into.

Several are twins of a campaign signal: a class of fresh accounts pasting one
assignment behind a few campus addresses (a surrogate fleet on a /24), coding
agents with identical system prompts, huge contexts and a request every few
seconds (agentic distillation), developers hopping between carrier NAT, office
and VPN addresses shared with strangers (proxy rotation), evaluation harnesses
walking benchmarks with "Let's think step by step" on a new model (fast
distillation), researchers sweeping domains with reasoning requests (slow
distillation), security researchers who rephrase after a refusal (guardrail
probing). Every parameter is a range drawn per seed (see world.py).
"""

from __future__ import annotations


import math
import random
from collections.abc import Callable
from typing import Any

from policy_engine.simulate import agent_text as agent
from policy_engine.simulate import eval_text as bench
from policy_engine.simulate import network as net
from policy_engine.simulate import probe_text as probe
from policy_engine.simulate import prompts as txt
from policy_engine.simulate.base import (
    MODELS,
    Account,
    Draft,
    Places,
    Population,
    diurnal_time,
    hours_time,
    pick_country,
    session_groups,
    split_sizes,
    tokens,
)
from policy_engine.simulate.network import Endpoint
from policy_engine.simulate.world import Int, Subset, Uniform, Weights

CAMPUS_COUNTRIES: tuple[str, ...] = tuple(sorted({n.country for n in net.CAMPUS_NETS}))


def _language(rng: random.Random, share: float, languages: list[str]) -> str | None:
    return rng.choice(languages) if languages and rng.random() < share else None


def _verification(rng: random.Random, fresh: bool, unverified: float) -> str:
    if fresh:
        return "none" if rng.random() < unverified else rng.choice(("email", "email", "email", "phone"))
    return rng.choices(("none", "email", "phone", "kyc"), (0.05, 0.55, 0.3, 0.1))[0]


def _sessions(
    pop: Population, a: Account, n: int, ask: Callable[[], str], max_tokens: tuple[int, ...], spread: float
) -> list[Draft]:
    """A person's `n` requests in sessions, each session from one of the account's
    places; `ask()` writes a prompt, answers around the population's median length."""
    r, p = pop.rng, pop.p
    out = []
    for group in session_groups(r, pop.w, a.tz, n, per_session=p["per_session"], gap_s=p["gap_s"]):
        ep = a.extra["places"].pick(r, pop.world, group[0])
        for ts in group:
            prompt = ask()
            mt = r.choice(max_tokens)
            model = pop._model(ts, p["new_model"], r.choice(MODELS))
            out.append(pop._draft(a, ts, prompt, model, mt, tokens(r, p["answer_median"], spread, mt), endpoint=ep))
    return out


def _power_or_casual(pop: Population, a: Account, power_share: float) -> str:
    r, step = pop.rng, pop.p["step"]
    topic = r.choice(a.topics)
    return txt.power_question(r, topic, step) if r.random() < power_share else txt.casual_question(r, topic, step)


class SmallDev(Population):
    """Many small developers: a few requests in one or two sessions, one or two
    topics, sometimes from a cloud box, a phone or a VPN."""

    name = "small_dev"
    ACCOUNTS = Int(2500, 9000)
    SHARE = Uniform(0.06, 0.16)
    PARAMS = {
        "fresh": Uniform(0.05, 0.30),  # signed up this week
        "signup_today": Uniform(0.1, 0.5),  # of the fresh: signed up minutes before their first request
        "fresh_unverified": Uniform(0.1, 0.5),
        "pro": Uniform(0.1, 0.4),
        "shared_card": Uniform(0.0, 0.12),  # pro accounts paying with a teammate's card
        "cloud": Uniform(0.05, 0.35),
        "mobile": Uniform(0.03, 0.25),
        "vpn": Uniform(0.02, 0.15),
        "step": Uniform(0.02, 0.15),
        "retry": Uniform(0.0, 0.08),
        "non_english": Uniform(0.0, 0.3),
        "languages": Subset(txt.LANGUAGE_CODES, 2, 12),
        "per_session": Int(3, 12),
        "gap_s": Uniform(30.0, 180.0),
        "new_model": Uniform(0.0, 0.3),
        "tester": Uniform(0.02, 0.3),  # first request of a new key is "hi" or "test"
        "age_median": Int(90, 500),
        "answer_median": Int(200, 600),
    }
    last_card: str | None = None

    def account(self, i: int) -> Account:
        r, p = self.rng, self.p
        country = pick_country(r)
        fresh = r.random() < p["fresh"]
        age = r.uniform(0, 7) if fresh else min(2500.0, r.lognormvariate(math.log(p["age_median"]), 1.0))
        pro = r.random() < p["pro"]
        pf = self._id("pf", i) if pro else None
        if pro and self.last_card and r.random() < p["shared_card"]:
            pf = self.last_card
        self.last_card = pf or self.last_card
        places = Places(country, net.residential_endpoint(r, country), weights={"home": 1.0})
        if r.random() < p["cloud"]:
            places.cloud, places.weights["cloud"] = net.hosting_endpoint(r), 0.6
        if r.random() < p["mobile"]:
            places.weights["mobile"] = 0.5
        if r.random() < p["vpn"]:
            places.weights["vpn"], places.vpn_favourite = 0.8, r.randrange(1000)
        return self._account(
            i,
            created_ts=self._created(age),
            verification=_verification(r, fresh, p["fresh_unverified"]),
            tier="pro" if pro else "free",
            payment_fingerprint=pf,
            keys=self._keys(i, r.choice((1, 1, 2))),
            endpoints=(places.home,),
            agents=(r.choice(net.SDK_AGENTS),),
            tz=net.TZ_OFFSET[country],
            topics=tuple(r.sample(txt.TECH_TOPICS, 1) + r.sample(txt.TOPIC_NAMES, r.randint(0, 1))),
            extra={
                "places": places,
                "lang": _language(r, p["non_english"], p["languages"]),
                "signup_today": fresh and r.random() < p["signup_today"],
            },
        )

    def weight(self, a: Account) -> float:
        return self.rng.lognormvariate(0.0, 0.9)

    def requests(self, a: Account, n: int) -> list[Draft]:
        r, p = self.rng, self.p
        out = _sessions(
            self,
            a,
            n,
            lambda: txt.casual_or_local(r, r.choice(a.topics), p["step"], a.extra["lang"]),
            (512, 1024, 2048, 4096),
            0.8,
        )
        self._tester(out, p["tester"])
        if a.extra["signup_today"]:  # created minutes before the first request
            a.created_ts = min(d.ts for d in out) - r.uniform(60, 1800)
        return self._with_resends(out, p["retry"])


class PowerUser(Population):
    """Power users: hundreds of requests a day over several topics, long prompts."""

    name = "power_user"
    ACCOUNTS = Int(120, 500)
    SHARE = Uniform(0.08, 0.2)
    PARAMS = {
        "topics_min": Int(2, 4),
        "topics_max": Int(6, 14),
        "step": Uniform(0.05, 0.25),
        "cloud": Uniform(0.1, 0.5),
        "mobile": Uniform(0.05, 0.4),
        "vpn": Uniform(0.02, 0.2),
        "per_session": Int(8, 30),
        "gap_s": Uniform(20.0, 90.0),
        "retry": Uniform(0.0, 0.08),
        "new_model": Uniform(0.05, 0.5),
        "answer_median": Int(350, 1000),
    }

    def account(self, i: int) -> Account:
        r, p = self.rng, self.p
        country = pick_country(r)
        places = Places(country, net.residential_endpoint(r, country), weights={"home": 1.0})
        if r.random() < p["cloud"]:
            places.cloud, places.weights["cloud"] = net.hosting_endpoint(r), 0.5
        if r.random() < p["mobile"]:
            places.weights["mobile"] = 0.3
        if r.random() < p["vpn"]:
            places.weights["vpn"], places.vpn_favourite = 0.5, r.randrange(1000)
        return self._account(
            i,
            created_ts=self._created(r.uniform(30, 1500)),
            verification=r.choices(("email", "phone", "kyc"), (0.3, 0.5, 0.2))[0],
            tier=r.choice(("pro", "pro", "team")),
            payment_fingerprint=self._id("pf", i),
            keys=self._keys(i, r.randint(1, 3)),
            endpoints=(places.home,),
            agents=tuple(r.sample(net.SDK_AGENTS, 2)),
            tz=net.TZ_OFFSET[country],
            topics=tuple(r.sample(txt.TOPIC_NAMES, r.randint(p["topics_min"], p["topics_max"]))),
            extra={"places": places},
        )

    def weight(self, a: Account) -> float:
        return self.rng.lognormvariate(0.0, 0.5)

    def requests(self, a: Account, n: int) -> list[Draft]:
        out = _sessions(self, a, n, lambda: _power_or_casual(self, a, 0.6), (1024, 2048, 4096, 8192), 0.7)
        return self._with_resends(out, self.p["retry"])


class Enterprise(Population):
    """Enterprise applications: very high, narrow, templated volume from orgs with
    several accounts and keys, old kyc accounts on cloud addresses, one template
    per app (some with "step by step" baked in), one card per org or invoiced."""

    name = "enterprise"
    ACCOUNTS = Int(8, 48)
    SHARE = Uniform(0.08, 0.2)
    PARAMS = {
        "org_size_max": Int(2, 8),
        "invoiced": Uniform(0.2, 0.8),  # orgs paying by invoice: no card on file
        "keys_max": Int(2, 8),
        "flat": Uniform(0.1, 0.6),  # share of volume spread over the whole day (global customers)
        "new_model": Uniform(0.0, 0.15),
        "answer_median": Int(80, 300),
    }

    def make_accounts(self, n: int) -> list[Account]:
        self.org_of: list[int] = []
        for org, size in enumerate(split_sizes(self.rng, n, 1, self.p["org_size_max"])):
            self.org_of.extend([org] * size)
        return super().make_accounts(n)

    def account(self, i: int) -> Account:
        r, p = self.rng, self.p
        org_i = self.org_of[i]
        org_rng = random.Random(f"{self.ids.seed}|{self.name}|org|{org_i}")  # same org attributes for its accounts
        company = txt.COMPANIES[org_i % len(txt.COMPANIES)]
        cloud = org_rng.choice(net.nets_where("hosting", asns=net.ENTERPRISE_CLOUD_ASNS))
        block = net.random_slash24(org_rng, cloud)
        invoiced = org_rng.random() < p["invoiced"]
        slug = company.split()[0].lower()
        return self._account(
            i,
            org=self._id("org", org_i),
            created_ts=self._created(r.uniform(120, 1500)),
            verification="kyc",
            tier="enterprise",
            payment_fingerprint=None if invoiced else self._id("pf", org_i),
            labels=("enterprise",),
            keys=self._keys(i, r.randint(1, p["keys_max"])),
            scopes=("inference", "batch"),
            endpoints=tuple(net.endpoint(r, block) for _ in range(r.randint(2, 8))),
            agents=(f"{slug}-app/3.{r.randint(0, 9)} sdk-java/2.3.0",),
            tz=net.TZ_OFFSET[cloud.country],
            template=r.choice(txt.ENTERPRISE_TEMPLATES),
            company=company,
        )

    def weight(self, a: Account) -> float:
        return self.rng.uniform(0.4, 1.6)

    def requests(self, a: Account, n: int) -> list[Draft]:
        r, p = self.rng, self.p
        out = []
        for _ in range(n):
            ts = diurnal_time(r, self.w, a.tz, flat=p["flat"])
            model = self._model(ts, p["new_model"], "frontier-small" if r.random() < 0.7 else "frontier-large")
            out.append(
                self._draft(
                    a,
                    ts,
                    txt.enterprise_prompt(r, a.template, a.company),
                    model,
                    512,
                    tokens(r, p["answer_median"], 0.5, 512),
                )
            )
        return out


class ChatBackend(Population):
    """Consumer chat products: one account in front of thousands of end users, a
    product system prompt, history in the prompt, many languages, role-play and
    homework, and the occasional end user trying a jailbreak or asking for the
    system prompt. Some carry the `platform` label, some don't."""

    name = "chat_backend"
    ACCOUNTS = Int(3, 14)
    SHARE = Uniform(0.07, 0.18)
    PARAMS = {
        "platform_label": Uniform(0.2, 0.9),
        "languages": Subset(txt.LANGUAGE_CODES, 2, 12),
        "non_english": Uniform(0.05, 0.5),
        "roleplay": Uniform(0.02, 0.25),
        "homework": Uniform(0.03, 0.3),
        "jailbreak": Uniform(0.001, 0.02),
        "extraction": Uniform(0.0005, 0.01),
        "history_max": Int(2, 12),
        "regenerate": Uniform(0.01, 0.08),
        "keys_max": Int(1, 4),
        "new_model": Uniform(0.0, 0.3),
        "answer_median": Int(150, 450),
    }

    def account(self, i: int) -> Account:
        r, p = self.rng, self.p
        cloud = r.choice(net.nets_where("hosting", asns=(16509, 14618, 14061, 396982, 8075)))
        bot = txt.CHAT_PRODUCTS[(i + r.randrange(len(txt.CHAT_PRODUCTS))) % len(txt.CHAT_PRODUCTS)]
        return self._account(
            i,
            org=self._id("org", i),
            created_ts=self._created(r.uniform(60, 900)),
            verification="kyc",
            tier=r.choice(("enterprise", "team")),
            payment_fingerprint=self._id("pf", i),
            labels=("platform",) if r.random() < p["platform_label"] else (),
            keys=self._keys(i, r.randint(1, p["keys_max"])),
            endpoints=tuple(net.endpoint(r, cloud) for _ in range(r.randint(2, 6))),
            agents=(r.choice(("sdk-node/4.67.3", "sdk-python/1.51.0", "sdk-go/0.9.2")),),
            tz=net.TZ_OFFSET[cloud.country],
            extra={"system": txt.chat_system_prompt(r, bot)},
        )

    def weight(self, a: Account) -> float:
        return self.rng.uniform(0.3, 1.7)

    def requests(self, a: Account, n: int) -> list[Draft]:
        r, p = self.rng, self.p
        kinds = ("roleplay", "homework", "jailbreak", "extraction", "chat")
        weights = (
            p["roleplay"],
            p["homework"],
            p["jailbreak"],
            p["extraction"],
            max(0.0, 1.0 - p["roleplay"] - p["homework"] - p["jailbreak"] - p["extraction"]),
        )
        out = []
        for _ in range(n):
            ts = diurnal_time(r, self.w, net.TZ_OFFSET[pick_country(r)], flat=0.2)  # end users everywhere
            kind = r.choices(kinds, weights)[0]
            lang = _language(r, p["non_english"], p["languages"])
            prompt = txt.chat_product_prompt(
                r, a.extra["system"], r.choice(txt.CHAT_TOPICS), r.randint(0, p["history_max"]), lang, kind
            )
            refused = kind in ("jailbreak", "extraction") and r.random() < 0.9
            model = self._model(ts, p["new_model"], "frontier-small" if r.random() < 0.8 else "frontier-large")
            out.append(
                self._draft(
                    a,
                    ts,
                    prompt,
                    model,
                    1024,
                    tokens(r, 40, 0.4, 1024) if refused else tokens(r, p["answer_median"], 0.6, 1024),
                )
            )
        return self._with_resends(out, p["regenerate"], 2.0, 40.0)


class Bursty(Population):
    """Batch jobs and flaky clients: one template sent in bursts a second apart,
    and identical prompts resent within seconds after a timeout."""

    name = "bursty"
    ACCOUNTS = Int(120, 600)
    SHARE = Uniform(0.03, 0.1)
    PARAMS = {
        "burst_min": Int(3, 10),
        "burst_max": Int(20, 150),
        "gap_max": Uniform(0.5, 3.0),
        "retry": Uniform(0.05, 0.25),
        "cloud": Uniform(0.3, 0.8),
        "paid": Uniform(0.3, 0.8),
    }

    def account(self, i: int) -> Account:
        r, p = self.rng, self.p
        country = pick_country(r)
        ep = net.hosting_endpoint(r) if r.random() < p["cloud"] else net.residential_endpoint(r, country)
        paid = r.random() < p["paid"]
        return self._account(
            i,
            created_ts=self._created(r.uniform(2, 1000)),
            verification=r.choice(("email", "phone")),
            tier="pro" if paid else "free",
            payment_fingerprint=self._id("pf", i) if paid else None,
            keys=self._keys(i, 1),
            endpoints=(ep,),
            agents=(r.choice(net.SCRIPT_AGENTS),),
            tz=net.TZ_OFFSET[country],
            template=r.choice(txt.BATCH_TEMPLATES),
        )

    def weight(self, a: Account) -> float:
        return self.rng.lognormvariate(0.0, 0.7)

    def requests(self, a: Account, n: int) -> list[Draft]:
        r, p = self.rng, self.p
        out: list[Draft] = []
        while len(out) < n:
            t = diurnal_time(r, self.w, a.tz)
            for _ in range(r.randint(p["burst_min"], p["burst_max"])):  # one batch
                if len(out) >= n:
                    break
                draft = self._draft(
                    a, t, txt.batch_prompt(r, a.template), "frontier-small", 256, tokens(r, 80, 0.5, 256)
                )
                out.append(draft)
                t += r.uniform(0.2, p["gap_max"])
                while len(out) < n and r.random() < p["retry"]:  # timeout, same prompt again
                    t += r.uniform(1.0, 8.0)
                    out.append(self._resend(draft, t - draft.ts, regenerate=False))
        return out


class Classroom(Population):
    """University classes and bootcamps: fresh, email-verified free accounts (many
    created minutes before class) behind one to six campus NAT addresses, all
    pasting the same assignment with small edits in a one-to-three-hour class,
    then asking follow-ups; some carry on at home in the evening."""

    name = "classroom"
    ACCOUNTS = Int(150, 1500)
    SHARE = Uniform(0.015, 0.06)
    PARAMS = {
        "class_min": Int(8, 25),
        "class_max": Int(40, 250),
        "bootcamp": Uniform(0.1, 0.5),  # classes in a bootcamp's office rather than on campus
        "nat_max": Int(1, 6),  # NAT addresses of a class: 1 to this many
        "fresh": Uniform(0.4, 0.95),  # students who sign up for this class
        "signup_lead_min": Int(3, 45),  # they sign up at most this many minutes before class
        "class_hours_min": Uniform(1.0, 1.5),
        "class_hours_max": Uniform(1.5, 3.0),
        "phone": Uniform(0.0, 0.25),  # students on their phone's carrier NAT instead of the wifi
        "edited": Uniform(0.2, 0.9),  # pastes with a small edit
        "step": Uniform(0.1, 0.6),
        "after_class": Uniform(0.05, 0.4),
        "retry": Uniform(0.01, 0.1),
        "answer_median": Int(250, 800),
    }

    def make_accounts(self, n: int) -> list[Account]:
        r, p = self.rng, self.p
        self.class_of: list[dict[str, Any]] = []
        for size in split_sizes(r, n, p["class_min"], p["class_max"]):
            country = r.choice(CAMPUS_COUNTRIES)
            bootcamp = r.random() < p["bootcamp"]
            where = (
                net.nets_or_residential("business", country) if bootcamp else net.nets_where("campus", country=country)
            )
            nat_net = r.choice(where)
            tz = net.TZ_OFFSET[country]
            hours = r.uniform(p["class_hours_min"], p["class_hours_max"])
            start = min(hours_time(r, self.w, tz, 8, 19), max(self.w.start, self.w.end - hours * 3600))
            c = {
                "country": country,
                "tz": tz,
                "start": start,
                "end": min(self.w.end, start + hours * 3600),
                "nat": tuple(net.endpoint(r, nat_net) for _ in range(r.randint(1, p["nat_max"]))),
                "text": txt.assignment(r),
                "bootcamp": bootcamp,
            }
            self.class_of.extend([c] * size)
        return super().make_accounts(n)

    def account(self, i: int) -> Account:
        r, p = self.rng, self.p
        c = self.class_of[i]
        fresh = r.random() < p["fresh"]
        created = c["start"] - r.uniform(1, p["signup_lead_min"]) * 60 if fresh else self._created(r.uniform(20, 900))
        return self._account(
            i,
            created_ts=created,
            verification="email" if fresh else r.choice(("email", "email", "phone")),
            tier="free" if fresh or r.random() < 0.8 else "pro",
            payment_fingerprint=None,
            keys=self._keys(i, 1),
            endpoints=c["nat"],
            agents=(r.choice(net.BROWSER_AGENTS + net.SDK_AGENTS[:3]),),
            tz=c["tz"],
            active=(c["start"], c["end"]),
            extra={
                "class": c,
                "phone": r.random() < p["phone"],
                "home": net.residential_endpoint(r, c["country"]),
                "after": r.random() < p["after_class"],
            },
        )

    def weight(self, a: Account) -> float:
        return self.rng.lognormvariate(0.0, 0.6)

    def requests(self, a: Account, n: int) -> list[Draft]:
        r, p = self.rng, self.p
        c = a.extra["class"]
        assert a.active is not None
        first, last = a.active
        paste = txt.student_paste(r, c["text"], r.random() < p["edited"], r.random() < p["step"])
        out = []
        t = first + r.uniform(0, min(1200.0, (last - first) / 3))
        for k in range(n):
            home = a.extra["after"] and k >= max(1, n * 2 // 3)  # the rest in the evening, at home
            if home:
                t = max(t, last) + r.uniform(3600, 4 * 3600) if k == max(1, n * 2 // 3) else t + r.uniform(30, 600)
                ep = a.extra["home"]
            else:
                ep = self.world.pools.mobile(r, c["country"]) if a.extra["phone"] else r.choice(c["nat"])
            if k == 0 or r.random() < 0.15:
                prompt = paste if k == 0 else txt.student_paste(r, c["text"], True, r.random() < p["step"])
            else:
                prompt = f"{paste}\n\nuser: {txt.student_follow_up(r)}"  # the chat sends the conversation
            out.append(
                self._draft(a, t, prompt, r.choice(MODELS), 2048, tokens(r, p["answer_median"], 0.6, 2048), endpoint=ep)
            )
            if not home:
                t = min(last, t + r.expovariate(n / max(60.0, last - t)))
        return self._with_resends(out, p["retry"], 2.0, 30.0)


class CodingAgent(Population):
    """Coding-agent power users: long agent loops (a request every few seconds for
    up to hours), contexts growing to well over 100k tokens and then compacted,
    the tool's system prompt identical for every user of the tool, paid tiers,
    sometimes two agents in parallel; completions are modest."""

    name = "coding_agent"
    ACCOUNTS = Int(20, 160)
    SHARE = Uniform(0.05, 0.14)
    PARAMS = {
        "tools": Subset(agent.AGENT_TOOLS, 2, 6),
        "gap_min": Uniform(3.0, 6.0),
        "gap_max": Uniform(8.0, 15.0),
        "session_h_min": Uniform(0.3, 1.0),
        "session_h_max": Uniform(2.0, 6.0),
        "ctx_start_min": Int(6000, 12000),
        "ctx_start_max": Int(15000, 30000),
        "ctx_cap_min": Int(90000, 120000),
        "ctx_cap_max": Int(140000, 190000),
        "growth_median": Int(1500, 5000),  # tokens a step adds (tool output, code)
        "parallel": Uniform(0.05, 0.4),  # sessions run next to a second agent
        "completion_median": Int(150, 700),
        "cloud_devbox": Uniform(0.1, 0.5),
        "office": Uniform(0.1, 0.6),
        "retry": Uniform(0.005, 0.05),
        "new_model": Uniform(0.1, 0.8),
    }

    def account(self, i: int) -> Account:
        r, p = self.rng, self.p
        country = pick_country(r)
        places = Places(country, net.residential_endpoint(r, country), weights={"home": 1.0})
        if r.random() < p["office"]:
            office_net = r.choice(net.nets_or_residential("business", country))
            places.office, places.weights["office"] = net.endpoint(r, office_net), 2.0
        if r.random() < p["cloud_devbox"]:
            places.cloud, places.weights["cloud"] = net.hosting_endpoint(r), 1.0
        tools = tuple(r.sample(p["tools"], min(len(p["tools"]), r.choice((1, 1, 2)))))
        return self._account(
            i,
            created_ts=self._created(math.exp(r.uniform(math.log(3), math.log(1500)))),
            verification=r.choice(("email", "phone", "phone", "kyc")),
            tier=r.choice(("pro", "pro", "team", "enterprise")),
            payment_fingerprint=self._id("pf", i),
            keys=self._keys(i, len(tools)),
            endpoints=(places.home,),
            agents=tuple(f"{t}/{r.randint(0, 3)}.{r.randint(0, 30)}.{r.randint(0, 9)}" for t in tools),
            tz=net.TZ_OFFSET[country],
            extra={"places": places, "tools": tools},
        )

    def weight(self, a: Account) -> float:
        return self.rng.lognormvariate(0.0, 0.8)

    def requests(self, a: Account, n: int) -> list[Draft]:
        r, p = self.rng, self.p
        out: list[Draft] = []
        while len(out) < n:
            gap = r.uniform(p["gap_min"], p["gap_max"])
            steps = min(n - len(out), max(1, int(r.uniform(p["session_h_min"], p["session_h_max"]) * 3600 / gap)))
            start = diurnal_time(r, self.w, a.tz)
            lanes = 2 if steps >= 20 and r.random() < p["parallel"] else 1
            ep = a.extra["places"].pick(r, self.world, start)
            for lane in range(lanes):
                size = steps // lanes + (steps % lanes if lane == 0 else 0)
                k = r.randrange(len(a.extra["tools"]))
                out.extend(self._session(a, k, start + lane * r.uniform(5, 120), size, gap, ep, p))
        return self._with_resends(out[:n], p["retry"], 1.0, 10.0)

    def _session(
        self, a: Account, k: int, t: float, steps: int, gap: float, ep: Endpoint, p: dict[str, Any]
    ) -> list[Draft]:
        """One agent loop: the context grows by each step's tool output until the
        tool compacts it into a summary."""
        r = self.rng
        system = agent.tool_system_prompt(a.extra["tools"][k])
        head = system + agent.session_task(r) + "\n"
        text = agent.transcript(r, head, agent.PROMPT_CHAR_CAP)
        ctx = r.randint(p["ctx_start_min"], p["ctx_start_max"])
        cap = r.randint(p["ctx_cap_min"], p["ctx_cap_max"])
        mt = r.choice((8192, 16384, 32000))
        model = self._model(t, p["new_model"], "frontier-large")
        return self._agent_loop(a, k, t, steps, gap, system, text, (ctx, cap), mt, model, 0.8, ep)


class RoamingDev(Population):
    """Developers on the move: home ISP (which may renumber them), an office egress
    shared with colleagues (sometimes a cloud proxy shared by many companies), a
    phone on a carrier NAT pool, VPN exits shared with strangers; a few travel."""

    name = "roaming_dev"
    ACCOUNTS = Int(300, 2500)
    SHARE = Uniform(0.03, 0.10)
    PARAMS = {
        "company_min": Int(2, 5),
        "company_max": Int(8, 60),
        "office": Uniform(0.3, 0.9),
        "zscaler": Uniform(0.0, 0.5),  # companies whose office traffic leaves through a shared cloud proxy
        "mobile": Uniform(0.2, 0.8),
        "vpn": Uniform(0.05, 0.5),
        "traveller": Uniform(0.01, 0.08),
        "home_ip_change": Uniform(0.02, 0.2),
        "per_session": Int(2, 8),
        "step": Uniform(0.02, 0.15),
        "retry": Uniform(0.0, 0.06),
        "new_model": Uniform(0.0, 0.3),
        "gap_s": Uniform(30.0, 150.0),
        "tester": Uniform(0.0, 0.15),
        "answer_median": Int(250, 800),
    }

    def make_accounts(self, n: int) -> list[Account]:
        r, p = self.rng, self.p
        self.company_of: list[dict[str, Any]] = []
        for size in split_sizes(r, n, p["company_min"], p["company_max"]):
            country = pick_country(r)
            egress: tuple[Endpoint, ...]
            if country == "US" and r.random() < p["zscaler"] or r.random() < p["zscaler"] / 3:
                egress = (r.choice(self.world.pools.zscaler),)
            else:
                office_net = r.choice(net.nets_or_residential("business", country))
                egress = tuple(net.endpoint(r, office_net) for _ in range(r.choice((1, 1, 2))))
            self.company_of.extend([{"country": country, "egress": egress}] * size)
        return super().make_accounts(n)

    def account(self, i: int) -> Account:
        r, p = self.rng, self.p
        company = self.company_of[i]
        country = company["country"]
        places = Places(country, net.residential_endpoint(r, country), weights={"home": 1.0})
        if r.random() < p["office"]:
            places.office, places.weights["office"] = r.choice(company["egress"]), 3.0
        if r.random() < p["mobile"]:
            places.weights["mobile"] = r.uniform(0.2, 1.0)
        if r.random() < p["vpn"]:
            places.weights["vpn"], places.vpn_favourite = r.uniform(0.2, 1.5), r.randrange(1000)
        if r.random() < p["home_ip_change"]:
            places.home_changes_at = self.w.start + r.random() * self.w.span
            places.new_home = net.residential_endpoint(r, country)
        if r.random() < p["traveller"]:
            places.abroad = (
                self.w.start + r.uniform(0.2, 0.8) * self.w.span,
                r.choice([c for c, _ in net.BENIGN_COUNTRIES if c != country]),
            )
        return self._account(
            i,
            created_ts=self._created(math.exp(r.uniform(math.log(10), math.log(2000)))),
            verification=r.choice(("email", "email", "phone", "kyc")),
            tier=r.choice(("free", "pro", "pro", "team")),
            payment_fingerprint=self._id("pf", i),
            keys=self._keys(i, r.randint(1, 2)),
            endpoints=(places.home,),
            agents=tuple(r.sample(net.SDK_AGENTS, 2)),
            tz=net.TZ_OFFSET[country],
            topics=tuple(r.sample(txt.TECH_TOPICS, 2) + r.sample(txt.TOPIC_NAMES, r.randint(0, 3))),
            extra={"places": places},
        )

    def weight(self, a: Account) -> float:
        return self.rng.lognormvariate(0.0, 0.8)

    def requests(self, a: Account, n: int) -> list[Draft]:
        out = _sessions(self, a, n, lambda: _power_or_casual(self, a, 0.4), (1024, 2048, 4096), 0.8)
        self._tester(out, self.p["tester"])
        return self._with_resends(out, self.p["retry"])


class EvalHarness(Population):
    """Evaluation harnesses walking public benchmarks (57-subject multiple choice,
    maths, code) with "Let's think step by step" and pass@k repeats, many
    workers in parallel, most bursting on the newly released model."""

    name = "eval_harness"
    ACCOUNTS = Int(4, 40)
    SHARE = Uniform(0.02, 0.08)
    PARAMS = {
        "cot": Uniform(0.3, 1.0),
        "pass_k": Subset((1, 5, 10), 1, 3),
        "shots": Subset((0, 5), 1, 2),
        "burst_new_model": Uniform(0.5, 1.0),  # harnesses that run on the release as soon as it appears
        "burst_delay_h": Uniform(0.1, 3.0),
        "workers_max": Int(4, 64),
        "suites": Weights(bench.SUITES, 0.1, 1.0),
        "fresh": Uniform(0.0, 0.4),  # labs that open an account for the release
    }
    HARNESS_AGENTS = (
        "lm-eval/0.4.5 python-httpx/0.27.2",
        "inspect-ai/0.3.52 sdk-python/1.51.0",
        "helm/0.5.4 python-requests/2.32.3",
        "evalkit/1.2 aiohttp/3.10.10",
    )

    def account(self, i: int) -> Account:
        r, p = self.rng, self.p
        fresh = r.random() < p["fresh"]
        cloud = r.choice(net.HOSTING_NETS)
        block = net.random_slash24(r, cloud)
        return self._account(
            i,
            org=self._id("org", i),
            created_ts=(self.world.release_ts - r.uniform(300, 7200) if fresh else self._created(r.uniform(30, 1200))),
            verification=r.choice(("email", "phone", "kyc")) if not fresh else "email",
            tier=r.choice(("pro", "team", "enterprise")),
            payment_fingerprint=self._id("pf", i),
            keys=self._keys(i, r.randint(1, 3)),
            endpoints=tuple(net.endpoint(r, block) for _ in range(r.randint(1, 4))),
            agents=(r.choice(self.HARNESS_AGENTS),),
            tz=net.TZ_OFFSET[cloud.country],
            extra={"burst": fresh or r.random() < p["burst_new_model"], "workers": r.randint(1, p["workers_max"])},
        )

    def weight(self, a: Account) -> float:
        return self.rng.lognormvariate(0.0, 1.0)

    def requests(self, a: Account, n: int) -> list[Draft]:
        r, p = self.rng, self.p
        suites, weights = zip(*p["suites"].items())
        if a.extra["burst"]:
            t = self.world.release_ts + r.uniform(0, p["burst_delay_h"]) * 3600
        else:
            t = diurnal_time(r, self.w, a.tz)
        t = max(t, a.created_ts + 60)
        out: list[Draft] = []
        while len(out) < n:  # one run: a suite, a configuration, items in order
            suite = r.choices(suites, weights)[0]
            k, shots, cot = r.choice(p["pass_k"]), r.choice(p["shots"]), r.random() < p["cot"]
            model = self.world.release_model if a.extra["burst"] and t >= self.world.release_ts else r.choice(MODELS)
            subject = r.choice(bench.MCQ_SUBJECTS)
            index = r.randrange(bench.SUITE_SIZE[suite])
            for _ in range(r.randint(50, 2000)):
                prompt = bench.item(suite, index, subject if suite == "mcq" else None, shots, cot)
                mt, median = (
                    ((1024, 350) if cot else (16, 2))
                    if suite == "mcq"
                    else ((1024, 450) if suite == "math" else (512, 180))
                )
                for _ in range(k):  # pass@k: the same item k times
                    if len(out) >= n:
                        break
                    out.append(self._draft(a, t, prompt, model, mt, tokens(r, median, 0.5, mt)))
                    t += r.expovariate(a.extra["workers"] / 4.0)  # ~4 s per call, spread over the workers
                index = (index + 1) % bench.SUITE_SIZE[suite]
                if suite == "mcq" and index % 200 == 0:
                    subject = r.choice(bench.MCQ_SUBJECTS)
                if len(out) >= n:
                    break
            t += r.uniform(60, 1800)  # next run
        return out


class TrustSafety(Population):
    """Trust-and-safety classifiers: toxic user content (as stubs such as
    `<redacted:violence-12>`, with the odd injected instruction) sent around the
    clock, answered by short labels."""

    name = "trust_safety"
    ACCOUNTS = Int(2, 20)
    SHARE = Uniform(0.02, 0.07)
    PARAMS = {
        "items_max": Int(1, 20),
        "categories": Subset(txt.HARM_CATEGORIES, 4, 10),
        "injected": Uniform(0.005, 0.05),
        "label_tokens": Int(3, 40),
        "keys_max": Int(1, 6),
    }

    def account(self, i: int) -> Account:
        r, p = self.rng, self.p
        cloud = r.choice(net.nets_where("hosting", asns=net.ENTERPRISE_CLOUD_ASNS + (14061,)))
        return self._account(
            i,
            org=self._id("org", i),
            created_ts=self._created(r.uniform(60, 1500)),
            verification="kyc",
            tier=r.choice(("enterprise", "team")),
            payment_fingerprint=self._id("pf", i),
            keys=self._keys(i, r.randint(1, p["keys_max"])),
            endpoints=tuple(net.endpoint(r, cloud) for _ in range(r.randint(1, 6))),
            agents=(r.choice(("sdk-python/1.51.0", "sdk-go/0.9.2", "sdk-java/2.3.0")),),
            tz=net.TZ_OFFSET[cloud.country],
            company=r.choice(
                (
                    "a social network",
                    "a dating app",
                    "a gaming community",
                    "a marketplace",
                    "a video platform",
                    "a forum host",
                )
            ),
        )

    def weight(self, a: Account) -> float:
        return self.rng.uniform(0.3, 1.7)

    def requests(self, a: Account, n: int) -> list[Draft]:
        r, p = self.rng, self.p
        cats = tuple(p["categories"])
        out = []
        for _ in range(n):
            ts = diurnal_time(r, self.w, a.tz, flat=0.7)  # queues drain day and night
            items = [
                txt.moderation_item(r, cats, r.random() < p["injected"]) for _ in range(r.randint(1, p["items_max"]))
            ]
            prompt = txt.moderation_prompt(r, items, cats, a.company)
            out.append(
                self._draft(
                    a,
                    ts,
                    prompt,
                    "frontier-small",
                    16 * len(items) + 32,
                    tokens(r, p["label_tokens"] * len(items), 0.3, 16 * len(items) + 32),
                )
            )
        return out


class Researcher(Population):
    """Researchers asking broad questions across many domains, asking the model to
    reason step by step, with follow-ups; on campus, at home, on the go."""

    name = "researcher"
    ACCOUNTS = Int(80, 800)
    SHARE = Uniform(0.015, 0.06)
    PARAMS = {
        "domains_min": Int(3, 8),
        "domains_max": Int(10, 30),
        "cot": Uniform(0.2, 0.9),
        "follow_up": Uniform(0.1, 0.5),
        "campus": Uniform(0.2, 0.7),
        "mobile": Uniform(0.05, 0.4),
        "per_session": Int(3, 20),
        "retry": Uniform(0.0, 0.05),
        "new_model": Uniform(0.0, 0.4),
        "answer_median": Int(500, 1500),
    }

    def account(self, i: int) -> Account:
        r, p = self.rng, self.p
        country = r.choice(CAMPUS_COUNTRIES)
        places = Places(country, net.residential_endpoint(r, country), weights={"home": 1.0})
        if r.random() < p["campus"]:
            places.office, places.weights["office"] = (
                net.endpoint(r, r.choice(net.nets_where("campus", country=country))),
                2.5,
            )
        if r.random() < p["mobile"]:
            places.weights["mobile"] = 0.4
        return self._account(
            i,
            created_ts=self._created(math.exp(r.uniform(math.log(5), math.log(2000)))),
            verification=r.choice(("email", "email", "phone", "kyc")),
            tier=r.choice(("free", "pro", "pro", "team")),
            payment_fingerprint=self._id("pf", i),
            keys=self._keys(i, 1),
            endpoints=(places.home,),
            agents=(r.choice(net.BROWSER_AGENTS + net.SDK_AGENTS[:2]),),
            tz=net.TZ_OFFSET[country],
            topics=tuple(r.sample(txt.TOPIC_NAMES, r.randint(p["domains_min"], p["domains_max"]))),
            extra={"places": places, "cot": r.random() < p["cot"]},
        )

    def weight(self, a: Account) -> float:
        return self.rng.lognormvariate(0.0, 0.9)

    def requests(self, a: Account, n: int) -> list[Draft]:
        r, p = self.rng, self.p
        out = []
        for group in session_groups(r, self.w, a.tz, n, per_session=p["per_session"], gap_s=150):
            ep = a.extra["places"].pick(r, self.world, group[0])
            last = ""
            for ts in group:
                topic = r.choice(a.topics)
                if last and r.random() < p["follow_up"]:
                    prompt = f"{last}\n\nuser: {txt.follow_up(r, topic)}"
                else:
                    prompt = last = txt.research_question(r, topic, a.extra["cot"])
                mt = r.choice((2048, 4096, 8192))
                out.append(
                    self._draft(
                        a,
                        ts,
                        prompt,
                        self._model(ts, p["new_model"], "frontier-large"),
                        mt,
                        tokens(r, p["answer_median"], 0.6, mt),
                        endpoint=ep,
                    )
                )
        return self._with_resends(out, p["retry"])


class SecurityResearcher(Population):
    """Security researchers and red-teamers on their own systems: malware analysis,
    CVEs, detections, pentest proofs of concept; refused now and then, after which
    they rephrase with more context within a minute or two."""

    name = "security_researcher"
    ACCOUNTS = Int(15, 150)
    SHARE = Uniform(0.004, 0.02)
    PARAMS = {
        "refusal": Uniform(0.1, 0.5),
        "rephrase": Uniform(0.4, 0.95),
        "rephrase_delay_max": Uniform(30.0, 300.0),
        "extraction_tests": Uniform(0.0, 0.08),  # testing their own deployment's prompt-leak resistance
        "vpn": Uniform(0.1, 0.6),
        "cloud": Uniform(0.1, 0.5),
        "per_session": Int(3, 15),
    }

    def account(self, i: int) -> Account:
        r, p = self.rng, self.p
        country = pick_country(r)
        places = Places(country, net.residential_endpoint(r, country), weights={"home": 1.0})
        office_net = r.choice(net.nets_or_residential("business", country))
        places.office, places.weights["office"] = net.endpoint(r, office_net), 2.0
        if r.random() < p["vpn"]:
            places.weights["vpn"], places.vpn_favourite = 1.0, r.randrange(1000)
        if r.random() < p["cloud"]:
            places.cloud, places.weights["cloud"] = net.hosting_endpoint(r), 0.7
        return self._account(
            i,
            created_ts=self._created(math.exp(r.uniform(math.log(2), math.log(1500)))),
            verification=r.choice(("email", "phone", "kyc")),
            tier=r.choice(("free", "pro", "team")),
            payment_fingerprint=self._id("pf", i),
            keys=self._keys(i, 1),
            endpoints=(places.home,),
            agents=(r.choice(net.BROWSER_AGENTS + net.SDK_AGENTS[:2]),),
            tz=net.TZ_OFFSET[country],
            company=r.choice(txt.COMPANIES),
            extra={"places": places},
        )

    def weight(self, a: Account) -> float:
        return self.rng.lognormvariate(0.0, 0.8)

    def requests(self, a: Account, n: int) -> list[Draft]:
        r, p = self.rng, self.p
        out: list[Draft] = []
        for group in session_groups(r, self.w, a.tz, n, per_session=p["per_session"], gap_s=240):
            ep = a.extra["places"].pick(r, self.world, group[0])
            task, refused, t = "", False, group[0]
            for ts in group:
                if refused and r.random() < p["rephrase"]:
                    t += r.uniform(10, p["rephrase_delay_max"])
                    prompt = probe.security_rephrase(r, a.company, task)
                else:
                    t = max(t, ts)
                    task = (
                        probe.extraction_prompt(r)
                        if r.random() < p["extraction_tests"]
                        else probe.security_task(r, a.company)
                    )
                    prompt = task
                refused = r.random() < p["refusal"]
                out.append(
                    self._draft(
                        a,
                        t,
                        prompt,
                        "frontier-large",
                        4096,
                        tokens(r, 60, 0.4, 4096) if refused else tokens(r, 700, 0.6, 4096),
                        endpoint=ep,
                    )
                )
        return out


class SharedNat(Population):
    """Ordinary people behind carrier-grade NAT and commercial VPNs: many unrelated
    accounts on one public address, each asking a few everyday questions."""

    name = "shared_nat"
    ACCOUNTS = Int(400, 3000)
    SHARE = Uniform(0.015, 0.05)
    PARAMS = {
        "vpn": Uniform(0.2, 0.8),  # the rest are on a phone
        "fresh": Uniform(0.05, 0.35),
        "free": Uniform(0.6, 0.95),
        "per_session": Int(2, 10),
        "non_english": Uniform(0.1, 0.6),
        "languages": Subset(txt.LANGUAGE_CODES, 3, 12),
        "step": Uniform(0.02, 0.2),
        "retry": Uniform(0.0, 0.08),
        "tester": Uniform(0.0, 0.2),
        "answer_median": Int(150, 500),
    }

    def account(self, i: int) -> Account:
        r, p = self.rng, self.p
        country = pick_country(r)
        fresh = r.random() < p["fresh"]
        vpn = r.random() < p["vpn"]
        places = Places(
            country,
            net.residential_endpoint(r, country),
            weights={"home": 0.1, "vpn": 1.0} if vpn else {"home": 0.2, "mobile": 1.0},
            vpn_favourite=r.randrange(1000) if vpn else None,
        )
        free = r.random() < p["free"]
        return self._account(
            i,
            created_ts=self._created(r.uniform(0, 7) if fresh else r.uniform(7, 1200)),
            verification=_verification(r, fresh, 0.3),
            tier="free" if free else "pro",
            payment_fingerprint=None if free else self._id("pf", i),
            keys=self._keys(i, 1),
            endpoints=(places.home,),
            agents=(r.choice(net.MOBILE_AGENTS if not vpn else net.BROWSER_AGENTS),),
            tz=net.TZ_OFFSET[country],
            topics=tuple(r.sample(txt.CHAT_TOPICS, 2)),
            extra={"places": places, "lang": _language(r, p["non_english"], p["languages"])},
        )

    def weight(self, a: Account) -> float:
        return self.rng.lognormvariate(0.0, 0.8)

    def requests(self, a: Account, n: int) -> list[Draft]:
        r, p = self.rng, self.p
        out = []
        for group in session_groups(r, self.w, a.tz, n, per_session=p["per_session"], gap_s=60):
            ep = a.extra["places"].pick(r, self.world, group[0])
            for ts in group:
                prompt = txt.casual_or_local(r, r.choice(a.topics), p["step"], a.extra["lang"])
                out.append(
                    self._draft(
                        a, ts, prompt, r.choice(MODELS), 1024, tokens(r, p["answer_median"], 0.7, 1024), endpoint=ep
                    )
                )
        self._tester(out, p["tester"])
        return self._with_resends(out, p["retry"])


BENIGN: tuple[type[Population], ...] = (
    SmallDev,
    PowerUser,
    Enterprise,
    ChatBackend,
    Bursty,
    Classroom,
    CodingAgent,
    RoamingDev,
    EvalHarness,
    TrustSafety,
    Researcher,
    SecurityResearcher,
    SharedNat,
)
