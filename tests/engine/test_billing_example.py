"""examples/billing through the commands a user runs: it lints and is formatted,
its tests pass, and a simulated month replays with every budget kept, to the
micro-dollar, on the memory store and on Redis alike."""

from __future__ import annotations

import csv
import datetime as dt
import json
import subprocess
import sys
from collections import Counter, defaultdict
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from policy_engine.cli.main import app

EXAMPLE = Path(__file__).parents[2] / "examples" / "billing"
PARIS = ZoneInfo("Europe/Paris")
INTERNAL = {"eval-bot", "support-console"}
BUDGET = {"free": Decimal(2), "pro": Decimal(100)}


def policyctl(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, list(args))
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.stdout


def test_it_lints_clean_and_is_formatted() -> None:
    code, out = policyctl("lint", str(EXAMPLE))
    assert code == 0 and "0 errors, 0 warnings" in out, out
    code, out = policyctl("fmt", "--check", str(EXAMPLE))
    assert code == 0, out


def test_its_tests_pass() -> None:
    code, out = policyctl("test", str(EXAMPLE))
    assert code == 0, out
    assert "10 passed" in out
    for name in ("the budget comes back at midnight on the 1st", "the spend alert reads the month's settled spend"):
        assert f"PASS  {name}" in out


# --- a simulated month -------------------------------------------------------------------


def _prices() -> dict[str, dict[str, Decimal]]:
    rows = [r for r in csv.reader((EXAMPLE / "data" / "prices.csv").open()) if r and not r[0].startswith("#")]
    head, body = rows[0], [dict(zip(rows[0], r)) for r in rows[1:]]
    by_model = {r["model"]: r for r in body}
    out = {}
    for r in body:
        group = by_model[r["group"]] if r["group"] else r
        out[r["model"]] = {c: Decimal(r[c] or group[c]) / 1_000_000 for c in head[2:]}
    return out


PRICES = _prices()
GROUPS = {"frontier-large": "frontier", "frontier-large-2026-06": "frontier", "thinker-1": "thinker"}
GROUPS["thinker-1-preview"] = "thinker"


def _micro(v: Decimal) -> tuple[int, bool]:
    """(the cost in micro-dollars, whether it fell on half a micro-dollar: floats may round it either way)."""
    units = v * 1_000_000
    return int(units.quantize(Decimal(1), ROUND_HALF_EVEN)), units % 1 == Decimal("0.5")


def _reserved(req: dict[str, Any]) -> tuple[int, bool]:
    p = PRICES.get(req["model"], PRICES["*"])
    return _micro(p["input"] * req["prompt_tokens"] + p["output"] * req["max_tokens"])


def _settled(u: dict[str, Any], model: str) -> tuple[int, bool]:
    p = PRICES.get(u.get("model", model), PRICES["*"])
    cached, reasoning = u["cached_input_tokens"], u["reasoning_tokens"]
    cost = (
        p["input"] * (u["prompt_tokens"] - cached)
        + p["cached_input"] * cached
        + p["output"] * (u["completion_tokens"] - reasoning)
        + p["reasoning"] * reasoning
    )
    return _micro(cost)


def _month(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, PARIS).strftime("%Y-%m")


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("billing") / "month.jsonl"
    with out.open("w") as f:
        subprocess.run([sys.executable, str(EXAMPLE / "simulate_month.py")], stdout=f, check=True, timeout=60)
    return out


def _replay(month: Path, out: Path, *store: str) -> list[dict[str, Any]]:
    code, _ = policyctl("replay", "--policies", str(EXAMPLE), str(month), "--out", str(out), *store)
    assert code == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_a_simulated_month_keeps_every_budget_to_the_micro_dollar(month: Path, tmp_path: Path) -> None:
    traffic = [json.loads(line) for line in month.read_text().splitlines()]
    decisions = _replay(month, tmp_path / "decisions.jsonl")
    assert len(decisions) == len(traffic) > 2000
    spent: dict[tuple[str, str, str], int] = defaultdict(int)  # (account, family, month) -> micro-dollars
    ties: Counter[tuple[str, str, str]] = Counter()  # charges on half a micro-dollar so far
    effects: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
    checked = 0
    for line, d in zip(traffic, decisions):
        req, acct = line["request"], line["account"]
        key = (acct["id"], GROUPS.get(req["model"], req["model"]), _month(req["ts"]))
        effects[key][d["effect"]] += 1
        if acct["id"] in INTERNAL:
            assert d["effect"] in ("allow", "flag") and "limits" not in d  # exempt: no budget consulted
            spent[key] += _settled(line["usage"], req["model"])[0]
            continue
        state = d["limits"]["family_budget"]
        assert state["key"] == f"{key[0]}|{key[1]}" and state["max"] == BUDGET[acct["tier"]]
        reserved, tie = _reserved(req)
        if d["effect"] in ("allow", "flag"):
            # Used: the month's settled calls of this family, plus this call's reservation.
            want = spent[key] + reserved
            got = round(Decimal(str(state["used"])) * 1_000_000)
            assert abs(got - want) <= ties[key] + tie, (line, d, want)
            assert Decimal(str(state["used"])) * 1_000_000 == got  # whole micro-dollars, no float tail
            settled, tie2 = _settled(line["usage"], req["model"])
            spent[key] += settled
            ties[key] += tie2
            checked += 1
        elif "family_budget" in d["rules"]:
            assert (spent[key] + reserved) / 1e6 > BUDGET[acct["tier"]] - Decimal("0.000001") * (ties[key] + 1)
    assert checked > 1500
    for (account, family, m), micro in spent.items():  # a budget never spent beyond its maximum
        if account not in INTERNAL:
            assert micro <= BUDGET["pro" if account.startswith("pro") else "free"] * 1_000_000, (account, family, m)
    # Free accounts ran out in January and got their budget back on February 1st (Paris).
    jan, feb = effects[("free-3", "frontier", "2026-01")], effects[("free-3", "frontier", "2026-02")]
    assert jan["throttle"] > 50 and jan["allow"] > 0 and feb["allow"] > 0
    assert sum(v for (a, _, m), v in spent.items() if a == "eval-bot" and m == "2026-01") > 100 * 1_000_000
    # The office-hours rule kept the free night owl off the reasoning models by day.
    owl = [d for line, d in zip(traffic, decisions) if line["account"]["id"] == "free-night-owl"]
    assert any("reasoning_in_office_hours" in d["rules"] for d in owl)


def test_the_month_replays_identically_on_redis(month: Path, tmp_path: Path, redis_server: Any) -> None:
    memory = (tmp_path / "memory.jsonl", tmp_path / "redis.jsonl")
    a = _replay(month, memory[0])
    b = _replay(month, memory[1], "--store", redis_server.url)
    assert a == b
