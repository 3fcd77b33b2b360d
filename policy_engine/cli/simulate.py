"""`policyctl simulate` and `policyctl score`: make a day of traffic, score a replay.

policyctl simulate --out TRAFFIC.jsonl --truth TRUTH.jsonl [--seed N] [--scale F] [--hours H]
policyctl simulate --describe [--seed N] [--scale F] [--hours H]
policyctl simulate --world blind --out TRAFFIC.jsonl --truth TRUTH.jsonl [--seed N] [--describe]
policyctl replay --policies DIR TRAFFIC.jsonl --out DECISIONS.jsonl
policyctl score --traffic TRAFFIC.jsonl --truth TRUTH.jsonl --decisions DECISIONS.jsonl [--json]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from policy_engine.cli.common import EXIT_USAGE, err
from policy_engine.simulate import generator
from policy_engine.simulate.generator import GenerateSummary, SimConfig, write
from policy_engine.simulate.scorer import ScoreError, render, score


def _fail(msg: str) -> typer.Exit:
    err(f"error: {msg}")
    return typer.Exit(EXIT_USAGE)


def parse_sets(items: list[str]) -> dict[str, dict[str, float]]:
    """`POP.FIELD=VALUE` items (e.g. `distill_fast.accounts=8000`) as a nested dict."""
    out: dict[str, dict[str, float]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        pop, dot, fld = key.strip().partition(".")
        if not (eq and dot and pop and fld):
            raise ValueError(f"--set {item!r}: expected POPULATION.FIELD=VALUE, e.g. distill_fast.accounts=8000")
        try:
            out.setdefault(pop, {})[fld] = float(value)
        except ValueError:
            raise ValueError(f"--set {item!r}: {value!r} is not a number") from None
    return out


def simulate_cmd(
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="where to write the request contexts (JSON lines)")
    ] = None,
    truth: Annotated[Path | None, typer.Option("--truth", help="where to write the ground truth (JSON lines)")] = None,
    seed: Annotated[
        int, typer.Option("--seed", help="random seed; same seed, same files. 1-99: tuning; 1000 and above: held out")
    ] = 1,
    scale: Annotated[float, typer.Option("--scale", help="multiply accounts and requests")] = 1.0,
    hours: Annotated[float, typer.Option("--hours", help="simulated hours (request volume follows)")] = 24.0,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="override a population: POP.accounts=N or POP.share=F (repeatable)"),
    ] = None,
    world: Annotated[str, typer.Option("--world", help="default, or blind (docs/worlds.md)")] = "default",
    describe: Annotated[
        bool,
        typer.Option(
            "--describe", help="print the world the seed draws (every population's parameters) as JSON; write nothing"
        ),
    ] = False,
) -> None:
    """Generate a seeded, simulated day of benign and campaign traffic.

    The seed draws the whole world: every population's size and behaviour
    (--describe prints them). Seeds 1-99 are for tuning policies; seeds 1000 and
    above are held out and only scored at the end.
    """
    if world not in ("default", "blind"):
        raise _fail(f"--world {world!r}: expected default or blind")
    if world == "blind":
        _simulate_blind(out, truth, seed, scale, hours, set_ or [], describe)
        return
    try:
        config = SimConfig(seed=seed, scale=scale, hours=hours).with_overrides(parse_sets(set_ or []))
    except ValueError as e:
        raise _fail(str(e)) from None
    if describe:
        typer.echo(json.dumps(generator.describe(config), indent=2))
        return
    summary = write(config, *_targets(out, truth, "--out and --truth are required (or --describe)"))
    _print_summary(summary, seed, [spec.name for spec in config.specs])


def _simulate_blind(
    out: Path | None, truth: Path | None, seed: int, scale: float, hours: float, sets: list[str], describe: bool
) -> None:
    from policy_engine.simulate import blind

    if sets:
        raise _fail("--set applies to the default world; the blind world draws its populations from --seed")
    try:
        config = blind.BlindConfig(seed=seed, scale=scale, hours=hours)
    except ValueError as e:
        raise _fail(str(e)) from None
    if describe:
        typer.echo(json.dumps(blind.describe(config), indent=2))
        return
    summary = blind.write(config, *_targets(out, truth, "--out and --truth are required"))
    _print_summary(summary, seed, blind.population_names())


def _targets(out: Path | None, truth: Path | None, missing: str) -> tuple[Path, Path]:
    """--out and --truth, both given and in folders that exist."""
    if out is None or truth is None:
        raise _fail(missing)
    for path in (out, truth):
        if not path.parent.is_dir():
            raise _fail(f"{path}: folder {path.parent} does not exist")
    return out, truth


def _print_summary(summary: GenerateSummary, seed: int, names: list[str]) -> None:
    """The per-population table, on stderr."""
    table = Table(title=f"{summary.requests:,} requests in {summary.seconds:.1f}s (seed {seed})", title_justify="left")
    for col in ("population", "accounts", "requests"):
        table.add_column(col, justify="left" if col == "population" else "right")
    for name in names:
        row = summary.per_population.get(name, {"accounts": 0, "requests": 0})
        table.add_row(name, f"{row['accounts']:,}", f"{row['requests']:,}")
    Console(stderr=True).print(table)


def score_cmd(
    traffic: Annotated[Path, typer.Option("--traffic", help="the request contexts that were replayed")],
    truth: Annotated[Path, typer.Option("--truth", help="the ground truth written by simulate")],
    decisions: Annotated[Path, typer.Option("--decisions", help="the decisions written by replay")],
    as_json: Annotated[bool, typer.Option("--json", help="print the scores as JSON")] = False,
) -> None:
    """Score a replay: campaign yield, benign false positives, accounts blocked."""
    try:
        result = score(traffic, truth, decisions)
    except ScoreError as e:
        raise _fail(str(e)) from None
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
        return
    console = Console()
    for part in render(result, console.width):
        console.print(part)
