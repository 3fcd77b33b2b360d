"""The blind world (policy_engine/simulate/blind): determinism, schema, truth,
geography, per-seed parameters, populations, and the CLI round trip."""

from __future__ import annotations

import ipaddress
import json
import os
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from policy_engine.context import Context, RequestContext
from policy_engine.signals import net as geo
from policy_engine.simulate.blind import BlindConfig, describe, draw_params, population_names, write
from policy_engine.simulate.blind import core, nets
from policy_engine.simulate.blind import lexicon as lx

POLICYCTL = Path(sys.executable).with_name("policyctl")
CAMPAIGN_IDS = {"distill-fast", "distill-slow", "distill-agentic", "guardrail-probe"}
OPAQUE = re.compile(r"^(acct|org|key|pf)-[0-9a-f]{16}$")


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _simulate(tmp: Path, *args: str, env: dict[str, str] | None = None) -> tuple[Path, Path]:
    t, g = tmp / "traffic.jsonl", tmp / "truth.jsonl"
    run = subprocess.run(
        [str(POLICYCTL), "simulate", "--world", "blind", "--out", str(t), "--truth", str(g), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    return t, g


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[dict[str, Any]], list[dict[str, Any]]]:
    d = tmp_path_factory.mktemp("blind")
    t, g = d / "t.jsonl", d / "g.jsonl"
    write(BlindConfig(seed=11, scale=0.05, hours=24), t, g)
    return t, g, _read(t), _read(g)


# ---------------------------------------------------------------- determinism


def test_same_seed_same_bytes_under_different_hash_seeds(tmp_path: Path) -> None:
    outs = []
    for i, hashseed in enumerate(("0", "4242")):
        d = tmp_path / str(i)
        d.mkdir()
        env = dict(os.environ, PYTHONHASHSEED=hashseed)
        outs.append(_simulate(d, "--seed", "7", "--scale", "0.02", "--hours", "6", env=env))
    (t1, g1), (t2, g2) = outs
    assert t1.read_bytes() == t2.read_bytes() and g1.read_bytes() == g2.read_bytes()
    assert t1.stat().st_size > 0
    d = tmp_path / "other"
    d.mkdir()
    t3, _ = _simulate(d, "--seed", "8", "--scale", "0.02", "--hours", "6")
    assert t3.read_bytes() != t1.read_bytes()


# ---------------------------------------------------------------- schema and truth


def test_every_line_is_a_valid_request_context(small: Any) -> None:
    t, _, traffic, _ = small
    for line in t.read_text(encoding="utf-8").splitlines():
        RequestContext.model_validate_json(line)
        Context.from_json(line)  # the replay path
    last = BlindConfig().start_ts
    for c in traffic:
        r, a, u = c["request"], c["account"], c["usage"]
        assert last <= r["ts"] < BlindConfig().start_ts + 24 * 3600
        last = r["ts"]
        assert 0 <= u["completion_tokens"] <= r["max_tokens"]
        assert r["prompt"] and r["prompt_tokens"] >= 1 and u["prompt_tokens"] >= 1
        assert a["age_days"] >= 0 and a["verification"] in ("none", "email", "phone", "kyc")
        assert c["client"]["ip"] and c["client"]["country"] and c["client"]["asn"] > 0 and c["client"]["user_agent"]


def test_truth_is_aligned_and_ids_are_opaque(small: Any) -> None:
    _, _, traffic, truth = small
    assert len(traffic) == len(truth) > 1000
    names = set(population_names())
    ids = set()
    for c, g in zip(traffic, truth):
        assert set(g) == {"request_id", "population", "campaign", "account", "is_campaign"}
        assert g["request_id"] == c["request"]["id"] and g["account"] == c["account"]["id"]
        assert g["population"] in names
        assert g["is_campaign"] == (g["campaign"] is not None)
        assert g["campaign"] is None or g["campaign"] in CAMPAIGN_IDS
        ids.add(g["request_id"])
        for value in (c["account"]["id"], c["account"]["org"], c["api_key"]["id"]):
            assert OPAQUE.match(value), value
        assert c["account"]["payment_fingerprint"] is None or OPAQUE.match(c["account"]["payment_fingerprint"])
    assert len(ids) == len(truth)
    # an account belongs to one campaign (or none), whatever its requests are labelled
    owner: dict[str, Any] = {}
    for g in truth:
        assert owner.setdefault(g["account"], g["campaign"]) == g["campaign"]
    # a personal org's id says nothing about its account's id
    assert all(c["account"]["id"][5:] != c["account"]["org"][4:] for c in traffic)


def test_labels_and_user_agents_are_shared_not_signals(small: Any) -> None:
    _, _, traffic, truth = small
    labelled = Counter(g["is_campaign"] for c, g in zip(traffic, truth) if c["account"]["labels"])
    assert sum(1 for c in traffic if c["account"]["labels"]) < 0.15 * len(traffic)
    agents: dict[bool, set[str]] = {True: set(), False: set()}
    for c, g in zip(traffic, truth):
        agents[g["is_campaign"]].add(c["client"]["user_agent"])
    pools = set(lx.SDK_AGENTS + lx.AGENT_AGENTS + lx.BROWSER_AGENTS)
    assert agents[True] | agents[False] <= pools
    assert len(agents[True] & agents[False]) >= 0.8 * len(agents[True])
    assert labelled[False] > 0


def test_sessions_are_created_only_when_their_start_comes_up() -> None:
    """The merge holds the active sessions, never the day: an iterator exists
    only once the merged stream has reached its start."""
    acct = core.Account("a", "o", 0.0, "email", "free", None, (), ("inference",), ("k",), "p")
    ep = nets.HOME[0].endpoint(random.Random(1))
    created: list[float] = []
    live = [0]

    def session(start: float) -> Any:
        created.append(start)
        live[0] += 1
        for j in range(3):
            yield core.Req(start + j, acct, "k", ep, "ua", core.LARGE, core.prompt("x"), 16, 1, "p")
        live[0] -= 1

    starts = [(float(i * 10), (lambda s=float(i * 10): session(s))) for i in range(1000)]
    peak, out = 0, []
    for req in core.lazy_merge(starts):
        assert created[-1] <= req.ts  # starts come in order: nothing was made ahead of time
        peak = max(peak, live[0])
        out.append(req.ts)
    assert out == sorted(out) and len(out) == 3000 and peak <= 2


# ---------------------------------------------------------------- geography


def test_network_blocks_agree_with_the_embedded_geo_data() -> None:
    rng = random.Random(3)
    wrong = []
    for n in nets.ALL:
        for _ in range(12):
            ip = n.address(rng)
            assert ipaddress.ip_address(ip) in ipaddress.ip_network(n.prefix)
            got = (geo.geo_country(ip), geo.asn_org(ip), geo.geo_asn(ip))
            if got[0] != n.country or got[1] != n.org or got[2] not in (None, n.asn):
                wrong.append((n.prefix, ip, got, (n.country, n.org, n.asn)))
    assert not wrong


def test_every_emitted_address_agrees_with_its_country_and_asn(small: Any) -> None:
    _, _, traffic, _ = small
    wrong = []
    for ip, cc, asn in sorted({(c["client"]["ip"], c["client"]["country"], c["client"]["asn"]) for c in traffic}):
        if geo.geo_country(ip) != cc or geo.geo_asn(ip) not in (None, asn):
            wrong.append((ip, cc, asn, geo.geo_country(ip), geo.asn_org(ip)))
    assert not wrong


# ---------------------------------------------------------------- parameters


def _numbers(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out |= _numbers(v, f"{prefix}.{k}" if prefix else k)
        return out
    return {prefix: obj}


def test_world_parameters_are_drawn_per_seed() -> None:
    described = [describe(BlindConfig(seed=s)) for s in range(1, 13)]
    assert all(150_000 <= d["requests_per_day"] <= 250_000 for d in described)
    flat = [_numbers(d["populations"]) for d in described]
    varying = {k for k in flat[0] if k.endswith(".campaign") is False and len({json.dumps(f[k]) for f in flat}) > 1}
    fixed = set(flat[0]) - varying - {k for k in flat[0] if k.endswith(".campaign")}
    assert not fixed, f"parameters that never change with the seed: {sorted(fixed)}"
    # strategies are variants, and each campaign shows more than one across seeds
    for key in (
        "distill_fast.mode",
        "distill_fast.proxy",
        "distill_fast.schedule",
        "distill_slow.pacing",
        "distill_slow.style",
        "distill_agentic.network",
        "guardrail_probe.network",
    ):
        assert len({f[key] for f in flat}) > 1, key
    assert len({d["new_model_release_ts"] for d in described}) == len(described)
    # the draws are the documented ranges
    for f in flat:
        assert 1500 <= f["distill_fast.accounts"] <= 8000 and 15 <= f["distill_slow.accounts"] <= 60
        assert 0.4 <= f["distill_agentic.pivot_share"] <= 0.6 and f["distill_agentic.pivot_lag_h"] <= 10


def test_describe_is_what_the_generator_uses() -> None:
    params = draw_params(5)
    d = describe(BlindConfig(seed=5, scale=0.5, hours=12))
    assert d["requests_per_day"] == params.requests_per_day
    total = sum(p["expected_requests"] for p in d["populations"].values())
    assert abs(total - params.requests_per_day * 0.5 * 0.5) <= len(d["populations"])


# ---------------------------------------------------------------- populations


def test_each_population_is_present_at_scale_one_over_a_short_window(tmp_path: Path) -> None:
    t, g = tmp_path / "t.jsonl", tmp_path / "g.jsonl"
    summary = write(BlindConfig(seed=21, scale=1.0, hours=3), t, g)
    missing = [p for p in population_names() if summary.per_population.get(p, {}).get("requests", 0) == 0]
    assert not missing
    truth = _read(g)
    assert {x["campaign"] for x in truth if x["is_campaign"]} == CAMPAIGN_IDS


def test_hard_cases_look_like_their_attack_twins(small: Any) -> None:
    _, _, traffic, truth = small
    by: dict[str, list[dict[str, Any]]] = {}
    for c, g in zip(traffic, truth):
        by.setdefault(g["population"], []).append(c)
    # coding agents resend long, growing contexts
    assert max(c["request"]["prompt_tokens"] for c in by["agent_power"]) > 100_000
    # classes: fresh accounts behind few campus addresses, many pasting the same text
    uni = by["university_class"]
    assert sum(c["account"]["age_days"] < 15 for c in uni) == len(uni)
    assert Counter(c["request"]["prompt"] for c in uni).most_common(1)[0][1] >= 3
    # moderation backends send toxic stubs by design
    assert any("<redacted:" in c["request"]["prompt"] for c in by["trust_safety"])
    # enterprise accounts of one org share a payment fingerprint
    pay = Counter(
        (c["account"]["org"], c["account"]["payment_fingerprint"], c["account"]["id"]) for c in by["enterprise_backend"]
    )
    orgs = Counter((o, p) for o, p, _ in pay)
    assert max(orgs.values()) >= 2
    # slow distillation: old, verified, paying accounts on one address each
    slow = by["distill_slow"]
    assert min(c["account"]["age_days"] for c in slow) > 150
    assert all(c["account"]["verification"] in ("phone", "kyc") and c["account"]["payment_fingerprint"] for c in slow)
    addrs: dict[str, set[str]] = {}
    for c in slow:
        addrs.setdefault(c["account"]["id"], set()).add(c["client"]["ip"])
    assert max(len(v) for v in addrs.values()) == 1


def test_a_campaign_moves_to_the_new_model_after_its_release(tmp_path: Path) -> None:
    t, g = tmp_path / "t.jsonl", tmp_path / "g.jsonl"
    write(BlindConfig(seed=4, scale=0.1, hours=24), t, g)
    d = describe(BlindConfig(seed=4))
    on = d["new_model_release_ts"] + d["populations"]["distill_agentic"]["pivot_lag_h"] * 3600 + 3600
    late = [c for c, x in zip(_read(t), _read(g)) if x["population"] == "distill_agentic" and c["request"]["ts"] > on]
    assert late
    share = sum(c["request"]["model"] == core.NEW_LARGE for c in late) / len(late)
    assert 0.25 <= share <= 0.75


# ---------------------------------------------------------------- the CLI round trip


TRIVIAL_POLICY = """rule brand_new_accounts {
  deny when account.age_days < 0.01
  reason "test policy: account created minutes ago"
}
"""


def test_policyctl_simulate_replay_score_on_a_tiny_blind_world(tmp_path: Path) -> None:
    t, g = _simulate(tmp_path, "--seed", "3", "--scale", "0.01", "--hours", "4")
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "main.policy").write_text(TRIVIAL_POLICY, encoding="utf-8")
    d = tmp_path / "d.jsonl"
    run = subprocess.run(
        [str(POLICYCTL), "replay", "--policies", str(tmp_path / "p"), str(t), "--out", str(d), "--strict", "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert len(_read(d)) == len(_read(t))
    run = subprocess.run(
        [str(POLICYCTL), "score", "--traffic", str(t), "--truth", str(g), "--decisions", str(d), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    truth = _read(g)
    assert set(out["campaigns"]) <= CAMPAIGN_IDS and out["campaigns"]
    assert out["benign"]["requests"] == sum(not x["is_campaign"] for x in truth)
    assert set(out["populations"]) == {x["population"] for x in truth}
    run = subprocess.run(
        [str(POLICYCTL), "simulate", "--world", "blind", "--seed", "3", "--describe"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0 and json.loads(run.stdout)["seed"] == 3


def test_cli_rejects_what_the_blind_world_does_not_take(tmp_path: Path) -> None:
    base = [str(POLICYCTL), "simulate", "--out", str(tmp_path / "t"), "--truth", str(tmp_path / "g")]
    for args, msg in (
        (["--world", "blind", "--set", "indie_dev.share=1"], "--set applies to the default world"),
        (["--world", "mars"], "expected default or blind"),
        (["--world", "blind", "--scale", "0"], "scale and hours must be positive"),
    ):
        run = subprocess.run(base + args, capture_output=True, text=True, timeout=120)
        assert run.returncode == 2 and msg in run.stderr, (args, run.stderr)
