"""The traffic simulator and the scorer."""

from __future__ import annotations

import importlib
import ipaddress
import json
import random
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from policy_engine.cli.simulate import parse_sets, score_cmd, simulate_cmd
from policy_engine.context import RequestContext
from policy_engine.simulate import network as net
from policy_engine.simulate.generator import (DEFAULT_POPULATIONS, PopulationSpec, SimConfig, apportion,
                                              write)
from policy_engine.simulate.scorer import ScoreError, score

SMALL = SimConfig(seed=7, scale=0.03)


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


def test_truth_is_aligned_and_never_inside_requests(day: Any) -> None:
    _, _, traffic, truth = day
    assert len(truth) == len(traffic)
    names = {p.name for p in DEFAULT_POPULATIONS}
    for c, t in zip(traffic, truth):
        assert t["request_id"] == c["request"]["id"]
        assert t["account"] == c["account"]["id"]
        assert t["is_campaign"] == (t["campaign"] is not None)
        assert t["population"] in names
        assert t["campaign"] is None or t["campaign"] not in json.dumps(c)
        ids = (c["request"]["id"], c["account"]["id"], c["account"]["org"] or "", c["api_key"]["id"])
        assert not any(name in i for name in names for i in ids)


def test_default_day_plan() -> None:
    plan = {spec.name: (acc, req) for spec, acc, req in SimConfig().plan()}
    assert sum(req for _, req in plan.values()) >= 200_000
    assert plan["distill_fast"][0] >= 3000  # several thousand surrogate accounts
    assert abs(sum(p.share for p in DEFAULT_POPULATIONS) - 1.0) < 1e-9


def test_population_shares_and_account_counts_as_configured(tmp_path: Path) -> None:
    pops = (PopulationSpec("small_dev", 40, 0.2), PopulationSpec("enterprise", 3, 0.3),
            PopulationSpec("distill_fast", 120, 0.4), PopulationSpec("distill_slow", 9, 0.1))
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
    plan = {s.name: (a, r) for s, a, r in SimConfig(scale=0.5, hours=12, requests_per_day=3000,
                                                     populations=cfg2.populations).plan()}
    assert plan["distill_fast"][0] == 30 and abs(plan["distill_fast"][1] - 750 * 0.8 / 1.4) < 1
    assert sum(r for _, r in plan.values()) == 750


def test_config_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="unknown population 'nope'"):
        SimConfig(populations=(PopulationSpec("nope", 1, 1.0),))
    with pytest.raises(ValueError, match="only 'accounts' and 'share'"):
        SimConfig().with_overrides({"small_dev": {"age": 3}})
    with pytest.raises(ValueError, match="scale and hours must be positive"):
        SimConfig(hours=0)
    assert parse_sets(["distill_fast.accounts=8000", "bursty.share=0.1"]) == {
        "distill_fast": {"accounts": 8000.0}, "bursty": {"share": 0.1}}
    with pytest.raises(ValueError, match="POPULATION.FIELD=VALUE"):
        parse_sets(["distill_fast=3"])


def test_apportion_gives_each_slot_at_least_one_and_sums_exactly() -> None:
    assert apportion(10, [1.0, 1.0, 1.0]) in ([4, 3, 3], [3, 4, 3], [3, 3, 4])
    assert sum(apportion(1000, [0.1, 5.0, 2.5, 0.01])) == 1000
    assert min(apportion(7, [100.0, 0.001, 0.001])) == 1
    with pytest.raises(ValueError):
        apportion(2, [1.0, 1.0, 1.0])


def _by_population(traffic: list[dict[str, Any]], truth: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c, t in zip(traffic, truth):
        out[t["population"]].append(c)
    return out


def test_fast_campaign_looks_like_the_reports(day: Any) -> None:
    pop = _by_population(day[2], day[3])["distill_fast"]
    assert all(c["account"]["age_days"] < 7 and c["account"]["verification"] in ("none", "email") for c in pop)
    assert {c["client"]["asn"] for c in pop} <= set(net.SURROGATE_HOSTING_ASNS)
    blocks = {str(ipaddress.ip_network(c["client"]["ip"] + "/24", strict=False)) for c in pop}
    assert len(blocks) <= 12
    cards = Counter(pf for pf in {(c["account"]["id"], c["account"]["payment_fingerprint"]) for c in pop})
    per_card = Counter(pf for _, pf in cards if pf)
    assert max(per_card.values()) >= 2  # some accounts share payment fingerprints
    per_account = Counter(c["account"]["id"] for c in pop)
    assert max(per_account.values()) <= 20  # under naive per-account limits
    step = sum("step by step" in c["request"]["prompt"].lower() for c in pop)
    assert step > 0.3 * len(pop)


def test_slow_campaign_is_broad_old_and_residential(day: Any) -> None:
    pop = _by_population(day[2], day[3])["distill_slow"]
    residential = {n.asn for n in net.RESIDENTIAL_NETS}
    assert all(c["account"]["verification"] in ("phone", "kyc") and c["account"]["age_days"] >= 60 for c in pop)
    assert {c["client"]["asn"] for c in pop} <= residential
    countries: dict[str, set[str]] = defaultdict(set)
    for c in pop:
        countries[c["account"]["id"]].add(c["client"]["country"])
    assert statistics.median(len(v) for v in countries.values()) >= 3


def test_benign_traffic_contains_the_traps_of_naive_rules(day: Any) -> None:
    by = _by_population(day[2], day[3])
    benign = [c for name in ("small_dev", "power_user", "enterprise", "chat_backend", "bursty") for c in by[name]]
    assert any("step by step" in c["request"]["prompt"].lower() for c in benign)
    assert any(c["account"]["age_days"] < 7 for c in by["small_dev"])  # new sign-ups
    hosting = {n.asn for n in net.HOSTING_NETS}
    assert all(c["client"]["asn"] in hosting for c in by["enterprise"] + by["chat_backend"])
    prompts = Counter(c["request"]["prompt"] for c in by["bursty"])
    assert prompts.most_common(1)[0][1] >= 2  # retries resend the same prompt
    assert "\nassistant: " in "".join(c["request"]["prompt"] for c in by["chat_backend"])


def test_address_blocks_agree_with_the_embedded_geo_data() -> None:
    from geoip2fast import GeoIP2Fast

    geo, rng = GeoIP2Fast(), random.Random(5)
    wrong = []
    for n in net.ALL_NETS:
        for _ in range(10):
            ip = net.random_ip(rng, n)
            assert ipaddress.ip_address(ip) in ipaddress.ip_network(n.prefix)
            if geo.lookup(ip).country_code != n.country:
                wrong.append((n.prefix, ip, geo.lookup(ip).country_code, n.country))
    assert not wrong


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
    t.write_text("".join(json.dumps({"request": {"id": r}, "account": {"id": a},
                                     "usage": {"prompt_tokens": 5, "completion_tokens": tok}}) + "\n"
                         for r, _, _, a, _, tok in rows))
    # truth and decisions in another order: the scorer joins by id, time order comes from traffic
    g.write_text("".join(json.dumps({"request_id": r, "population": p, "campaign": c, "account": a,
                                     "is_campaign": c is not None}) + "\n" for r, p, c, a, _, _ in reversed(rows)))
    dec.write_text("".join(json.dumps({"request_id": r, "effect": e, "reason": "", "rules": []}) + "\n"
                           for r, _, _, _, e, _ in sorted(rows)))
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
    res = runner.invoke(app, ["simulate", "--out", str(t), "--truth", str(g), "--seed", "2", "--scale", "0.01",
                              "--hours", "12", "--set", "distill_fast.accounts=3000"])
    assert res.exit_code == 0, res.output
    truth = _read(g)
    assert len(truth) == round(230_000 * 0.01 / 2)
    assert len({x["account"] for x in truth if x["population"] == "distill_fast"}) == 30
    dec = tmp_path / "d.jsonl"
    dec.write_text("".join(json.dumps({"request_id": x["request_id"],
                                       "effect": "deny" if x["is_campaign"] else "allow"}) + "\n" for x in truth))
    res = runner.invoke(app, ["score", "--traffic", str(t), "--truth", str(g), "--decisions", str(dec), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["benign"]["false_positive_rate"] == 0.0
    assert all(c["extraction_yield"] == 0.0 for c in out["campaigns"].values())
    res = runner.invoke(app, ["score", "--traffic", str(t), "--truth", str(g), "--decisions", str(tmp_path / "no")])
    assert res.exit_code == 2 and "error: decisions file" in res.output
    res = runner.invoke(app, ["simulate", "--out", str(t), "--truth", str(g), "--set", "x.accounts=1"])
    assert res.exit_code == 2 and "unknown population 'x'" in res.output


def test_policyctl_simulate_and_score_as_subprocesses(tmp_path: Path) -> None:
    try:
        importlib.import_module("policy_engine.cli.main")
    except ImportError as e:  # the lead's main.py is not in this checkout yet
        pytest.skip(f"policyctl main module not importable: {e}")
    policyctl = Path(sys.executable).with_name("policyctl")
    t, g, d = tmp_path / "t.jsonl", tmp_path / "g.jsonl", tmp_path / "d.jsonl"
    run = subprocess.run([str(policyctl), "simulate", "--out", str(t), "--truth", str(g), "--scale", "0.005",
                          "--seed", "9"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "requests in" in run.stderr
    d.write_text("".join(json.dumps({"request_id": x["request_id"], "effect": "allow"}) + "\n" for x in _read(g)))
    run = subprocess.run([str(policyctl), "score", "--traffic", str(t), "--truth", str(g), "--decisions", str(d)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "distill-fast" in run.stdout and "false-positive rate 0.00%" in run.stdout
