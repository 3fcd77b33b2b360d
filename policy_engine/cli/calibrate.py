"""`policyctl calibrate --policies DIR TRAFFIC.jsonl`: thresholds from your own traffic.

Replays the traffic with every limit observing, not enforcing (memory store),
and reports per limit (and per measure) the distribution of per-key peaks
against its maximum (the constants rules compare the measure with), a
suggested threshold that refuses at most `--refuse-share` of keys, and a
warning when a throttle or deny threshold sits inside the body of the traffic.
Exit 0; 1 with `--strict` when a warning fired; 2 on bad input.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated
from collections.abc import Callable

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from policy_engine.calibrate import (
    DEFAULT_REFUSE_SHARE,
    CalibrationInputError,
    CalibrationRun,
    RunOptions,
    load_truth,
    run,
    summarise,
)
from policy_engine.calibrate_report import render_html, render_json, render_text
from policy_engine.cli.common import EXIT_FAIL, EXIT_OK, EXIT_USAGE, err, load_or_exit, require_file, require_folders_of
from policy_engine.policyset import PolicySet
from policy_engine.replay import LineError


class Format(str, Enum):
    text = "text"
    json = "json"


def calibrate_cmd(
    traffic: Annotated[Path, typer.Argument(help="request contexts, one JSON object per line, in time order")],
    policies: Annotated[Path, typer.Option("--policies", "-p", help="policy folder or file")],
    refuse_share: Annotated[
        float, typer.Option("--refuse-share", help="share of keys a suggested threshold may refuse")
    ] = DEFAULT_REFUSE_SHARE,
    fmt: Annotated[Format, typer.Option("--format", help="text or json")] = Format.text,
    truth: Annotated[
        Path | None,
        typer.Option("--truth", help="ground truth (policyctl simulate --truth): split keys into benign and campaign"),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="write the report here, not to stdout")] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="also write a self-contained HTML page with histograms")
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="exit 1 when a warning fires")] = False,
    skip_invalid: Annotated[
        bool,
        typer.Option("--skip-invalid", help="report and skip invalid lines instead of stopping (exit 2) at the first"),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Suggest limit maximums and measure thresholds from recorded traffic, every limit observed, not enforced."""
    if not 0 <= refuse_share < 1:
        err(f"error: --refuse-share {refuse_share:g}: expected a share of keys in [0, 1), e.g. 0.001")
        raise typer.Exit(EXIT_USAGE)
    policy = load_or_exit([policies])
    require_file(traffic)
    require_folders_of(out, report)
    try:
        opts = RunOptions(
            truth=_truth(truth), truth_name=str(truth), skip_invalid=skip_invalid, on_error=_error_printer(traffic)
        )
        result = _run(policy, traffic, opts, quiet)
    except CalibrationInputError as e:
        err(f"error: {e}")
        raise typer.Exit(EXIT_USAGE) from None
    cal = summarise(result, refuse_share)
    text = json.dumps(render_json(cal), indent=2) + "\n" if fmt is Format.json else render_text(cal)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
    if report is not None:
        report.write_text(render_html(cal), encoding="utf-8")
    raise typer.Exit(EXIT_FAIL if strict and cal.warnings else EXIT_OK)


def _truth(path: Path | None) -> dict[str, bool] | None:
    if path is None:
        return None
    require_file(path)
    return load_truth(path)


MAX_ERRORS_SHOWN = 20


def _error_printer(traffic: Path) -> Callable[[LineError], None]:
    shown = [0]

    def on_error(e: LineError) -> None:
        shown[0] += 1
        if shown[0] <= MAX_ERRORS_SHOWN:
            err(f"error: {traffic}:{e.line}: invalid request context: {e.message.replace(chr(10), '; ')}")
        elif shown[0] == MAX_ERRORS_SHOWN + 1:
            err("error: more invalid lines; only their count is reported")

    return on_error


def _run(policy: PolicySet, traffic: Path, opts: RunOptions, quiet: bool) -> CalibrationRun:
    if quiet:
        return run(policy, traffic, opts)
    progress = Progress(
        TextColumn("calibrate"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with progress:
        task = progress.add_task("calibrate", total=traffic.stat().st_size)
        opts.progress = lambda done: progress.update(task, completed=done)
        return run(policy, traffic, opts)
