"""The traffic simulator (a world drawn per seed) and the scorer."""

from __future__ import annotations

import ipaddress
import json
import os
import random
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from policy_engine.cli.simulate import parse_sets, score_cmd, simulate_cmd
from policy_engine.context import RequestContext
from policy_engine.signals.net import ASN_BY_ORG, asn_org, geo_country
from policy_engine.simulate import network as net
from policy_engine.simulate.agent_text import PROMPT_CHAR_CAP
from policy_engine.simulate.base import TEST_PINGS
from policy_engine.simulate.generator import (
    PopulationSpec,
    SimConfig,
    apportion,
    describe,
    generate,
    population_params,
    population_specs,
    write,
)
from policy_engine.simulate.populations import POPULATIONS
from policy_engine.simulate.scorer import ScoreError, score
from policy_engine.simulate.world import WORLD_PARAMS, Choice, Subset, World, draw

SMALL = SimConfig(seed=7, scale=0.03)
NEW_POPULATIONS = (
    "classroom",
    "coding_agent",
    "roaming_dev",
    "eval_harness",
    "trust_safety",
    "researcher",
    "security_researcher",
    "shared_nat",
    "distill_agentic",
)


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[dict[str, Any]], list[dict[str, Any]]]:
    d = tmp_path_factory.mktemp("sim")
    write(SMALL, d / "traffic.jsonl", d / "truth.jsonl")
    return d / "traffic.jsonl", d / "truth.jsonl", _read(d / "traffic.jsonl"), _read(d / "truth.jsonl")


# ---------------------------------------------------------------- generator


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    cfg = SimConfig(seed=3, scale=0.01, hours=6)
    write(cfg, tmp_path / "a.jsonl", tmp_path / "a.truth")
    write(cfg, tmp_path / "b.jsonl", tmp_path / "b.truth")
    write(SimConfig(seed=4, scale=0.01, hours=6), tmp_path / "c.jsonl", tmp_path / "c.truth")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert (tmp_path / "a.truth").read_bytes() == (tmp_path / "b.truth").read_bytes()
    assert (tmp_path / "a.jsonl").read_bytes() != (tmp_path / "c.jsonl").read_bytes()


def test_files_do_not_depend_on_the_hash_seed(tmp_path: Path) -> None:
    """Two processes with different PYTHONHASHSEED write the same bytes (no set or
    dict order leaks into the world), and so does this process."""
    policyctl = Path(sys.executable).with_name("policyctl")
    outs = []
    for hash_seed in ("1", "2"):
        t, g = tmp_path / f"t{hash_seed}.jsonl", tmp_path / f"g{hash_seed}.jsonl"
        run = subprocess.run(
            [
                str(policyctl),
                "simulate",
                "--out",
                str(t),
                "--truth",
                str(g),
                "--seed",
                "5",
                "--scale",
                "0.01",
                "--hours",
                "8",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
        )
        assert run.returncode == 0, run.stderr
        outs.append((t.read_bytes(), g.read_bytes()))
    write(SimConfig(seed=5, scale=0.01, hours=8), tmp_path / "t.jsonl", tmp_path / "g.jsonl")
    assert outs[0] == outs[1] == ((tmp_path / "t.jsonl").read_bytes(), (tmp_path / "g.jsonl").read_bytes())


def test_every_line_is_a_valid_request_context_in_time_order(day: Any) -> None:
    traffic_path, _, traffic, _ = day
    for line in traffic_path.read_text(encoding="utf-8").splitlines():
        RequestContext.model_validate_json(line)  # unknown fields or bad types raise
    ts = [c["request"]["ts"] for c in traffic]
    assert ts == sorted(ts)
    assert SMALL.start_ts <= ts[0] and ts[-1] < SMALL.start_ts + 24 * 3600
    assert len({c["request"]["id"] for c in traffic}) == len(traffic)
    for c in traffic:
        u = c["usage"]
        assert u["prompt_tokens"] > 0 and 0 < u["completion_tokens"] <= c["request"]["max_tokens"]
        assert c["request"]["prompt"] and c["client"]["ip"] and c["client"]["asn"] > 0
        assert len(c["request"]["prompt"]) <= PROMPT_CHAR_CAP and c["account"]["age_days"] >= 0


def test_truth_is_aligned_and_never_inside_requests(day: Any) -> None:
    _, _, traffic, truth = day
    assert len(truth) == len(traffic)
    names = set(POPULATIONS)
    for c, t in zip(traffic, truth):
        assert t["request_id"] == c["request"]["id"]
        assert t["account"] == c["account"]["id"]
        assert t["is_campaign"] == (t["campaign"] is not None)
        assert t["population"] in names
        assert t["campaign"] == POPULATIONS[t["population"]].campaign
        assert t["campaign"] is None or t["campaign"] not in json.dumps(c)
        ids = (c["request"]["id"], c["account"]["id"], c["account"]["org"] or "", c["api_key"]["id"])
        assert not any(name in i for name in names for i in ids)
    assert {t["campaign"] for t in truth} == {
        None,
        "distill-fast",
        "distill-slow",
        "distill-agentic",
        "guardrail-probe",
    }


def test_population_shares_and_account_counts_as_configured(tmp_path: Path) -> None:
    pops = (
        PopulationSpec("small_dev", 40, 0.2),
        PopulationSpec("enterprise", 3, 0.3),
        PopulationSpec("distill_fast", 120, 0.4),
        PopulationSpec("distill_slow", 9, 0.1),
    )
    cfg = SimConfig(seed=11, requests_per_day=3000, populations=pops)
    summary = write(cfg, tmp_path / "t.jsonl", tmp_path / "g.jsonl")
    truth = _read(tmp_path / "g.jsonl")
    requests = Counter(t["population"] for t in truth)
    accounts = {p: len({t["account"] for t in truth if t["population"] == p}) for p in requests}
    assert requests == {"small_dev": 600, "enterprise": 900, "distill_fast": 1200, "distill_slow": 300}
    assert accounts == {"small_dev": 40, "enterprise": 3, "distill_fast": 120, "distill_slow": 9}
    assert summary.requests == 3000 and summary.per_population["distill_fast"] == {"requests": 1200, "accounts": 120}
    # overrides and scale apply to accounts and requests; hours only to requests
    cfg2 = cfg.with_overrides({"distill_fast": {"accounts": 60, "share": 0.8}})
    plan = {
        s.name: (a, r)
        for s, a, r in SimConfig(scale=0.5, hours=12, requests_per_day=3000, populations=cfg2.populations).plan()
    }
    assert plan["distill_fast"][0] == 30 and abs(plan["distill_fast"][1] - 750 * 0.8 / 1.4) < 1
    assert sum(r for _, r in plan.values()) == 750


def test_every_population_has_accounts_and_requests_in_a_default_day_of_any_seed() -> None:
    for seed in list(range(1, 31)) + [1000, 1001]:
        plan = {spec.name: (acc, req) for spec, acc, req in SimConfig(seed=seed).plan()}
        assert list(plan) == list(POPULATIONS)
        assert sum(req for _, req in plan.values()) == 230_000
        assert all(acc > 0 and req >= acc for acc, req in plan.values()), (seed, plan)
        assert plan["distill_fast"][0] >= 1500  # over a thousand surrogate accounts


def test_world_parameters_differ_across_seeds_and_stay_in_their_ranges() -> None:
    seeds = range(1, 41)
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    for seed in seeds:
        for spec in population_specs(seed):
            cls = POPULATIONS[spec.name]
            assert cls.ACCOUNTS.contains(spec.accounts) and cls.SHARE.contains(spec.share), (seed, spec)
            seen[(spec.name, "accounts")].add(str(spec.accounts))
            seen[(spec.name, "share")].add(str(spec.share))
            params = population_params(seed, spec.name)
            assert list(params) == list(cls.PARAMS)
            for name, value in params.items():
                assert cls.PARAMS[name].contains(value), (seed, spec.name, name, value)
                seen[(spec.name, name)].add(json.dumps(value))
        world = World.draw(seed, SMALL.start_ts, 86400.0)
        for name, value in world.params.items():
            assert WORLD_PARAMS[name].contains(value), (seed, name, value)
            seen[("world", name)].add(json.dumps(value))
        assert SMALL.start_ts < world.release_ts < SMALL.start_ts + 86400
    same = [k for k, values in seen.items() if len(values) < 2]
    assert not same, f"parameters that never changed over {len(seeds)} seeds: {same}"
    # the draw is stable: the same seed gives the same world
    assert population_params(3, "classroom") == population_params(3, "classroom")
    assert population_specs(3) == population_specs(3) != population_specs(4)


def test_ranges_reject_values_outside_them() -> None:
    r = POPULATIONS["coding_agent"].PARAMS
    assert not r["ctx_cap_max"].contains(200_000) and r["ctx_cap_max"].contains(150_000)
    assert not Choice(("a", "b")).contains("c")
    sub = Subset(("x", "y", "z"), 1, 2)
    assert sub.contains(["x"]) and not sub.contains(["x", "y", "z"]) and not sub.contains(["w"])
    assert all(sub.contains(sub.draw(random.Random(i))) for i in range(50))
    assert draw({"a": sub}, random.Random(1)) == draw({"a": sub}, random.Random(1))


def test_describe_gives_the_drawn_world() -> None:
    cfg = SimConfig(seed=12).with_overrides({"classroom": {"accounts": 321}})
    d = describe(cfg)
    assert d["seed"] == 12 and d["requests"] == 230_000 and set(d["populations"]) == set(POPULATIONS)
    room = d["populations"]["classroom"]
    assert room["accounts"] == 321 and room["planned_accounts"] == 321 and room["campaign"] is None
    assert room["params"] == population_params(12, "classroom")
    assert room["ranges"]["class_max"] == [40, 250]
    assert d["populations"]["distill_agentic"]["campaign"] == "distill-agentic"
    assert abs(sum(p["share"] for p in d["populations"].values()) - 1) < 1e-3
    assert d["world"]["release_model"] in WORLD_PARAMS["release_model"].options  # type: ignore[union-attr]
    assert describe(SimConfig(seed=13))["populations"]["classroom"]["params"] != room["params"]


def test_config_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="unknown population 'nope'"):
        SimConfig(populations=(PopulationSpec("nope", 1, 1.0),))
    with pytest.raises(ValueError, match="only 'accounts' and 'share'"):
        SimConfig().with_overrides({"small_dev": {"age": 3}})
    with pytest.raises(ValueError, match="scale and hours must be positive"):
        SimConfig(hours=0)
    assert parse_sets(["distill_fast.accounts=8000", "bursty.share=0.1"]) == {
        "distill_fast": {"accounts": 8000.0},
        "bursty": {"share": 0.1},
    }
    with pytest.raises(ValueError, match="POPULATION.FIELD=VALUE"):
        parse_sets(["distill_fast=3"])


def test_apportion_gives_each_slot_at_least_one_and_sums_exactly() -> None:
    assert apportion(10, [1.0, 1.0, 1.0]) in ([4, 3, 3], [3, 4, 3], [3, 3, 4])
    assert sum(apportion(1000, [0.1, 5.0, 2.5, 0.01])) == 1000
    assert min(apportion(7, [100.0, 0.001, 0.001])) == 1
    with pytest.raises(ValueError):
        apportion(2, [1.0, 1.0, 1.0])


def test_address_blocks_agree_with_the_embedded_geo_data() -> None:
    """Every block: its first and last hosts and 40 random ones are in the country
    and AS organisation stated, and the engine derives the stated AS number where
    it knows the organisation."""
    rng = random.Random(5)
    wrong = []
    for n in net.ALL_NETS:
        first, last = n.first_last()
        ips = [str(ipaddress.IPv4Address(first + 1)), str(ipaddress.IPv4Address(last - 1))]
        ips += [net.random_ip(rng, n) for _ in range(40)]
        for ip in ips:
            assert ipaddress.ip_address(ip) in ipaddress.ip_network(n.prefix)
            if geo_country(ip) != n.country or asn_org(ip) != n.org:
                wrong.append((n.prefix, ip, geo_country(ip), asn_org(ip), n.country, n.org))
        if n.org in ASN_BY_ORG:
            assert ASN_BY_ORG[n.org] == n.asn, n
    assert not wrong[:20]
    assert {n.kind for n in net.ALL_NETS} == {"hosting", "residential", "mobile", "vpn", "business", "campus"}
    for country, _ in net.BENIGN_COUNTRIES:  # every country people come from has homes and a time zone
        assert net.nets_where("residential", country=country) and country in net.TZ_OFFSET


# ------------------------------------------------- a full default day: the twins exist

FULL_DAY_SEED = 2  # a tuning seed


@dataclass
class Acct:
    population: str
    first: dict[str, Any]
    ips: list[tuple[float, str]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)  # kept for the small populations only


@dataclass
class Day:
    accounts: dict[str, Acct] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    endpoints: set[tuple[str, str, int]] = field(default_factory=set)
    ip_accounts: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    max_prompt_tokens: Counter[str] = field(default_factory=Counter)
    pings: Counter[str] = field(default_factory=Counter)  # "hi", "test"... per population
    by_population: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))


KEEP = {
    "classroom",
    "coding_agent",
    "eval_harness",
    "trust_safety",
    "security_researcher",
    "chat_backend",
    "enterprise",
    "distill_slow",
    "distill_agentic",
    "guardrail_probe",
    "researcher",
}


@pytest.fixture(scope="module")
def full_day() -> Day:
    """One default day (scale 1, 24 h), streamed: only what the twin tests need is kept."""
    out = Day()
    for i, (c, t) in enumerate(generate(SimConfig(seed=FULL_DAY_SEED))):
        pop, acct, ip = t["population"], t["account"], c["client"]["ip"]
        a = out.accounts.get(acct)
        if a is None:
            a = out.accounts[acct] = Acct(pop, c)
        a.ips.append((c["request"]["ts"], ip))
        out.requests[pop] += 1
        out.endpoints.add((ip, c["client"]["country"], c["client"]["asn"]))
        out.ip_accounts[ip].add(acct)
        out.max_prompt_tokens[pop] = max(out.max_prompt_tokens[pop], c["request"]["prompt_tokens"])
        if c["request"]["prompt"] in TEST_PINGS:
            out.pings[pop] += 1
        if pop in KEEP and (pop not in ("coding_agent", "distill_agentic", "chat_backend", "enterprise") or i % 5 == 0):
            c["request"]["prompt"] = c["request"]["prompt"][:600]
            a.requests.append(c)
            out.by_population[pop].append(c)
    return out


def _accounts(day: Day, pop: str) -> list[Acct]:
    return [a for a in day.accounts.values() if a.population == pop]


def test_every_population_is_present_in_a_full_day(full_day: Day) -> None:
    assert sum(full_day.requests.values()) == 230_000
    for name in POPULATIONS:
        assert full_day.requests[name] > 0 and _accounts(full_day, name), name
    for name in NEW_POPULATIONS:
        assert len(_accounts(full_day, name)) >= 3, name


def test_every_emitted_address_is_where_the_geo_data_says(full_day: Day) -> None:
    orgs_of_asn: dict[int, set[str]] = defaultdict(set)
    for n in net.ALL_NETS:
        orgs_of_asn[n.asn].add(n.org)
    wrong = [
        (ip, cc, asn, geo_country(ip), asn_org(ip))
        for ip, cc, asn in sorted(full_day.endpoints)
        if geo_country(ip) != cc or asn_org(ip) not in orgs_of_asn[asn]
    ]
    assert not wrong[:20]


def test_a_class_is_many_fresh_accounts_on_a_few_campus_addresses(full_day: Day) -> None:
    fresh_on: dict[str, set[str]] = defaultdict(set)
    for acct, a in full_day.accounts.items():
        if a.population == "classroom" and a.first["account"]["age_days"] < 1:
            assert a.first["account"]["verification"] == "email" and a.first["account"]["tier"] == "free"
            fresh_on[a.first["client"]["ip"]].add(acct)
    ip, accts = max(fresh_on.items(), key=lambda kv: len(kv[1]))
    assert len(accts) >= 10
    on_ip = [ts for acct in accts for ts, i in full_day.accounts[acct].ips if i == ip]
    first, last = min(on_ip), max(on_ip)
    during = {i for acct in accts for ts, i in full_day.accounts[acct].ips if first <= ts <= last}
    assert len(during) <= 6  # the class's NAT addresses
    campus = {n.asn for n in net.CAMPUS_NETS + net.BUSINESS_NETS + net.RESIDENTIAL_NETS}
    assert full_day.accounts[next(iter(accts))].first["client"]["asn"] in campus
    # they all paste the same assignment (small edits aside)
    firsts = [full_day.accounts[acct].first["request"]["prompt"] for acct in accts]
    counts = Counter(w for p in firsts for w in set(p.split()))
    assert sum(k >= 0.8 * len(firsts) for k in counts.values()) >= 10


def test_coding_agents_have_huge_contexts_and_shared_tool_prompts(full_day: Day) -> None:
    assert full_day.max_prompt_tokens["coding_agent"] > 90_000
    agents = _accounts(full_day, "coding_agent")
    heads = Counter(a.first["request"]["prompt"][:300] for a in agents)
    assert heads.most_common(1)[0][1] >= 2  # one tool's system prompt, many users
    gaps = []
    for a in agents:
        ts = sorted(t for t, _ in a.ips)
        gaps.extend(b - x for x, b in zip(ts, ts[1:]) if b - x < 60)
    assert 3 <= statistics.median(gaps) <= 15
    assert all(a.first["account"]["tier"] in ("pro", "team", "enterprise") for a in agents)
    comps = [c["usage"]["completion_tokens"] for c in full_day.by_population["coding_agent"]]
    assert statistics.median(comps) < 1000  # modest answers


def test_carrier_nat_and_vpn_addresses_carry_unrelated_accounts(full_day: Day) -> None:
    mobile = [ipaddress.ip_network(n.prefix) for n in net.MOBILE_NETS]
    vpn = [ipaddress.ip_network(n.prefix) for n in net.VPN_NETS]

    def in_any(ip: str, nets: list[Any]) -> bool:
        addr = ipaddress.ip_address(ip)
        return any(addr in n for n in nets)

    def mixed(accts: set[str]) -> bool:
        return len({full_day.accounts[x].population for x in accts}) >= 2

    assert any(len(a) >= 3 and mixed(a) for ip, a in full_day.ip_accounts.items() if in_any(ip, mobile))
    assert any(len(a) >= 3 and mixed(a) for ip, a in full_day.ip_accounts.items() if in_any(ip, vpn))


def _kind(ip: str) -> str:
    addr = int(ipaddress.ip_address(ip))
    for n in net.ALL_NETS:
        first, last = n.first_last()
        if first <= addr <= last:
            return n.kind
    raise AssertionError(f"{ip} is in no listed network")


def test_roaming_developers_change_networks(full_day: Day) -> None:
    kinds = [{_kind(ip) for _, ip in a.ips} for a in _accounts(full_day, "roaming_dev")]
    assert sum(len(k) >= 3 for k in kinds) >= 5  # home, office, phone, VPN in one day
    assert any({"residential", "mobile", "business"} <= k for k in kinds)
    assert any("vpn" in k for k in kinds)


def test_evaluation_harnesses_repeat_benchmark_items_on_the_new_model(full_day: Day) -> None:
    reqs = full_day.by_population["eval_harness"]
    assert any("Let's think step by step" in c["request"]["prompt"] for c in reqs)
    prompts = Counter((c["account"]["id"], c["request"]["prompt"]) for c in reqs)
    assert prompts.most_common(1)[0][1] >= 2  # pass@k
    world = World.draw(FULL_DAY_SEED, SMALL.start_ts, 86400.0)
    assert any(c["request"]["model"] == world.release_model for c in reqs)
    assert all(c["request"]["ts"] >= world.release_ts for c in reqs if c["request"]["model"] == world.release_model)
    subjects = {
        c["request"]["prompt"].split(" about ", 1)[1].split(".")[0]
        for c in reqs
        if c["request"]["prompt"].startswith("The following are multiple choice")
    }
    assert len(subjects) >= 3


def test_trust_and_safety_send_stubs_and_get_labels(full_day: Day) -> None:
    reqs = full_day.by_population["trust_safety"]
    assert all("<redacted:" in c["request"]["prompt"] for c in reqs)
    assert statistics.median(c["usage"]["completion_tokens"] for c in reqs) < 300
    hours = {int((c["request"]["ts"] - SMALL.start_ts) // 3600) for c in reqs}
    assert len(hours) >= 20  # around the clock


def test_chat_products_carry_history_languages_and_end_user_attempts(full_day: Day) -> None:
    reqs = full_day.by_population["chat_backend"]
    text = "\n".join(c["request"]["prompt"] for c in reqs)
    assert "\nassistant: " in text and text.count("system: ") == len(reqs)
    assert any(not c["request"]["prompt"].isascii() for c in reqs)  # other languages
    labels = {tuple(a.first["account"]["labels"]) for a in _accounts(full_day, "chat_backend")}
    assert labels == {("platform",), ()}


def test_security_researchers_rephrase_after_refusals(full_day: Day) -> None:
    rephrased = 0
    for a in _accounts(full_day, "security_researcher"):
        rs = sorted(a.requests, key=lambda c: c["request"]["ts"])
        for x, y in zip(rs, rs[1:]):
            if (
                x["usage"]["completion_tokens"] < 150
                and 0 < y["request"]["ts"] - x["request"]["ts"] <= 300
                and y["request"]["prompt"] != x["request"]["prompt"]
            ):
                rephrased += 1
    assert rephrased >= 5


def test_retries_resend_identical_prompts_within_seconds(full_day: Day) -> None:
    resent = 0
    for a in _accounts(full_day, "classroom") + _accounts(full_day, "chat_backend"):
        rs = sorted(a.requests, key=lambda c: c["request"]["ts"])
        resent += sum(
            1
            for x, y in zip(rs, rs[1:])
            if x["request"]["prompt"] == y["request"]["prompt"] and y["request"]["ts"] - x["request"]["ts"] <= 60
        )
    assert resent >= 3


def test_enterprise_orgs_share_a_card_or_are_invoiced(full_day: Day) -> None:
    orgs: dict[str, set[Any]] = defaultdict(set)
    for a in _accounts(full_day, "enterprise"):
        orgs[a.first["account"]["org"]].add(a.first["account"]["payment_fingerprint"])
    assert all(len(cards) == 1 for cards in orgs.values())  # one card per org, or none
    accounts_per_org = Counter(a.first["account"]["org"] for a in _accounts(full_day, "enterprise"))
    assert max(accounts_per_org.values()) >= 2


def test_new_keys_are_tested_with_hi_by_people_too(full_day: Day) -> None:
    assert full_day.pings["small_dev"] > 0
    world = describe(SimConfig(seed=FULL_DAY_SEED))["populations"]["distill_fast"]["params"]
    assert (full_day.pings["distill_fast"] > 0) == (world["warmup"] > 0.01)


def test_campaigns_look_like_the_reports(full_day: Day) -> None:
    fast = _accounts(full_day, "distill_fast")
    assert all(
        a.first["account"]["age_days"] < 31 and a.first["account"]["verification"] in ("none", "email", "phone")
        for a in fast
    )
    assert max(len(a.ips) for a in fast) <= 60  # each surrogate stays small
    slow = _accounts(full_day, "distill_slow")
    assert all(
        30 <= a.first["account"]["age_days"] <= 1501 and a.first["account"]["verification"] in ("phone", "kyc")
        for a in slow
    )
    assert all(len({ip for _, ip in a.ips}) <= 2 for a in slow)  # stable addresses
    assert all(a.first["account"]["payment_fingerprint"] for a in slow)
    agentic = _accounts(full_day, "distill_agentic")
    assert full_day.max_prompt_tokens["distill_agentic"] > 90_000
    hours = {int((ts - SMALL.start_ts) // 3600) for a in agentic for ts, _ in a.ips}
    assert len(hours) >= 20  # around the clock
    probes = full_day.by_population["guardrail_probe"]
    short = sum(c["usage"]["completion_tokens"] < 150 for c in probes) / len(probes)
    assert short >= 0.5


# ---------------------------------------------------------------- scorer

# (request id, population, campaign, account, effect, completion tokens) in time order
HAND = [
    ("r1", "small_dev", None, "A", "allow", 100),
    ("r2", "distill_fast", "fast", "X", "allow", 1000),
    ("r3", "small_dev", None, "A", "deny", 50),
    ("r4", "distill_fast", "fast", "X", "throttle", 500),
    ("r5", "small_dev", None, "B", "flag", 10),
    ("r6", "distill_fast", "fast", "Y", "allow", 200),
    ("r7", "distill_fast", "fast", "X", "allow", 300),
    ("r8", "small_dev", None, "A", "allow", 20),
    ("r9", "distill_slow", "slow", "Z", "deny", 400),
    ("r10", "distill_slow", "slow", "Z", "allow", 100),
    ("r11", "small_dev", None, "B", "allow", 5),
    ("r12", "power_user", None, "C", "throttle", 70),
]


def _write_hand(d: Path, rows: list[tuple[str, str, str | None, str, str, int]] = HAND) -> tuple[Path, Path, Path]:
    t, g, dec = d / "t.jsonl", d / "g.jsonl", d / "d.jsonl"
    t.write_text(
        "".join(
            json.dumps(
                {"request": {"id": r}, "account": {"id": a}, "usage": {"prompt_tokens": 5, "completion_tokens": tok}}
            )
            + "\n"
            for r, _, _, a, _, tok in rows
        )
    )
    # truth and decisions in another order: the scorer joins by id, time order comes from traffic
    g.write_text(
        "".join(
            json.dumps({"request_id": r, "population": p, "campaign": c, "account": a, "is_campaign": c is not None})
            + "\n"
            for r, p, c, a, _, _ in reversed(rows)
        )
    )
    dec.write_text(
        "".join(
            json.dumps({"request_id": r, "effect": e, "reason": "", "rules": []}) + "\n"
            for r, _, _, _, e, _ in sorted(rows)
        )
    )
    return t, g, dec


def test_scorer_arithmetic_on_a_hand_made_run(tmp_path: Path) -> None:
    s = score(*_write_hand(tmp_path))
    sd = s.populations["small_dev"]
    assert (sd.requests, sd.admitted, sd.blocked, sd.accounts, sd.accounts_ever_blocked) == (5, 4, 1, 2, 1)
    assert sd.admitted_share == 0.8 and sd.blocked_share == 0.2
    assert (sd.answered_before_block_total, sd.answered_before_block_median) == (3, 1.5)  # A: 1, B: 2
    fast = s.campaigns["fast"]
    assert (fast.requests, fast.completion_tokens, fast.admitted_completion_tokens) == (4, 2000, 1500)
    assert fast.extraction_yield == 0.75
    assert (fast.answered_before_block_total, fast.answered_before_block_median) == (2, 1.0)  # X: 1, Y: 1
    assert (fast.accounts, fast.accounts_ever_blocked) == (2, 1)
    slow = s.campaigns["slow"]
    assert slow.extraction_yield == 0.2 and slow.answered_before_block_total == 0
    assert slow.accounts_ever_blocked_share == 1.0
    b = s.benign
    assert (b.requests, b.blocked, b.accounts, b.accounts_ever_blocked) == (6, 2, 3, 2)
    assert s.false_positive_rate == pytest.approx(1 / 3)
    assert (b.answered_before_block_total, b.answered_before_block_median) == (3, 1.0)  # A 1, B 2, C 0
    assert b.effects == {"allow": 3, "flag": 1, "throttle": 1, "deny": 1}
    js = s.to_json()
    assert js["campaigns"]["fast"]["extraction_yield"] == 0.75
    assert js["benign"]["false_positive_rate"] == pytest.approx(1 / 3)
    assert list(js["populations"]) == ["power_user", "small_dev", "distill_fast", "distill_slow"]


def test_scorer_rejects_inconsistent_files(tmp_path: Path) -> None:
    t, g, dec = _write_hand(tmp_path)
    dec.write_text("\n".join(dec.read_text().splitlines()[1:]) + "\n")  # drop one decision
    with pytest.raises(ScoreError, match="has no decision"):
        score(t, g, dec)
    t, g, dec = _write_hand(tmp_path)
    dec.write_text(dec.read_text().replace('"deny"', '"block"', 1))
    with pytest.raises(ScoreError, match=r"d.jsonl:\d+: unknown effect 'block'"):
        score(t, g, dec)
    t, g, dec = _write_hand(tmp_path)
    g.write_text(g.read_text() + json.dumps({"request_id": "r99", "population": "x", "account": "q"}) + "\n")
    with pytest.raises(ScoreError, match="lists 13 requests"):
        score(t, g, dec)
    with pytest.raises(ScoreError, match="No such file"):
        score(t, g, tmp_path / "missing.jsonl")


# ---------------------------------------------------------------- CLI


def _local_app() -> typer.Typer:
    app = typer.Typer()
    app.command("simulate")(simulate_cmd)
    app.command("score")(score_cmd)
    return app


def test_cli_simulate_then_score_in_process(tmp_path: Path) -> None:
    runner, app = CliRunner(), _local_app()
    t, g = tmp_path / "t.jsonl", tmp_path / "g.jsonl"
    res = runner.invoke(
        app,
        [
            "simulate",
            "--out",
            str(t),
            "--truth",
            str(g),
            "--seed",
            "2",
            "--scale",
            "0.01",
            "--hours",
            "12",
            "--set",
            "distill_fast.accounts=3000",
        ],
    )
    assert res.exit_code == 0, res.output
    truth = _read(g)
    assert len(truth) == round(230_000 * 0.01 / 2)
    assert len({x["account"] for x in truth if x["population"] == "distill_fast"}) == 30
    dec = tmp_path / "d.jsonl"
    dec.write_text(
        "".join(
            json.dumps({"request_id": x["request_id"], "effect": "deny" if x["is_campaign"] else "allow"}) + "\n"
            for x in truth
        )
    )
    res = runner.invoke(app, ["score", "--traffic", str(t), "--truth", str(g), "--decisions", str(dec), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["benign"]["false_positive_rate"] == 0.0
    assert all(c["extraction_yield"] == 0.0 for c in out["campaigns"].values())
    res = runner.invoke(app, ["score", "--traffic", str(t), "--truth", str(g), "--decisions", str(tmp_path / "no")])
    assert res.exit_code == 2 and "error: decisions file" in res.output
    res = runner.invoke(app, ["simulate", "--out", str(t), "--truth", str(g), "--set", "x.accounts=1"])
    assert res.exit_code == 2 and "unknown population 'x'" in res.output
    res = runner.invoke(app, ["simulate", "--seed", "4"])
    assert res.exit_code == 2 and "--out and --truth are required" in res.output


def test_cli_describe_prints_the_world_and_writes_nothing(tmp_path: Path) -> None:
    runner, app = CliRunner(), _local_app()
    res = runner.invoke(
        app,
        [
            "simulate",
            "--describe",
            "--seed",
            "21",
            "--set",
            "coding_agent.accounts=77",
            "--out",
            str(tmp_path / "t.jsonl"),
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    expected = describe(SimConfig(seed=21).with_overrides({"coding_agent": {"accounts": 77}}))
    assert out == json.loads(json.dumps(expected))
    assert out["populations"]["coding_agent"]["accounts"] == 77
    assert not (tmp_path / "t.jsonl").exists()
    other = json.loads(runner.invoke(app, ["simulate", "--describe", "--seed", "22"]).output)
    assert other["populations"]["coding_agent"]["params"] != out["populations"]["coding_agent"]["params"]


def test_simulate_help_states_the_tuning_and_held_out_seeds() -> None:
    res = CliRunner().invoke(_local_app(), ["simulate", "--help"], terminal_width=200)
    assert res.exit_code == 0
    text = " ".join(res.output.split())
    assert "Seeds 1-99 are for tuning" in text and "seeds 1000 and above are held out" in text


def test_policyctl_simulate_and_score_as_subprocesses(tmp_path: Path) -> None:
    policyctl = Path(sys.executable).with_name("policyctl")
    t, g, d = tmp_path / "t.jsonl", tmp_path / "g.jsonl", tmp_path / "d.jsonl"
    run = subprocess.run(
        [str(policyctl), "simulate", "--out", str(t), "--truth", str(g), "--scale", "0.005", "--seed", "9"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "requests in" in run.stderr
    d.write_text("".join(json.dumps({"request_id": x["request_id"], "effect": "allow"}) + "\n" for x in _read(g)))
    run = subprocess.run(
        [str(policyctl), "score", "--traffic", str(t), "--truth", str(g), "--decisions", str(d)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "distill-fast" in run.stdout and "false-positive rate 0.00%" in run.stdout


def test_shadow_rules_are_scored_as_if_enforced(tmp_path: Path) -> None:
    """replay writes what a decision would have been with its shadow rules
    enforced (`shadow_effect`); score reports the yield and false positives
    that enforcing them would give, beside the shipped figures."""
    policyctl = str(Path(sys.executable).with_name("policyctl"))
    t, g, d = tmp_path / "t.jsonl", tmp_path / "g.jsonl", tmp_path / "d.jsonl"
    pol = tmp_path / "p"
    pol.mkdir()
    (pol / "main.policy").write_text(
        'policy "shadow-score" {\n  owner "tests"\n}\n\n'
        'rule young_would_be_denied {\n  deny when account.age_days < 1000000\n  reason "everyone"\n  shadow\n}\n'
    )
    for cmd in (
        ["simulate", "--out", str(t), "--truth", str(g), "--scale", "0.005", "--seed", "9"],
        ["replay", "--policies", str(pol), str(t), "--out", str(d), "--quiet"],
    ):
        run = subprocess.run([policyctl, *cmd], capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
    lines = _read(d)
    assert all(x["effect"] == "allow" and x["shadow_effect"] == "deny" for x in lines)
    run = subprocess.run(
        [policyctl, "score", "--traffic", str(t), "--truth", str(g), "--decisions", str(d), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["benign"]["false_positive_rate"] == 0.0 and out["benign"]["shadow_false_positive_rate"] == 1.0
    assert all(c["extraction_yield"] == 1.0 and c["shadow_extraction_yield"] == 0.0 for c in out["campaigns"].values())
    run = subprocess.run(
        [policyctl, "score", "--traffic", str(t), "--truth", str(g), "--decisions", str(d)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert "had the shadow rules been enforced: benign false-positive rate 100.00%" in run.stdout, run.stdout
