"""`policyctl fmt PATH...`: rewrite policies in canonical form."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated

import typer

from dsl.diagnostics import PolicyError, render_all
from dsl.formatter import LINE_WIDTH, format_source
from dsl.load import policy_files
from policy_engine.cli.common import EXIT_FAIL, EXIT_OK, err, require_paths


def fmt_cmd(
    paths: Annotated[list[Path], typer.Argument(help="policy files or folders")],
    check: Annotated[bool, typer.Option("--check", help="change nothing; exit 1 if a file would change")] = False,
    diff: Annotated[bool, typer.Option("--diff", help="print a unified diff of the changes")] = False,
    line_width: Annotated[
        int, typer.Option("--line-width", min=40, help="wrap longer clauses and lets at their operators")
    ] = LINE_WIDTH,
) -> None:
    """Format policies (in place unless --check or --diff)."""
    require_paths(paths)
    changed: list[Path] = []
    failed = False
    for f in policy_files(paths):
        text = f.read_text(encoding="utf-8")
        try:
            new = format_source(text, str(f), line_width)
        except PolicyError as e:
            err(render_all(e.diagnostics))
            failed = True
            continue
        if new == text:
            continue
        changed.append(f)
        if diff:
            typer.echo(
                "".join(difflib.unified_diff(text.splitlines(True), new.splitlines(True), str(f), str(f))), nl=False
            )
        if not check and not diff:
            f.write_text(new, encoding="utf-8")
    for f in changed:
        verb = "would reformat" if (check or diff) else "reformatted"
        err(f"{verb} {f}")
    if failed or (check and changed):
        raise typer.Exit(EXIT_FAIL)
    raise typer.Exit(EXIT_OK)
