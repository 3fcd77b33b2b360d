"""policyctl replay: simulated clock, usage after admitted requests, identical
decisions on the memory and Redis stores, invalid lines, the CLI."""

from __future__ import annotations

import asyncio
import io
import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from policy_engine.policyset import PolicySet, load_policy_set
from policy_engine.replay import (
    REPLAY_STORE_DEADLINE,
    LineError,
    ReplayAborted,
    ReplayOptions,
    ReplayStats,
    replay_async,
    replay_memory,
)
from policy_engine.simulate.generator import SimConfig, write
from policy_engine.state.memory import MemoryStore

FIXTURES = Path(__file__).parent / "fixtures"
SMALL = FIXTURES / "replay_small"
T0 = 1_764_300_000.0


@pytest.fixture(scope="module")
def small_policy() -> PolicySet:
    return load_policy_set(SMALL)


@pytest.fixture(scope="module")
def sim_traffic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few thousand simulated requests (six hours at 5% scale) of the first
    tuning seed whose world puts over 40 accounts on one network within a clock
    hour (a fast campaign on a few datacenter /24s does), so that every kind of
    limit in the small policy fires."""
    d = tmp_path_factory.mktemp("replay-sim")
    traffic = d / "traffic.jsonl"
    for seed in range(1, 100):
        write(SimConfig(seed=seed, scale=0.05, hours=6), traffic, d / "truth.jsonl")
        per_hour: dict[tuple[int, int], set[str]] = defaultdict(set)
        for line in traffic.read_text(encoding="utf-8").splitlines():
            c = json.loads(line)
            per_hour[(c["client"]["asn"], int(c["request"]["ts"] // 3600))].add(c["account"]["id"])
        if max(len(accounts) for accounts in per_hour.values()) > 40:
            return traffic
    raise AssertionError("no tuning seed puts over 40 accounts on one network in an hour")


def ctx(
    rid: str,
    ts: float,
    *,
    acct: str = "acct-1",
    model: str = "m",
    max_tokens: int = 1000,
    usage: tuple[int, int] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    c: dict[str, Any] = {
        "request": {"id": rid, "ts": ts, "model": model, "prompt": "hello", "max_tokens": max_tokens},
        "account": {"id": acct, "tier": "pro"},
        "api_key": {"id": "key-1", "scopes": ["inference"]},
        "client": {"ip": "192.0.2.1", "country": "US", "asn": 64500},
    }
    if usage is not None:
        c["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1]}
    for section, fields in extra.items():
        c[section].update(fields)
    return c


def write_lines(path: Path, items: list[dict[str, Any] | str]) -> Path:
    path.write_text("".join((i if isinstance(i, str) else json.dumps(i)) + "\n" for i in items), encoding="utf-8")
    return path


def run_memory(policy: PolicySet, traffic: Path, **opts: Any) -> tuple[list[dict[str, Any]], ReplayStats]:
    out = io.BytesIO()
    stats = replay_memory(policy, traffic, out, MemoryStore(), ReplayOptions(**opts))
    return [json.loads(line) for line in out.getvalue().splitlines()], stats


# ------------------------------------------------------------ stores agree
def test_memory_and_redis_give_identical_decisions(small_policy: PolicySet, sim_traffic: Path, redis_server) -> None:
    from policy_engine.state.redis import RedisStore

    mem = io.BytesIO()
    mstats = replay_memory(small_policy, sim_traffic, mem, MemoryStore())

    async def on_redis() -> tuple[io.BytesIO, ReplayStats]:
        store = RedisStore.from_url(redis_server.url, deadline=REPLAY_STORE_DEADLINE, prefix="pe-test-replay")
        await store.flush()
        out = io.BytesIO()
        try:
            return out, await replay_async(small_policy, sim_traffic, out, store)
        finally:
            await store.flush()
            await store.close()

    red, rstats = asyncio.run(on_redis())
    mem_lines, red_lines = mem.getvalue().splitlines(), red.getvalue().splitlines()
    assert len(mem_lines) == mstats.requests > 2000
    for n, (a, b) in enumerate(zip(mem_lines, red_lines), 1):
        assert a == b, f"decision {n} differs:\nmemory {a!r}\nredis  {b!r}"
    assert len(red_lines) == len(mem_lines)
    assert rstats.usage_reconciled == mstats.usage_reconciled > 0
    # The comparison means something only if every kind of limit fired.
    for lim in ("rpm", "tokens_hour", "accounts_per_asn"):
        assert mstats.fired[lim] > 0, f"{lim} never fired: the test traffic does not exercise it"
    assert mstats.effect_counts()["throttle"] > 0 and mstats.effect_counts()["deny"] > 0


# ------------------------------------------------------------------ usage
USAGE_POLICY = """
policy "usage" {}
rule blocked_model {
  deny when request.model == "blocked"
  reason "blocked model"
}
limit tokens {
  key account.id
  sum request.max_tokens
  usage usage.completion_tokens
  window 1h
  max 1M
  flag
  reason "many tokens"
  record attempts
}
"""


def test_usage_is_reported_only_after_admitted_requests(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "u.policy").write_text(USAGE_POLICY, encoding="utf-8")
    policy = load_policy_set(tmp_path / "p")
    traffic = write_lines(
        tmp_path / "t.jsonl",
        [
            ctx("a", T0, max_tokens=100, usage=(0, 1)),  # admitted: 100 estimated, 1 real
            ctx("b", T0 + 1, max_tokens=100, usage=(0, 1), request={"model": "blocked"}),  # denied: 100 stays
            ctx("c", T0 + 2, max_tokens=100, usage=(0, 7)),  # admitted
            ctx("d", T0 + 3, max_tokens=100),  # no usage: the estimate stays
            ctx("e", T0 + 4, max_tokens=100),
        ],
    )
    decisions, stats = run_memory(policy, traffic)
    used = [d["limits"]["tokens"]["used"] for d in decisions]
    assert [d["effect"] for d in decisions] == ["allow", "deny", "allow", "allow", "allow"]
    # a: 100 -> reconciled to 1; b (denied, recorded as an attempt): 1 + 100, usage NOT applied;
    # c: 101 + 100 -> reconciled to 108; d: 108 + 100; e: 208 + 100.
    assert used == [100, 101, 201, 208, 308]
    assert stats.usage_reconciled == 2


# ---------------------------------------------------------- invalid lines
def test_invalid_lines_are_reported_with_their_number_and_skipped(small_policy: PolicySet, tmp_path: Path) -> None:
    traffic = write_lines(
        tmp_path / "t.jsonl",
        [
            ctx("r1", T0),
            ctx("r2", T0 + 1, account={"tier": "pro", "colour": "red"}),  # unknown field
            "{not json",
            "",  # blank: ignored, not an error
            ctx("r5", T0 + 2, request={"ts": None}),  # no clock
            ctx("r6", T0 + 3, request={"max_tokens": -1}),
            ctx("r7", T0 + 4),
        ],
    )
    seen: list[LineError] = []
    decisions, stats = run_memory(small_policy, traffic, on_error=seen.append)
    assert [d["request_id"] for d in decisions] == ["r1", "r7"]
    assert [e.line for e in seen] == [2, 3, 5, 6]
    assert stats.invalid == 4 and stats.requests == 2
    assert "$.account.colour: unknown field" in seen[0].message
    assert "$.request.ts" in seen[2].message and "clock" in seen[2].message
    assert "$.request.max_tokens" in seen[3].message


def test_strict_stops_at_the_first_invalid_line(small_policy: PolicySet, tmp_path: Path) -> None:
    traffic = write_lines(tmp_path / "t.jsonl", [ctx("r1", T0), "[]", ctx("r3", T0 + 1)])
    out = io.BytesIO()
    with pytest.raises(ReplayAborted, match="line 2"):
        replay_memory(small_policy, traffic, out, MemoryStore(), ReplayOptions(strict=True))
    assert out.getvalue().count(b"\n") == 1


# ------------------------------------------------------------------- clock
def test_the_clock_is_request_ts_and_never_runs_backwards(small_policy: PolicySet, tmp_path: Path) -> None:
    # rpm allows 4 a minute per account: the 5th within a minute is throttled, a
    # request a minute and a half later is not; a line stamped in the past is
    # decided at the clock so far (and counted).
    rows = [ctx(f"r{i}", T0 + i) for i in range(5)]
    rows.append(ctx("late", T0 - 600))
    rows.append(ctx("next", T0 + 150))
    decisions, stats = run_memory(small_policy, write_lines(tmp_path / "t.jsonl", rows))
    effects = [d["effect"] for d in decisions]
    assert effects == ["allow"] * 4 + ["throttle", "throttle", "allow"]
    assert decisions[4]["rules"] == ["rpm"] and decisions[4]["retry_after"] > 0
    assert stats.out_of_order == 1


def test_decision_line_is_compact_and_complete(small_policy: PolicySet, tmp_path: Path) -> None:
    decisions, _ = run_memory(small_policy, write_lines(tmp_path / "t.jsonl", [ctx("r1", T0, max_tokens=9000)]))
    (d,) = decisions
    assert d["request_id"] == "r1" and d["effect"] == "flag" and d["status"] == 200
    assert d["rules"] == ["long_outputs"] and d["reason"] == "asks for very long outputs"
    assert d["limits"]["rpm"] == {"key": "acct-1", "used": 1, "max": 4}
    assert d["limits"]["tokens_hour"] == {"key": "acct-1", "used": 9000, "max": 20000}
    assert d["limits"]["accounts_per_asn"] == {"key": "64500", "used": 1, "max": 40}


# --------------------------------------------------------------------- CLI
def test_policyctl_replay_as_a_subprocess(tmp_path: Path, sim_traffic: Path) -> None:
    lines = sim_traffic.read_text(encoding="utf-8").splitlines()[:300]
    lines.insert(2, '{"request": {"id": "bad", "ts": "soon"}}')
    traffic = tmp_path / "traffic.jsonl"
    traffic.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out, report = tmp_path / "decisions.jsonl", tmp_path / "report.html"
    policyctl = Path(sys.executable).with_name("policyctl")
    run = subprocess.run(
        [str(policyctl), "replay", "--policies", str(SMALL), str(traffic), "--out", str(out), "--report", str(report)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert f"{traffic}:3: invalid request context: $.request.ts" in run.stderr
    assert "300 requests replayed" in run.stderr and "1 invalid line skipped" in run.stderr
    assert "decisions by effect" in run.stderr and "rules and limits that fired" in run.stderr
    decisions = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert len(decisions) == 300 and all(d["effect"] in ("allow", "flag", "throttle", "deny") for d in decisions)
    assert report.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")

    strict = subprocess.run(
        [str(policyctl), "replay", "-p", str(SMALL), str(traffic), "-o", str(out), "--strict", "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert strict.returncode == 2
    assert "line 3" in strict.stderr and "--strict" in strict.stderr


def test_policyctl_replay_with_redis_matches_memory_and_cleans_up(
    tmp_path: Path, sim_traffic: Path, redis_server
) -> None:
    traffic = tmp_path / "traffic.jsonl"
    traffic.write_text("".join(sim_traffic.read_text(encoding="utf-8").splitlines(True)[:500]), encoding="utf-8")
    policyctl = Path(sys.executable).with_name("policyctl")
    outs = {}
    runs = {
        "memory": [],
        "redis": ["--redis", redis_server.url],
        # one local-first process: every limit batched, the same decisions (docs/limits.md)
        "batched": ["--redis", redis_server.url, "--store-sync", "batched:5ms"],
    }
    for name, extra in runs.items():
        outs[name] = tmp_path / f"{name}.jsonl"
        run = subprocess.run(
            [str(policyctl), "replay", "-p", str(SMALL), str(traffic), "-o", str(outs[name]), "-q", *extra],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        assert run.stderr == ""  # --quiet: no progress bar, no summary
    assert outs["memory"].read_bytes() == outs["redis"].read_bytes() == outs["batched"].read_bytes()
    assert outs["memory"].read_bytes().count(b"\n") == 500
    assert redis_server.cli("--scan", "--pattern", "pe-replay-*").strip() == ""


def test_store_failures_are_counted_and_an_unreachable_redis_is_refused(
    small_policy: PolicySet, tmp_path: Path, redis_factory
) -> None:
    from policy_engine.state.redis import RedisStore

    rp = redis_factory()
    url = rp.url
    rp.stop()  # a Redis that went away: every limit check fails and fails open (the limits' default)
    traffic = write_lines(tmp_path / "t.jsonl", [ctx(f"r{i}", T0 + i) for i in range(6)])

    async def run() -> tuple[io.BytesIO, ReplayStats]:
        store = RedisStore.from_url(url, deadline=0.2, prefix="pe-test-down")
        out = io.BytesIO()
        try:
            return out, await replay_async(small_policy, traffic, out, store)
        finally:
            await store.close()

    out, stats = asyncio.run(run())
    decisions = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [d["effect"] for d in decisions] == ["allow"] * 6  # rpm (max 4) would have throttled two
    assert stats.store_errors == 6 * 3
    assert all("error" in lim for d in decisions for lim in d["limits"].values())

    policyctl = Path(sys.executable).with_name("policyctl")
    run_cli = subprocess.run(
        [str(policyctl), "replay", "-p", str(SMALL), str(traffic), "-o", str(tmp_path / "o"), "--redis", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run_cli.returncode == 2
    assert f"--redis {url}: cannot reach Redis" in run_cli.stderr


def test_blocked_asns_and_countries_are_the_derived_ones(tmp_path: Path) -> None:
    """Traffic with only `client.ip`: a limit keyed on `client.asn` blocks by the
    derived ASN, and the summary and the report count blocked requests by that
    ASN and country (not `-`)."""
    from typer.testing import CliRunner

    from policy_engine.cli.main import app

    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "main.policy").write_text(
        "limit per_network {\n  key client.asn\n  count\n  window 1m\n  max 2\n  deny\n"
        '  reason "too many from this network"\n}\n'
    )
    lines = [
        {"request": {"id": f"r{i}", "ts": T0 + i}, "account": {"id": f"a{i}"}, "client": {"ip": "8.8.8.8"}}
        for i in range(5)
    ]
    traffic = write_lines(tmp_path / "t.jsonl", lines)
    out, report = tmp_path / "d.jsonl", tmp_path / "r.html"
    res = CliRunner().invoke(
        app,
        ["replay", "-p", str(tmp_path / "p"), str(traffic), "-o", str(out), "--report", str(report)],
        env={"COLUMNS": "100"},
    )
    assert res.exit_code == 0, res.output
    decisions = [json.loads(x) for x in out.read_text().splitlines()]
    assert [d["effect"] for d in decisions] == ["allow", "allow", "deny", "deny", "deny"]
    assert decisions[-1]["limits"]["per_network"]["key"] == "15169"
    text = res.output
    asns = text[text.index("top blocked ASNs") : text.index("top blocked countries")]
    countries = text[text.index("top blocked countries") :]
    assert re.search(r"│ 15169 +│ +3 │", asns) and "│ - " not in asns
    assert re.search(r"│ US +│ +3 │", countries)
    page = report.read_text()
    asns = page[page.index("<h3>ASNs</h3>") : page.index("<h3>Countries</h3>")]
    assert '<td class="">15169</td><td class="n">3</td>' in asns and ">-</td>" not in asns
    countries = page[page.index("<h3>Countries</h3>") :]
    assert '<td class="">US</td><td class="n">3</td>' in countries
