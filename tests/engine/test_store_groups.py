"""Limits and measures that share their key (LimitSpec.group): the memory store keeps
their counters in one entry per key, each limit's its own in its own window, and
answers exactly as one entry per limit does (Redis keeps one per limit; a local-first
store's memory does too)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from policy_engine.policyset import load_policy_set
from policy_engine.simulate.generator import SimConfig, write
from policy_engine.state.base import Hit, Kind, LimitSpec
from policy_engine.state.memory import MemoryStore

ROOT = Path(__file__).resolve().parents[2]
GROUPS = Path(__file__).parent / "fixtures" / "replay_groups"
T0 = 1_764_300_000.0
POLICYCTL = Path(sys.executable).with_name("policyctl")


def _replay(policies: Path, traffic: Path, out: Path, *extra: str) -> list[dict[str, Any]]:
    run = subprocess.run(
        [str(POLICYCTL), "replay", "-p", str(policies), str(traffic), "-o", str(out), "-q", *extra],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    return [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]


def _ctx(rid: str, ts: float, acct: str, completion: int | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {
        "request": {"id": rid, "ts": ts, "model": "m", "prompt": "hello", "max_tokens": 1000},
        "account": {"id": acct, "tier": "pro"},
        "api_key": {"id": "key-1", "scopes": ["inference"]},
        "client": {"ip": "192.0.2.1", "country": "US", "asn": 64500},
    }
    if completion is not None:
        c["usage"] = {"completion_tokens": completion}
    return c


def test_the_compiler_groups_count_and_sum_by_key_only() -> None:
    specs = {lim.id: lim.spec for lim in load_policy_set(GROUPS).limits}
    assert len({s.group for s in specs.values()}) == 1 and specs["tight"].group is not None
    shipped = load_policy_set(ROOT / "policies")
    by_id = {m.id: m.spec for m in shipped.compiled.measures} | {lim.id: lim.spec for lim in shipped.limits}
    day = by_id["requests_day"].group
    assert day is not None
    assert {i for i, s in by_id.items() if s.group == day} == {
        "requests_day",
        "probes_day",
        "disguises_day",
        "refused_probes_day",
        "harvest_day",
        "reasoning_requests_day",
        "daily_output_tokens",
        # other windows, the same key: their own counters in the same entry
        "requests_hour",
        "probes_hour",
        "young_harvest_hour",
        "fleet_strikes",
        "requests_per_minute",
    }
    assert by_id["card_harvest_day"].group not in (None, day)  # another key
    assert by_id["account_countries"].group is None  # distinct: a sketch of its own


def test_limits_sharing_key_and_window_through_policyctl_replay(tmp_path: Path, redis_server: Any) -> None:
    """Different maxima (one over, one not), a shadow one and a reconciled sum in one
    entry: each limit's own answer, and byte for byte Redis's (one key per limit)."""
    rows = [_ctx("r0", T0, "acct-1", completion=200)] + [_ctx(f"r{i}", T0 + i, "acct-1") for i in (1, 2, 3)]
    rows.append(_ctx("r4", T0 + 4, "acct-2"))
    traffic = tmp_path / "traffic.jsonl"
    traffic.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    mem = _replay(GROUPS, traffic, tmp_path / "memory.jsonl")
    assert [d["effect"] for d in mem] == ["allow", "allow", "throttle", "throttle", "allow"]
    lim = [d["limits"] for d in mem]
    assert [x["tight"]["used"] for x in lim] == [1, 2, 2, 2, 1]
    assert [x["tight"].get("over", False) for x in lim] == [False, False, True, True, False]
    # the refused requests charge none of the group's budgets; the looser limit is never over
    assert [x["loose"]["used"] for x in lim] == [1, 2, 2, 2, 1]
    assert not any(x["loose"].get("over", False) for x in lim)
    # the shadow limit (max 1) is over from the second request on, and never refuses
    assert [d.get("shadow_rules") for d in mem] == [None, ["watch"], ["watch"], ["watch"], None]
    assert mem[2]["rules"] == ["tight"]
    # r0's usage report (200 completion tokens) replaced its 1000-token estimate
    assert [x["tokens"]["used"] for x in lim] == [1000, 1200, 1200, 1200, 1000]
    red = _replay(GROUPS, traffic, tmp_path / "redis.jsonl", "--redis", redis_server.url)
    assert (tmp_path / "memory.jsonl").read_bytes() == (tmp_path / "redis.jsonl").read_bytes(), (mem, red)


def test_shipped_policy_decisions_are_the_same_on_every_store_layout(tmp_path: Path, redis_server: Any) -> None:
    """The shipped policy (groups of up to seven counters on one account) on simulated
    traffic: the memory store's grouped entries, Redis's key per limit and a local-first
    store (its memory keeps an entry per limit) give byte-identical decision files."""
    full = tmp_path / "day.jsonl"
    write(SimConfig(seed=3, hours=1), full, tmp_path / "truth.jsonl")
    traffic = tmp_path / "traffic.jsonl"
    traffic.write_text("".join(full.read_text(encoding="utf-8").splitlines(True)[:1500]), encoding="utf-8")
    outs = {}
    for name, extra in {
        "memory": [],
        "redis": ["--redis", redis_server.url],
        "batched": ["--redis", redis_server.url, "--store-sync", "batched:5ms"],
    }.items():
        outs[name] = tmp_path / f"{name}.jsonl"
        _replay(ROOT / "policies", traffic, outs[name], *extra)
    data = outs["memory"].read_bytes()
    assert data.count(b"\n") == 1500
    assert data == outs["redis"].read_bytes() == outs["batched"].read_bytes()
    decisions = [json.loads(x) for x in data.splitlines()]
    assert any(d["effect"] != "allow" for d in decisions)  # the limits and rules did fire


DAY = 86400.0
HOUR = 3600.0


def _group(*names: str, group: str | None = "\x1eaccount.id") -> dict[str, LimitSpec]:
    def spec(n: str) -> LimitSpec:
        if n.startswith("sum"):
            return LimitSpec(n, Kind.SUM, DAY, reconcilable=True, group=group)
        window = HOUR if n.startswith("hour") else DAY
        return LimitSpec(n, Kind.COUNT, window, group=group)

    return {n: spec(n) for n in names}


def test_reset_ttl_and_usage_reports_reach_one_limit_of_a_group() -> None:
    specs = _group("a", "b", "sum_c")
    s = MemoryStore()
    hits = [Hit(specs["a"], "k", 10), Hit(specs["b"], "k", 10), Hit(specs["sum_c"], "k", 1e6, amount=500.0)]
    s.acquire_sync(hits, T0, request_id="r1")
    s.acquire_sync(hits[:2], T0 + 1)
    assert len(s) == 1  # one entry holds the key's three counters

    def used(now: float) -> list[float]:
        return [r.used for r in s.preview_sync([Hit(sp, "k", 10, 0.0) for sp in specs.values()], now, admitted=False)]

    assert used(T0 + 2) == [2.0, 2.0, 500.0]
    assert asyncio.run(s.reset(specs["a"], "k")) is True
    assert asyncio.run(s.reset(specs["a"], "k")) is False
    assert used(T0 + 2) == [0.0, 2.0, 500.0]
    assert asyncio.run(s.ttl(specs["a"], "k", T0 + 2)) is None
    assert asyncio.run(s.ttl(specs["b"], "k", T0 + 2)) == pytest.approx((int(T0 // DAY) + 2) * DAY - (T0 + 2))
    assert s.reconcile_sync("r1", {"sum_c": 120.0}, T0 + 3) is True
    assert used(T0 + 3) == [0.0, 2.0, 120.0]
    for sp in specs.values():
        asyncio.run(s.reset(sp, "k"))
    assert len(s) == 0  # the last limit reset takes the entry with it


def test_time_going_back_in_a_group_is_answered_per_limit() -> None:
    """One limit of the group charged in the next bucket, then a request from the bucket
    before: that limit stays in its own bucket, the other rolls as an entry of its own would."""
    specs = _group("a", "b")
    grouped, alone = MemoryStore(), MemoryStore()
    own = {n: LimitSpec(n, Kind.COUNT, DAY) for n in specs}
    b1 = (int(T0 // DAY) + 1) * DAY
    for store, sp in ((grouped, specs), (alone, own)):
        store.acquire_sync([Hit(sp["a"], "k", 10), Hit(sp["b"], "k", 10)], b1 - 10)
        store.acquire_sync([Hit(sp["a"], "k", 10)], b1 + 10)
    later = grouped.acquire_sync([Hit(specs["a"], "k", 10), Hit(specs["b"], "k", 10)], b1 - 5)
    expect = alone.acquire_sync([Hit(own["a"], "k", 10), Hit(own["b"], "k", 10)], b1 - 5)
    assert later == expect
    assert [r.used for r in later][1] == 2.0


def test_a_group_of_windows_answers_as_an_entry_per_limit_does() -> None:
    """Hour and day counters and a day budget of one key in one entry, over two days of
    requests with maxima that refuse some: every answer equals an entry per limit's."""
    grouped_specs = _group("hour_a", "day_b", "sum_c")
    own_specs = _group("hour_a", "day_b", "sum_c", group=None)
    grouped, alone = MemoryStore(), MemoryStore()
    maxima = {"hour_a": 2.0, "day_b": 40.0, "sum_c": 9000.0}
    refused: set[str] = set()
    for i in range(400):
        now = T0 + i * 431.0
        key = f"k{i % 3}"
        answers = []
        for store, specs in ((grouped, grouped_specs), (alone, own_specs)):
            # the hourly one is a shadow (never refuses), so that the day's keep counting
            hits = [
                Hit(sp, key, maxima[n], 300.0 if n == "sum_c" else 1.0, None, n != "hour_a") for n, sp in specs.items()
            ]
            answers.append(store.acquire_sync(hits, now, request_id=f"r{i}"))
        assert answers[0] == answers[1], i
        refused.update(n for n, r in zip(grouped_specs, answers[0]) if r.over)
        if i % 5 == 0:
            assert grouped.reconcile_sync(f"r{i}", {"sum_c": 100.0}, now + 1) == alone.reconcile_sync(
                f"r{i}", {"sum_c": 100.0}, now + 1
            )
    assert len(grouped) == 3 and len(alone) == 9
    assert refused == {"hour_a", "sum_c"}  # over: the shadow, and the day's budget, which then refuses


def test_the_bound_counts_a_group_entry_once_and_evicts_it_whole() -> None:
    specs = _group("a", "b", "c")
    s = MemoryStore(max_keys=2)
    for i in range(3):
        s.acquire_sync([Hit(sp, f"k{i}", 10) for sp in specs.values()], T0 + i)
    assert len(s) == 2
    first = s.preview_sync([Hit(sp, "k0", 10, 0.0) for sp in specs.values()], T0 + 5, admitted=False)
    assert [r.used for r in first] == [0.0, 0.0, 0.0]
    last = s.preview_sync([Hit(sp, "k2", 10, 0.0) for sp in specs.values()], T0 + 5, admitted=False)
    assert [r.used for r in last] == [1.0, 1.0, 1.0]
