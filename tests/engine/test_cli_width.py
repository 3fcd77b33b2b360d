"""CI logs are 80 columns wide: help and tables fit them or wrap, never cut."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from policy_engine.cli.main import SHORT_HELP, app

COMMANDS = sorted(SHORT_HELP)


def invoke(args: list[str], columns: int) -> str:
    res = CliRunner().invoke(app, args, terminal_width=columns, env={"COLUMNS": str(columns)})
    assert res.exit_code == 0, res.output
    return res.output


def assert_fits(text: str, columns: int) -> None:
    long = [line for line in text.splitlines() if len(line.rstrip()) > columns]
    assert not long, f"lines wider than {columns} columns:\n" + "\n".join(long)
    assert "…" not in text, text


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_fits_80_columns(command: str) -> None:
    out = invoke([command, "--help"] if command else ["--help"], 80)
    assert_fits(out, 80)


GROUPS = {"client": ["check", "report", "status"], "admin": ["state", "reset", "dry-run"]}


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_command_groups_list_each_summary_whole_and_their_commands_fit(group: str) -> None:
    out = invoke([group, "--help"], 80)
    assert_fits(out, 80)
    listed = out.split("Commands:\n", 1)[1].splitlines()
    assert [line.split()[0] for line in listed if line.strip()] == GROUPS[group]
    assert not [line for line in listed if line.rstrip().endswith("...")], out  # click cuts with "..."
    for command in GROUPS[group]:
        assert_fits(invoke([group, command, "--help"], 80), 80)


def test_the_command_list_shows_each_summary_whole() -> None:
    out = invoke(["--help"], 80)
    for name, summary in SHORT_HELP.items():
        assert f"  {name:<10} {summary}\n" in out


def test_serve_help_names_every_option_whole() -> None:
    out = invoke(["serve", "--help"], 80)
    assert "--decision-log-prompts / --no-decision-log-prompts" in out
    assert "--store-deadline-ms" in out and "debug|info|warning|error" in out


POPULATIONS = [
    ("security_researcher", None),
    ("coding_agent", None),
    ("distill_agentic", "distill-agentic"),
    ("guardrail_probe", "guardrail-probe"),
]


def _score_inputs(d: Path) -> list[str]:
    t, g, dec = d / "t.jsonl", d / "g.jsonl", d / "d.jsonl"
    rows = [
        (f"r{i}-{j}", pop, camp, f"acct-{i}-{j % 3}", "deny" if j == 4 else "allow")
        for i, (pop, camp) in enumerate(POPULATIONS)
        for j in range(5)
    ]
    t.write_text(
        "".join(
            json.dumps({"request": {"id": r}, "account": {"id": a}, "usage": {"completion_tokens": 1_234_567}}) + "\n"
            for r, _, _, a, _ in rows
        )
    )
    g.write_text(
        "".join(
            json.dumps({"request_id": r, "population": p, "campaign": c, "account": a, "is_campaign": c is not None})
            + "\n"
            for r, p, c, a, _ in rows
        )
    )
    dec.write_text("".join(json.dumps({"request_id": r, "effect": e}) + "\n" for r, _, _, _, e in rows))
    return ["score", "--traffic", str(t), "--truth", str(g), "--decisions", str(dec)]


def test_score_tables_fit_80_columns_by_splitting(tmp_path: Path) -> None:
    args = _score_inputs(tmp_path)
    narrow = invoke(args, 80)
    assert_fits(narrow, 80)
    assert "Replay score per population: volume" in narrow and "Replay score per population: outcome" in narrow
    for pop, camp in POPULATIONS:
        assert f"│ {pop} " in narrow
        if camp is not None:
            assert f"│ {camp} " in narrow
    assert "│ benign   │" in narrow and "│ campaign │" in narrow
    wide = invoke(args, 160)
    assert_fits(wide, 160)
    assert "Replay score per population " in wide and ": volume" not in wide
