"""policyctl calibrate, through the CLI: per-key peaks of count, sum and distinct
limits observed with nothing enforced, warnings for a maximum inside the body
of the traffic, suggestions that hold once enforced, the JSON shape, the HTML
report and bad input."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from policy_engine.calibrate import literal, readable_ceiling, value_above

FIXTURE = Path(__file__).parent / "fixtures" / "calibrate"
MEASURES = Path(__file__).parent / "fixtures" / "calibrate_measures"
POLICYCTL = Path(sys.executable).with_name("policyctl")
T0 = 1_764_288_000.0  # a multiple of one hour: every request below falls in one bucket of each window


def policyctl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(POLICYCTL), *map(str, args)], capture_output=True, text=True, timeout=300)


def ctx(
    rid: str,
    dt: float,
    acct: str,
    *,
    tier: str = "free",
    asn: int = 64500,
    model: str = "m1",
    max_tokens: int | None = None,
    prompt: str = "hello",
    card: str | None = None,
) -> dict[str, Any]:
    request: dict[str, Any] = {"id": rid, "ts": T0 + dt, "model": model, "prompt": prompt}
    if max_tokens is not None:
        request["max_tokens"] = max_tokens
    return {
        "request": request,
        "account": {"id": acct, "tier": tier, "payment_fingerprint": card},
        "api_key": {"id": f"key-{acct}", "scopes": ["inference"]},
        "client": {"ip": "192.0.2.1", "country": "US", "asn": asn},
    }


def write_jsonl(path: Path, items: list[Any]) -> Path:
    path.write_text("".join((i if isinstance(i, str) else json.dumps(i)) + "\n" for i in items), encoding="utf-8")
    return path


TINY = [
    ctx("r1", 1, "acct-a", tier="pro", max_tokens=1000),
    ctx("r2", 2, "acct-a", tier="pro", max_tokens=2000),
    ctx("r3", 3, "acct-a", tier="pro", model="m2", max_tokens=500),
    ctx("r4", 4, "acct-a", tier="pro", model="m3", max_tokens=1500),  # 4th request in the minute: rpm max 3
    ctx("r5", 5, "acct-b", max_tokens=3000),
    ctx("r6", 6, "acct-b", max_tokens=2000),  # 5,000 tokens: the free max is 4,000
    ctx("r7", 7, "acct-c", model="blocked", max_tokens=9000),  # refused by a rule: charges no budget
    ctx("r8", 8, "acct-c", asn=64501, max_tokens=100),
    ctx("r9", 9, "acct-d", asn=64501),  # no max_tokens: the policy's 1024
]


TINY_MEASURES = [
    ctx("m1", 1, "acct-a", card="pf-1", prompt="explain it step by step", max_tokens=1000),
    ctx("m2", 2, "acct-b", card="pf-1", max_tokens=2000),
    ctx("m3", 3, "acct-c", card="pf-1", prompt="Step by step, please", max_tokens=500),  # 3rd account: denied
    ctx("m4", 4, "acct-a", card="pf-1", prompt="step by step again", max_tokens=4000),  # denied, still counted
    ctx("m5", 5, "acct-d", card="pf-2", prompt="step by step"),
]


def peaks_by_group(report: dict[str, Any], item: str) -> dict[float, dict[str, float]]:
    (entry,) = [i for i in report["items"] if i["item"] == item]
    return {g["threshold"]: {t["key"]: t["peak"] for t in g["top_keys"]} for g in entry["groups"]}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("calibrate-tiny") / "tiny.jsonl", TINY)


def test_peaks_per_key_match_a_hand_computation(tiny: Path) -> None:
    run = policyctl("calibrate", "--policies", FIXTURE, tiny, "--format", "json", "--quiet")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["requests"] == 9 and report["refused_by_rules"] == 1
    # count: acct-a sent 4 requests in the minute; enforced, the 4th would have been throttled at 3.
    assert peaks_by_group(report, "rpm") == {3: {"acct-a": 4, "acct-b": 2, "acct-c": 1, "acct-d": 1}}
    # sum, per tier: pro's max is 20k, free's 4000; acct-c's refused 9000 is not charged.
    assert peaks_by_group(report, "tokens_hour") == {
        4000: {"acct-b": 5000, "acct-c": 100, "acct-d": 1024},
        20000: {"acct-a": 5000},
    }
    # distinct, record attempts: the refused request of acct-c still counts on its network.
    assert peaks_by_group(report, "accounts_per_asn") == {2: {"64500": 3, "64501": 2}}
    assert peaks_by_group(report, "models_per_account") == {5: {"acct-a": 3, "acct-b": 1, "acct-c": 1, "acct-d": 1}}

    rpm = next(i for i in report["items"] if i["item"] == "rpm")
    (g,) = rpm["groups"]
    assert (g["keys"], g["over"], g["near"]) == (4, 1, 0)
    assert g["peaks"] == {"max": 4, "p99.9": 4, "p99": 4, "p90": 4, "median": 1}
    assert g["suggested"] == 4 and g["suggested_over"] == 0
    tokens = next(i for i in report["items"] if i["item"] == "tokens_hour")
    assert tokens["keys"] == 4 and tokens["peaks"]["max"] == 5000
    free = next(g for g in tokens["groups"] if g["threshold"] == 4000)
    assert (free["over"], free["near"], free["suggested_literal"]) == (1, 0, "5000")
    # a flag limit never warns; the throttle and deny ones over their maximum do.
    assert [w.split(":")[0] for w in report["warnings"]] == [
        "rpm",
        "rpm",
        "tokens_hour",
        "tokens_hour",
        "accounts_per_asn",
        "accounts_per_asn",
    ]

    # What an enforced replay reports for the same traffic is capped by the policy.
    decisions = tiny.with_name("decisions.jsonl")
    assert policyctl("replay", "-p", FIXTURE, tiny, "-o", decisions, "-q").returncode == 0
    used = [json.loads(x)["limits"]["rpm"]["used"] for x in decisions.read_text(encoding="utf-8").splitlines()[:4]]
    assert used == [1, 2, 3, 3]


def test_measures_peaks_and_the_constants_rules_compare_them_with(tmp_path: Path) -> None:
    traffic = write_jsonl(tmp_path / "measures.jsonl", TINY_MEASURES)
    run = policyctl("calibrate", "--policies", MEASURES, traffic, "--format", "json", "-q")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["refused_by_rules"] == 2
    items = {i["item"]: i for i in report["items"]}
    assert [i["kind"] for i in report["items"]] == ["limit", "measure", "measure", "measure"]
    # Measures record every request they apply to, refused or not; a read (acct-b's prompt) adds no key.
    assert peaks_by_group(report, "card_accounts")[None] == {"pf-1": 3, "pf-2": 1}
    assert peaks_by_group(report, "step_by_step")[None] == {"acct-a": 2, "acct-c": 1, "acct-d": 1}
    assert peaks_by_group(report, "tokens_day")[None] == {"acct-a": 5000, "acct-b": 2000, "acct-c": 500, "acct-d": 1024}

    def thresholds(name: str) -> list[tuple[Any, ...]]:
        return [
            (g["source"], g["op"], g["threshold"], g["alone"], g["blocking"], g["over"]) for g in items[name]["groups"]
        ]

    assert thresholds("card_accounts") == [
        ("observed", None, None, True, False, 0),
        ("rule shared_card", ">", 2, True, True, 1),
    ]  # through a `let`
    assert thresholds("step_by_step") == [
        ("observed", None, None, True, False, 0),
        ("rule step_by_step_stream", ">=", 3, True, True, 0),
    ]  # 3 <= m
    assert thresholds("tokens_day") == [
        ("observed", None, None, True, False, 0),
        ("rule young_heavy", ">", 50_000, False, True, 0),
        ("rule heavy", ">=", 10_000, True, False, 0),
    ]
    assert items["tokens_day"]["not_reported"] == ["limit rpm"]
    assert items["card_accounts"]["warnings"] == [
        "rule shared_card: measures.card_accounts > 2 would refuse 1 of 2 keys (50.0%), more than --refuse-share 0.001",
        "rule shared_card: measures.card_accounts > 2 is below the p99 of per-key peaks (3); suggested 3",
    ]
    # `>=` fires at the threshold itself: the suggestion goes above the largest peak.
    step = items["step_by_step"]["groups"][1]
    assert (step["suggested"], step["suggested_over"]) == (3, 0)
    assert [g["threshold"] for g in items["rpm"]["groups"]] == [10]  # a maximum that reads a measure

    text = re.sub(r"\n +", " ", policyctl("calibrate", "--policies", MEASURES, traffic, "-q").stdout)  # unwrap
    assert "measure tokens_day: sum per account.id, window 1d" in text
    assert "> 50k: rule young_heavy (deny, with other conditions): `measures.tokens_day > 50k`" in text
    assert "also read by limit rpm: not a rule comparing it with a constant, not reported" in text


def test_text_output_names_the_mode_fits_80_columns_and_strict_exits_1(tiny: Path, tmp_path: Path) -> None:
    long_name = tmp_path / "policy"
    long_name.mkdir()
    text = (FIXTURE / "limits.policy").read_text(encoding="utf-8")
    (long_name / "limits.policy").write_text(
        text.replace("limit rpm {", "limit requests_per_minute_for_every_account_of_every_tier_with_a_long_name {"),
        encoding="utf-8",
    )
    truth = write_jsonl(
        tmp_path / "truth.jsonl",
        [{"request_id": c["request"]["id"], "is_campaign": c["account"]["id"] in ("acct-b", "acct-c")} for c in TINY],
    )
    run = policyctl("calibrate", "-p", long_name, tiny, "--truth", truth, "-q")
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "Limits were observed, not enforced" in out
    assert all(len(line) <= 80 for line in out.splitlines()), max(out.splitlines(), key=len)
    assert "requests_per_minute_for_every_account_of_every_tier_with_a_long_name" in out.replace("\n", "")
    assert re.search(r"benign\s+campaign\s+mixed", out)
    assert "warning: accounts_per_asn: max 2 would refuse 1 of 2 keys (50.0%, 1 mixed)" in out.replace("\n    ", " ")
    strict = policyctl("calibrate", "-p", long_name, tiny, "-q", "--strict")
    assert strict.returncode == 1 and "6 warnings" in strict.stdout

    relaxed = tmp_path / "relaxed"
    shutil.copytree(FIXTURE, relaxed)
    p = relaxed / "limits.policy"
    p.write_text(re.sub(r"\bmax (if .*|\d+)\n", "max 1M\n", p.read_text(encoding="utf-8")), encoding="utf-8")
    calm = policyctl("calibrate", "-p", relaxed, tiny, "-q", "--strict")
    assert calm.returncode == 0, calm.stdout + calm.stderr
    assert "No warnings" in calm.stdout


def test_json_is_stable(tiny: Path, tmp_path: Path) -> None:
    out1, out2 = tmp_path / "a.json", tmp_path / "b.json"
    for out in (out1, out2):
        run = policyctl("calibrate", "-p", FIXTURE, tiny, "--format", "json", "--out", out, "-q")
        assert run.returncode == 0 and run.stdout == "", run.stderr
    assert out1.read_bytes() == out2.read_bytes()
    report = json.loads(out1.read_text(encoding="utf-8"))
    assert sorted(report) == sorted(
        [
            "policy",
            "traffic",
            "mode",
            "requests",
            "invalid_lines",
            "out_of_order",
            "usage_reconciled",
            "refused_by_rules",
            "effects",
            "first_ts",
            "last_ts",
            "refuse_share",
            "truth",
            "untracked_observations",
            "items",
            "warnings",
        ]
    )
    assert report["mode"] == "limits observed, not enforced; stateless rules decided as usual"
    assert [i["item"] for i in report["items"]] == ["rpm", "tokens_hour", "accounts_per_asn", "models_per_account"]
    for item in report["items"]:
        assert sorted(item) == sorted(
            [
                "item",
                "kind",
                "measure",
                "key",
                "window_seconds",
                "effect",
                "shadow",
                "record",
                "keys",
                "untracked_observations",
                "peaks",
                "groups",
                "warnings",
                "not_reported",
            ]
        )
        assert sorted(item["peaks"]) == sorted(["max", "p99.9", "p99", "p90", "median"])
        for g in item["groups"]:
            assert sorted(g) == sorted(
                [
                    "threshold",
                    "op",
                    "source",
                    "blocking",
                    "alone",
                    "keys",
                    "peaks",
                    "over",
                    "over_share",
                    "near",
                    "near_share",
                    "suggested",
                    "suggested_literal",
                    "suggested_over",
                    "suggested_over_share",
                    "refuse_share",
                    "warnings",
                    "top_keys",
                ]
            )
            assert (g["op"], g["source"], g["alone"]) == (">", "max", True)
    assert {
        i["item"]: (i["kind"], i["measure"], i["key"], i["window_seconds"], i["effect"], i["record"])
        for i in report["items"]
    } == {
        "rpm": ("limit", "count", "account.id", 60, "throttle", "admitted"),
        "tokens_hour": ("limit", "sum", "account.id", 3600, "throttle", "admitted"),
        "accounts_per_asn": ("limit", "distinct", "client.asn", 3600, "deny", "attempts"),
        "models_per_account": ("limit", "distinct", "account.id", 3600, "flag", "admitted"),
    }


def test_bad_input_exits_2_naming_file_and_line(tiny: Path, tmp_path: Path) -> None:
    lines = tiny.read_text(encoding="utf-8").splitlines()
    bad = write_jsonl(tmp_path / "bad.jsonl", lines[:2] + ['{"request": {"id": "x", "ts": "soon"}}'] + lines[2:])
    run = policyctl("calibrate", "-p", FIXTURE, bad, "-q")
    assert run.returncode == 2 and run.stdout == ""
    assert f"error: {bad}:3: invalid request context: $.request.ts" in run.stderr
    skipped = policyctl("calibrate", "-p", FIXTURE, bad, "-q", "--skip-invalid", "--format", "json")
    assert skipped.returncode == 0, skipped.stderr
    assert f"{bad}:3: invalid request context" in skipped.stderr
    assert json.loads(skipped.stdout)["invalid_lines"] == 1

    truth = write_jsonl(tmp_path / "truth.jsonl", [{"request_id": f"r{i}", "is_campaign": False} for i in range(1, 5)])
    run = policyctl("calibrate", "-p", FIXTURE, tiny, "--truth", truth, "-q")
    assert run.returncode == 2 and f"error: {tiny}:5: request 'r5' has no line in {truth}" in run.stderr
    broken = write_jsonl(tmp_path / "broken.jsonl", ['{"request_id": "r1", "is_campaign": false}', "{not json"])
    run = policyctl("calibrate", "-p", FIXTURE, tiny, "--truth", broken, "-q")
    assert run.returncode == 2 and f"error: {broken}:2: not JSON" in run.stderr
    run = policyctl("calibrate", "-p", FIXTURE, tiny, "--refuse-share", "1.5")
    assert run.returncode == 2 and "--refuse-share 1.5" in run.stderr
    run = policyctl("calibrate", "-p", FIXTURE, tmp_path / "missing.jsonl")
    assert run.returncode == 2 and "missing.jsonl: no such file" in run.stderr


VARIED_POLICY = """
policy "varied" {}

limit per_size {
  key account.id
  count
  window 1h
  max request.max_tokens ?? 1
  throttle
  reason "one request per token asked for"
}

limit never {
  key account.id
  count
  window 1h
  max 1
  when request.model == "none"
  throttle
  reason "never applies"
}
"""


def test_a_maximum_with_many_values_is_reported_as_ratios_and_a_limit_never_applied_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "varied"
    folder.mkdir()
    (folder / "limits.policy").write_text(VARIED_POLICY, encoding="utf-8")
    # 18 distinct maxima: the first 16 get a group each, the rest are kept as peak/max per key.
    items = [ctx(f"r{m}", m, f"acct-{m}", max_tokens=m) for m in range(1, 19)]
    items += [ctx(f"s{i}", 20 + i, "acct-heavy", max_tokens=18) for i in range(36)]  # 36 requests, max 18: 2x
    traffic = write_jsonl(tmp_path / "varied.jsonl", items)
    run = policyctl("calibrate", "-p", folder, traffic, "--format", "json", "-q")
    assert run.returncode == 0, run.stderr
    per_size, never = json.loads(run.stdout)["items"]
    assert [g["threshold"] for g in per_size["groups"]] == [*range(1, 17), None]
    varied = per_size["groups"][-1]
    assert varied["values"] == "peak/max" and varied["keys"] == 3
    assert {t["key"]: t["peak"] for t in varied["top_keys"]} == {
        "acct-17": round(1 / 17, 4),
        "acct-18": round(1 / 18, 4),
        "acct-heavy": 2,
    }
    assert varied["over"] == 1 and varied["suggested"] == 2  # scale the maximum by 2 to admit everyone
    assert per_size["keys"] == 19 and per_size["peaks"]["max"] == 36
    assert never["keys"] == 0 and never["groups"] == [] and never["peaks"] is None
    text = policyctl("calibrate", "-p", folder, traffic, "-q").stdout
    assert "max varies" in text and "x2" in text and "never applied: no request reached it" in text
    assert "per_size: its varying maximum would refuse 1 of 3 keys" in re.sub(r"\n +", " ", text)


# ------------------------------------------------- simulated traffic, enforced
@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("calibrate-sim")
    traffic, truth = d / "traffic.jsonl", d / "truth.jsonl"
    run = policyctl("simulate", "--scale", "0.05", "--hours", "6", "--seed", "5", "--out", traffic, "--truth", truth)
    assert run.returncode == 0, run.stderr
    return traffic, truth


SHARE = 0.01


def _apply_suggestions(report: dict[str, Any], folder: Path) -> dict[str, dict[float, float]]:
    """Rewrite every blocking limit's maximum in `folder` to its suggestion (per tier for tokens_hour)."""
    sug = {i["item"]: {g["threshold"]: g["suggested"] for g in i["groups"]} for i in report["items"]}
    p = folder / "limits.policy"
    text = p.read_text(encoding="utf-8")
    tok = sug["tokens_hour"]
    text = text.replace(
        'max if account.tier == "pro" then 20k else 4000',
        f'max if account.tier == "pro" then {literal(tok[20000])} else {literal(tok[4000])}',
    )
    for name in ("rpm", "accounts_per_asn"):
        (current,) = sug[name]
        text = re.sub(
            rf"(limit {name} {{[^}}]*?\n  max ){literal(current)}\n",
            lambda m, s=sug[name][current]: m.group(1) + literal(s) + "\n",
            text,
        )  # type: ignore[misc]
    p.write_text(text, encoding="utf-8")
    return sug


def test_suggestions_refuse_at_most_the_chosen_share_once_enforced(sim: tuple[Path, Path], tmp_path: Path) -> None:
    traffic, truth = sim
    run = policyctl(
        "calibrate",
        "-p",
        FIXTURE,
        traffic,
        "--refuse-share",
        str(SHARE),
        "--format",
        "json",
        "--truth",
        truth,
        "-q",
        "--strict",
    )
    assert run.returncode == 1, run.stderr  # the fixture's maxima sit inside the body of this traffic
    report = json.loads(run.stdout)
    assert any("below the p99 of per-key peaks" in w for w in report["warnings"])
    assert any("more than --refuse-share" in w for w in report["warnings"])
    # The suggestions must be tight enough to refuse someone, or the check below proves nothing.
    blocking = [i for i in report["items"] if i["effect"] in ("throttle", "deny")]
    assert sum(g["suggested_over"] for i in blocking for g in i["groups"]) > 0

    tuned = tmp_path / "tuned"
    shutil.copytree(FIXTURE, tuned)
    _apply_suggestions(report, tuned)
    assert policyctl("lint", "--strict", tuned).returncode == 0
    decisions = tmp_path / "decisions.jsonl"
    rep = policyctl("replay", "-p", tuned, traffic, "-o", decisions, "-q")
    assert rep.returncode == 0, rep.stderr
    refused: dict[str, set[str]] = {i["item"]: set() for i in blocking}
    for line in decisions.read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        if "blocked_model" in d["rules"]:
            continue  # refused by a rule already: the limit's maximum changes nothing
        for name, lim in d.get("limits", {}).items():
            if name in refused and lim.get("over") and name in d["rules"]:
                refused[name].add(lim["key"])
    for item in blocking:
        allowed = sum(math.floor(SHARE * g["keys"] + 1e-9) for g in item["groups"])
        predicted = sum(g["suggested_over"] for g in item["groups"])
        assert len(refused[item["item"]]) <= predicted <= allowed, (item["item"], refused[item["item"]])
    assert sum(map(len, refused.values())) > 0  # the tuned maxima do refuse, within the share

    again = policyctl("calibrate", "-p", tuned, traffic, "--refuse-share", str(SHARE), "--strict", "-q")
    assert again.returncode == 0, again.stdout  # tuned: no maximum inside the body any more


def test_measure_suggestions_refuse_at_most_the_chosen_share_once_enforced(
    sim: tuple[Path, Path], tmp_path: Path
) -> None:
    traffic, _ = sim
    run = policyctl("calibrate", "-p", MEASURES, traffic, "--refuse-share", str(SHARE), "--format", "json", "-q")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    items = {i["item"]: i for i in report["items"]}
    rules = {"shared_card": "card_accounts", "step_by_step_stream": "step_by_step", "young_heavy": "tokens_day"}
    groups = {rule: next(g for g in items[m]["groups"] if g["source"] == f"rule {rule}") for rule, m in rules.items()}
    assert all(g["warnings"] for g in groups.values())  # each threshold sits inside the body of this traffic
    assert sum(g["suggested_over"] for g in groups.values()) > 0

    tuned = tmp_path / "tuned"
    shutil.copytree(MEASURES, tuned)
    p = tuned / "measures.policy"
    text = p.read_text(encoding="utf-8")
    for old, new in (
        ("measures.card_accounts > 2", f"measures.card_accounts > {groups['shared_card']['suggested_literal']}"),
        (
            "3 <= measures.step_by_step",
            f"{groups['step_by_step_stream']['suggested_literal']} <= measures.step_by_step",
        ),
        ("measures.tokens_day > 50k", f"measures.tokens_day > {groups['young_heavy']['suggested_literal']}"),
    ):
        assert old in text
        text = text.replace(old, new)
    p.write_text(text, encoding="utf-8")
    decisions = tmp_path / "decisions.jsonl"
    assert policyctl("replay", "-p", tuned, traffic, "-o", decisions, "-q").returncode == 0
    fired: dict[str, set[str]] = {rule: set() for rule in rules}
    for line in decisions.read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        for rule, m in rules.items():
            if rule in d["rules"]:
                fired[rule].add(d["measures"][m]["key"])
    for rule, g in groups.items():
        assert len(fired[rule]) <= g["suggested_over"] <= math.floor(SHARE * g["keys"] + 1e-9), (rule, fired[rule])
    assert sum(map(len, fired.values())) > 0


def test_html_report_is_self_contained_with_a_histogram_per_maximum(sim: tuple[Path, Path], tmp_path: Path) -> None:
    traffic, _ = sim
    report = tmp_path / "calibration.html"
    run = policyctl("calibrate", "-p", FIXTURE, traffic, "--report", report, "-q", "--out", tmp_path / "c.txt")
    assert run.returncode == 0, run.stderr
    html = report.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html and "http" not in html
    assert "Limits were observed, not enforced" in html
    # one histogram per (limit, maximum): rpm, tokens_hour (two tiers), accounts_per_asn, models_per_account
    assert html.count("<svg") == 5
    assert html.count('class="maxline"') == 4 and html.count('class="flagline"') == 1  # models_per_account: flag
    assert 'class="over"' in html


# ---------------------------------------------------------------- arithmetic
def test_quantiles_and_readable_ceilings() -> None:
    values = [float(v) for v in range(1, 1001)]
    assert value_above(values, 0.0) == 1000 and value_above(values, 0.001) == 999
    assert value_above(values, 0.01) == 990 and value_above(values, 0.5) == 500
    assert value_above([5.0], 0.5) == 5
    assert readable_ceiling(1234, integral=True) == 1300
    assert readable_ceiling(7.3, integral=True) == 8 and readable_ceiling(7.31, integral=False) == 7.4
    assert readable_ceiling(149_001, integral=False) == 150_000 and readable_ceiling(0, integral=True) == 0
    assert readable_ceiling(0.0123, integral=False) == 0.013
    for v in (0.7, 3.0, 99.5, 100.0, 101.0, 2.5e6, 123_456.7):
        c = readable_ceiling(v, integral=False)
        assert c >= v and float(f"{c:.2g}") == c  # two significant digits
    assert [literal(v) for v in (1300, 160_000, 3_100_000, 2e9, 7.4, 12_345, 12_500)] == [
        "1300",
        "160k",
        "3.1M",
        "2G",
        "7.4",
        "12345",
        "12.5k",
    ]
