"""The HTML replay report: self-contained, with the expected sections and numbers."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from policy_engine.policyset import load_policy_set
from policy_engine.replay import ReplayStats, replay_memory
from policy_engine.report import bucket_minutes, effect_buckets, render_report, rule_buckets
from policy_engine.state.memory import MemoryStore

SMALL = Path(__file__).parent / "fixtures" / "replay_small"
T0 = 1_764_300_000.0  # 2025-11-28 03:20 UTC


def req(rid: str, t: float, acct: str, asn: int = 64500, max_tokens: int = 1000) -> str:
    return json.dumps(
        {
            "request": {"id": rid, "ts": T0 + t, "model": "frontier-small", "prompt": "hi", "max_tokens": max_tokens},
            "account": {"id": acct, "tier": "pro"},
            "client": {"ip": "192.0.2.1", "asn": asn},
        }
    )


@pytest.fixture(scope="module")
def stats(tmp_path_factory: pytest.TempPathFactory) -> ReplayStats:
    # acct-x sends 6 requests in 6 seconds: rpm (max 4 a minute) throttles the last 2.
    # acct-y sends one long-output request two hours later (flagged) and an invalid line sits between.
    lines = [req(f"x{i}", i, "acct-x") for i in range(6)]
    lines.append('{"request": {"id": "bad", "ts": 1}, "accounts": {}}')
    lines.append(req("y1", 7200, "acct-y", asn=64501, max_tokens=9000))
    traffic = tmp_path_factory.mktemp("report") / "t.jsonl"
    traffic.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return replay_memory(load_policy_set(SMALL), traffic, io.BytesIO(), MemoryStore())


@pytest.fixture(scope="module")
def page(stats: ReplayStats) -> str:
    return render_report(stats, traffic="t.jsonl")


def test_page_is_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"\s(src|href)\s*=", page, re.I), "the page must not load or link anything"
    assert "<script" not in page.lower() and "@import" not in page and "url(" not in page
    assert "<style>" in page and "<svg" in page


def test_page_has_every_section(page: str) -> None:
    for sid in ("summary", "effects-over-time", "rules-over-time", "rules", "blocked", "limits", "invalid"):
        assert f'<section id="{sid}">' in page, sid
    for title in (
        "Decisions over time by effect",
        "Decisions over time by rule",
        "Rules and limits that fired",
        "Top blocked keys",
        "Limits closest to their maximum",
        "Invalid lines (1)",
    ):
        assert title in page, title


def _section(page: str, sid: str) -> str:
    start = page.index(f'<section id="{sid}">')
    return page[start : page.index("</section>", start)]


def test_page_numbers(stats: ReplayStats, page: str) -> None:
    assert stats.requests == 7 and stats.invalid == 1
    assert stats.effect_counts() == {"allow": 4, "flag": 1, "throttle": 2, "deny": 0}
    summary = _section(page, "summary")
    assert "<b>7</b><span>requests</span>" in summary
    assert "<b>2</b><span>throttle (28.6%)</span>" in summary and "<b>1</b><span>flag (14.3%)</span>" in summary
    blocked = _section(page, "blocked")
    assert "Requests denied or throttled (2 in all)" in blocked
    assert '<td class="">acct-x</td><td class="n">2</td>' in blocked
    assert '<td class="">64500</td><td class="n">2</td>' in blocked
    assert "Limit <code>rpm</code> (key <code>account.id</code>)" in blocked
    limits = _section(page, "limits")
    # rpm: 4 of 4 used at peak, over on 2 requests; tokens_hour: the 9000-token request of acct-y (45%).
    rows = {m.group(1): m.group(0) for m in re.finditer(r"<tr><td[^>]*><code>(\w+)</code>.*?</tr>", limits)}
    assert "100.0%" in rows["rpm"] and '<td class="n">4</td><td class="n">4</td>' in rows["rpm"]
    assert rows["rpm"].endswith('<td class="n">2</td></tr>')
    assert "45.0%" in rows["tokens_hour"] and "acct-y" in rows["tokens_hour"]
    assert "2.5%" in rows["accounts_per_asn"]  # one account per ASN, max 40
    invalid = _section(page, "invalid")
    assert '<td class="n">7</td>' in invalid and "$.accounts: unknown field" in invalid


def test_buckets_adapt_to_the_span() -> None:
    assert bucket_minutes(0, 59) == 1
    assert bucket_minutes(0, 24 * 60 - 1) == 15
    assert bucket_minutes(0, 7 * 24 * 60 - 1) == 120


def test_buckets_keep_every_request_and_the_gaps(stats: ReplayStats) -> None:
    size, rows = effect_buckets(stats)
    assert size == 2  # 121 minutes of simulated time in at most 96 bars
    assert sum(sum(v) for _, v in rows) == stats.requests
    assert len(rows) == 61 and sum(1 for _, v in rows if sum(v)) == 2
    series, rrows = rule_buckets(stats, size)
    assert series == ["rpm", "long_outputs"]
    assert [sum(v) for _, v in rrows if sum(v)] == [2, 1]
