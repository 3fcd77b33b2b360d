"""`policyctl test PATH...`: run the policy test files found there."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from policy_engine.cli.common import EXIT_FAIL, EXIT_OK, EXIT_USAGE, err, require_paths
from policy_engine.testing import discover, render_junit, render_text, run_tests


class TestFormat(str, Enum):
    text = "text"
    junit = "junit"


def test_cmd(
    paths: Annotated[list[Path], typer.Argument(help="test files, policy files or folders")],
    format: Annotated[
        TestFormat, typer.Option("--format", "-f", help="text, or junit (JUnit XML for CI)")
    ] = TestFormat.text,
    coverage: Annotated[
        bool, typer.Option("--coverage", help="list the rules and limits no test case exercises")
    ] = False,
) -> None:
    """Run policy test cases (*.test.yaml, or tests/*.yaml beside the policies)."""
    require_paths(paths)
    if not discover(paths):
        err("error: no test files found (*.test.yaml, or .yaml files in a tests/ folder beside .policy files)")
        raise typer.Exit(EXIT_USAGE)
    res = run_tests(paths, coverage=coverage)
    if format is TestFormat.junit:
        typer.echo(render_junit(res), nl=False)
        if coverage:
            from policy_engine.testing import render_coverage

            err("\n".join(render_coverage(res)))
    else:
        typer.echo(render_text(res, coverage=coverage), nl=False)
    raise typer.Exit(EXIT_OK if res.ok else EXIT_FAIL)
