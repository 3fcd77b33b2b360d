"""Measures through the commands users run: `policyctl eval` and `policyctl
replay` (memory and --redis) as subprocesses, on a policy folder with measures."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from policy_engine.simulate.generator import SimConfig, write

POLICY = Path(__file__).parent / "fixtures" / "replay_measures"
POLICYCTL = str(Path(sys.executable).with_name("policyctl"))
T0 = 1_764_300_000.0


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([POLICYCTL, *args], input=stdin, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("measures-sim")
    path = d / "traffic.jsonl"
    write(SimConfig(seed=3, scale=0.05, hours=6), path, d / "truth.jsonl")
    return path


def request(account: str, card: str | None, prompt: str = "hello", age: float = 3) -> dict:  # type: ignore[type-arg]
    return {
        "request": {"id": f"r-{account}", "ts": T0, "prompt": prompt, "max_tokens": 100},
        "account": {"id": account, "age_days": age, "payment_fingerprint": card},
    }


def test_eval_shows_the_measures_and_explains_them() -> None:
    r = run(
        "eval",
        "--policies",
        str(POLICY),
        "--request",
        "-",
        "--explain",
        stdin=json.dumps(request("acct-1", "pf-1", "Think step by step: why is the sky blue?")),
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    by_name = {m["measure"]: m for m in d["measures"]}
    assert by_name["card_accounts"] == {"measure": "card_accounts", "key": "pf-1", "value": 1, "charged": True}
    assert by_name["suspicion"]["value"] == 3 and by_name["harvested_tokens"]["value"] == 100
    assert by_name["template_accounts"]["charged"] is True  # a 3-day-old account
    assert d["effect"] == "allow"
    trace = {t.get("measure") or t.get("rule") or t.get("limit"): t for t in d["trace"]}
    assert trace["suspicion"]["level"] == 1 and trace["card_accounts"]["level"] == 0
    assert trace["suspicion"]["status"] == "applied" and trace["suspicious"]["condition"] is False

    # an old account: the template measure is read, not charged, and the trace says why
    r = run(
        "eval",
        "--policies",
        str(POLICY),
        "--request",
        "-",
        "--explain",
        stdin=json.dumps(request("acct-2", None, age=400)),
    )
    d = json.loads(r.stdout)
    by_name = {m["measure"]: m for m in d["measures"]}
    assert "card_accounts" not in by_name  # null key: not touched
    assert by_name["template_accounts"]["charged"] is False
    trace = {t.get("measure") or t.get("rule") or t.get("limit"): t for t in d["trace"]}
    assert trace["card_accounts"]["status"] == "skipped" and trace["card_accounts"]["why"] == "the key is null"
    assert (trace["template_accounts"]["status"], trace["template_accounts"]["why"]) == ("read", "`when` is false")


def test_replay_memory_and_redis_give_identical_decisions(tmp_path: Path, traffic: Path, redis_server) -> None:
    outs = {}
    for name, extra in (("memory", []), ("redis", ["--redis", redis_server.url])):
        outs[name] = tmp_path / f"{name}.jsonl"
        r = run("replay", "-p", str(POLICY), str(traffic), "-o", str(outs[name]), *extra)
        assert r.returncode == 0, r.stderr
        assert "usage reports reconciled" in r.stderr
    mem, red = outs["memory"].read_text().splitlines(), outs["redis"].read_text().splitlines()
    assert len(mem) == len(red) > 2000
    for n, (a, b) in enumerate(zip(mem, red), 1):
        assert a == b, f"decision {n} differs:\nmemory {a}\nredis  {b}"
    decisions = [json.loads(x) for x in mem]
    # every rule reading a measure fired, and the limit whose max reads one
    fired = Counter(rule for d in decisions for rule in d["rules"])
    for rule in ("suspicious", "shared_card_young", "template_campaign", "harvest_rate"):
        assert fired[rule] > 0, f"{rule} never fired: the traffic does not exercise it"
    # each decision line carries the measures it touched; reads are marked
    seen = Counter((name, "read" in m) for d in decisions for name, m in d["measures"].items())
    assert seen[("card_accounts", False)] > 0 and seen[("template_accounts", True)] > 0
    assert seen[("suspicion", False)] == seen[("harvested_tokens", False)] == len(decisions)
    # the card count is counted for every account, whatever the decision
    denied = [d for d in decisions if d["effect"] == "deny"]
    assert denied and all(d["measures"]["card_accounts"]["value"] > 5 for d in denied)
    assert redis_server.cli("--scan", "--pattern", "pe-replay-*").strip() == ""


def test_replay_reconciles_the_sum_measure_with_usage(tmp_path: Path) -> None:
    lines = []
    for i, (max_tokens, completion) in enumerate([(800, 50), (600, 2000), (10, 0)]):
        ctx = request("acct-u", None)
        ctx["request"].update({"id": f"u{i}", "ts": T0 + i, "max_tokens": max_tokens})
        ctx["account"]["age_days"] = 400
        ctx["usage"] = {"prompt_tokens": 1, "completion_tokens": completion}
        lines.append(json.dumps(ctx))
    traffic = tmp_path / "t.jsonl"
    traffic.write_text("\n".join(lines) + "\n")
    out = tmp_path / "o.jsonl"
    r = run("replay", "-p", str(POLICY), str(traffic), "-o", str(out), "-q")
    assert r.returncode == 0, r.stderr
    values = [json.loads(x)["measures"]["harvested_tokens"]["value"] for x in out.read_text().splitlines()]
    # 800 charged then reconciled to 50; 50 + 600 reconciled to 2050; 2050 + 10
    assert values == [800, 650, 2060]
