"""Prices as data and budgets in money: the `prices` table, `price()` and
`model_group()`, and decimal `sum`s that every store adds up exactly."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dsl.data import DataError, PriceTable, load
from dsl.schema import SCHEMA
from policy_engine.cli.main import app
from policy_engine.context import Context
from policy_engine.engine import Engine
from policy_engine.ingress.usage import TOKEN_FIELDS, Usage
from policy_engine.policyset import PolicySet, load_policy_set

PRICES = """\
model,group,input,cached_input,output,reasoning
# dollars per million tokens
frontier,,3.00,0.30,15.00,15.00
frontier-large,frontier,,,,
frontier-large-2026-06,frontier,,,20.00,
mini,,0.15,0.075,0.60,0.60
"""

POLICY = """\
data prices = prices("prices.csv")

limit month_dollars {
  key account.id, model_group(request.model) ?? request.model
  sum price(request.model, "output") * (request.max_tokens ?? 1000) ?? 0.01
  usage (price(usage.model, "output") ?? 0.00004) * (usage.completion_tokens ?? 0)
  window calendar month in "Europe/Paris"
  max 1000.00
  reason "monthly budget"
}
"""


def _table(tmp_path: Path, text: str) -> PriceTable:
    (tmp_path / "p.csv").write_text(text)
    table = load("prices", tmp_path, "p.csv").value
    assert isinstance(table, PriceTable)
    return table


def test_rows_take_their_groups_prices(tmp_path: Path) -> None:
    t = _table(tmp_path, PRICES)
    assert t.classes == ("input", "cached_input", "output", "reasoning")
    assert t.price("frontier-large", "cached_input") == 0.3 / 1e6
    assert t.price("frontier-large-2026-06", "output") == 20 / 1e6  # its own cell wins
    assert t.price("frontier-large-2026-06", "reasoning") == 15 / 1e6
    assert t.groups == {
        "frontier": "frontier",
        "frontier-large": "frontier",
        "frontier-large-2026-06": "frontier",
        "mini": "mini",
    }
    assert t.price("unknown", "input") is None and t.default is None
    t = _table(tmp_path, "model,output\n*,40\na,1\n")
    assert t.price("unknown", "output") == 40 / 1e6 and "*" not in t.groups


@pytest.mark.parametrize(
    "text,message,line",
    [
        ("", "empty price table", None),
        ("model,inpt\n", "unknown column `inpt`", 1),
        ("model,group\na,\n", "the header names no token class", 1),
        ("model,input,input\n", "the header names each column once", 1),
        ("model,input\na,1\na,2\n", "model `a` is listed twice (first on line 2)", 3),
        ("model,input\na,-1\n", "the input price `-1` is out of range", 2),
        ("model,input\na,1e7\n", "out of range", 2),
        ("model,input\na,NaN\n", "out of range", 2),
        ("model,input\na,cheap\n", "`cheap` is not a price", 2),
        ("model,group,input\na,b,1\n", "group `b` has no row of its own", 2),
        ("model,group,input\nb,c,1\nc,,2\na,b,\n", "group `b` belongs to a group itself", 4),
        ("model,group,input,output\ng,,1,\n", "model `g` gives no output price", 2),
        ("model,input\n,1\n", "a row needs a model", 2),
        ("model,input\na,1,2\n", "3 cells in a row of 2 columns", 2),
    ],
)
def test_bad_tables_name_the_line(tmp_path: Path, text: str, message: str, line: int | None) -> None:
    with pytest.raises(DataError) as e:
        _table(tmp_path, text)
    assert message in str(e.value) and e.value.line == line


def test_usage_readers_carry_every_usage_field() -> None:
    fields = [f.name for f in dataclasses.fields(Usage)]
    assert fields == list(SCHEMA["usage"]) and set(TOKEN_FIELDS) == set(fields) - {"model"}
    assert set(Usage(model="m").context_fields()) == {f"usage_{f}" for f in fields}


def _policy(tmp_path: Path) -> PolicySet:
    (tmp_path / "prices.csv").write_text(PRICES)
    (tmp_path / "main.policy").write_text(POLICY)
    return load_policy_set(tmp_path)


T0 = 1_767_225_600.0 + 10 * 86400  # 2026-01-11 00:00 UTC


def test_decimal_budgets_do_not_drift_on_any_store(store_env: Any, tmp_path: Path) -> None:
    """3,000 charges of 1/10 of a cent and 3,000 reports of 3 micro-dollars: floats would
    drift (the check below shows it); micro-units add up exactly, the same on every store."""
    assert sum([0.001] * 3000) != 3.0 and sum([0.000003] * 1000) != 0.003  # what floats do
    policy = _policy(tmp_path)

    async def body(store: Any) -> list[float]:
        # A generous deadline: a loaded machine must not turn a slow call into a fail-open one.
        engine = Engine(policy, store, store_deadline=5.0)
        used = []
        for i in range(3000):
            ctx = Context.from_dict(
                {"request": {"id": f"r{i}", "model": "mini", "max_tokens": 1000 + i % 7}, "account": {"id": "a"}}
            )
            # mini's output: 0.60 per million; 1000..1006 tokens: 0.0006 to 0.0006036 dollars
            d = await engine.decide(ctx, T0 + i)
            assert d.effect.label == "allow" and d.limits[0].error is None
            if i % 2 == 0:  # half settle at 5 tokens of frontier-large's 15.00: 0.000075
                assert await engine.report(f"r{i}", Usage(completion_tokens=5, model="frontier-large"), T0 + i)
            used.append(d.limits[0].used)
        return used

    used = store_env.run(body)
    # Each charge rounds once to the micro-dollar (601.8 -> 602); reports replace an estimate.
    expected_units = sum(round((1000 + i % 7) * 0.6) for i in range(3000))  # half to even, per charge
    last = used[-1]
    # The last decision saw every charge and every report but its own request's.
    expected_units += -sum(round((1000 + i % 7) * 0.6) - 75 for i in range(0, 2999, 2))
    assert last * 1_000_000 == expected_units, (last, expected_units)
    assert last == expected_units / 1_000_000  # shown in dollars, exactly the nearest double


def test_a_pooled_group_keeps_one_budget_across_model_versions(tmp_path: Path) -> None:
    from policy_engine.state.memory import MemoryStore

    engine = Engine(_policy(tmp_path), MemoryStore())
    keys = []
    for i, model in enumerate(["frontier-large", "frontier-large-2026-06", "frontier", "mini", "other"]):
        ctx = Context.from_dict(
            {"request": {"id": f"r{i}", "model": model, "max_tokens": 1000}, "account": {"id": "a"}}
        )
        d = engine.decide_sync(ctx, T0 + i)
        keys.append((d.limits[0].key, d.limits[0].used))
    assert keys == [
        ("a|frontier", 0.015),
        ("a|frontier", 0.035),  # the 2026-06 version prices output at 20.00
        ("a|frontier", 0.05),
        ("a|mini", 0.0006),
        ("a|other", 0.01),  # no price: the `??` fallback; keyed by its own name
    ]


def test_money_limits_set_no_token_headers_but_say_when_the_month_ends(tmp_path: Path) -> None:
    (tmp_path / "prices.csv").write_text(PRICES)
    (tmp_path / "main.policy").write_text(
        POLICY.replace("max 1000.00", "max 0.02").replace("reason", "throttle\n  reason")
    )
    (tmp_path / "r.json").write_text(
        json.dumps({"request": {"model": "frontier", "max_tokens": 1000, "ts": T0}, "account": {"id": "a"}})
    )
    res = CliRunner().invoke(app, ["eval", "--policies", str(tmp_path), "--request", str(tmp_path / "r.json")])
    d = json.loads(res.stdout)
    assert d["effect"] == "allow" and "headers" not in d  # dollars are neither requests nor tokens
    assert d["limits"][0]["used"] == 0.015 and d["limits"][0]["remaining"] == 0.005
    (tmp_path / "r.json").write_text(
        json.dumps({"request": {"model": "frontier", "max_tokens": 2000, "ts": T0}, "account": {"id": "a"}})
    )
    res = CliRunner().invoke(app, ["eval", "--policies", str(tmp_path), "--request", str(tmp_path / "r.json")])
    d = json.loads(res.stdout)
    # $0.03 does not fit under $0.02: retry when the Paris month ends, 2026-01-31T23:00Z
    assert d["effect"] == "throttle" and d["headers"] == {"retry-after": str(20 * 86400 + 23 * 3600)}
