"""`policyctl lint PATH...`: parse and check; exit 1 when there are errors."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated
from collections.abc import Callable, Mapping

import typer

from dsl.checked import CheckedPolicy
from dsl.diagnostics import Diagnostic, Severity
from dsl.load import load, policy_files
from policy_engine.cli.common import EXIT_FAIL, EXIT_OK, EXIT_USAGE, err, require_paths
from policy_engine.cli import report_formats
from policy_engine.testing import ExercisedBlocks, tested_names, untested_in


class LintFormat(str, Enum):
    text = "text"
    json = "json"
    github = "github"
    sarif = "sarif"


def lint_cmd(
    paths: Annotated[list[Path], typer.Argument(help="policy files or folders")],
    format: Annotated[LintFormat, typer.Option("--format", "-f", help="output format")] = LintFormat.text,
    strict: Annotated[bool, typer.Option("--strict", help="treat warnings as errors")] = False,
    docs_url: Annotated[
        str,
        typer.Option(
            "--docs-url",
            envvar=report_formats.DOCS_URL_ENV,
            metavar="URL",
            help="where docs/ is published, for SARIF's links to each code",
        ),
    ] = report_formats.DOCS_URL,
) -> None:
    """Check policies: syntax, names, types, units, regexes, CIDRs, and semantic warnings."""
    require_paths(paths)
    if not report_formats.is_absolute_url(docs_url):
        err(f"error: --docs-url {docs_url!r}: expected an absolute URL, e.g. https://example.org/policy-engine/docs/")
        raise typer.Exit(EXIT_USAGE)
    diags: list[Diagnostic] = []
    # Each path is checked alone: a folder is one policy (one namespace).
    for path in paths:
        diags.extend(lint_policy(path)[1])
    if strict:
        diags = [Diagnostic(d.code, d.message, d.span, Severity.ERROR, d.hint, d.file) for d in diags]
    diags.sort(key=Diagnostic.sort_key)
    files = [str(f) for f in policy_files(paths)]
    typer.echo(_render(diags, format, files, docs_url), nl=False)
    raise typer.Exit(EXIT_FAIL if any(d.is_error for d in diags) else EXIT_OK)


def lint_policy(
    path: Path,
    overlay: Mapping[Path, str] | None = None,
    tested: Callable[[list[Path]], ExercisedBlocks | None] = tested_names,
) -> tuple[CheckedPolicy, list[Diagnostic]]:
    """Everything lint reports for one policy (a file, or a folder: one namespace).
    `overlay` replaces files with unsaved text; `tested` finds what the tests beside
    the policy exercise (by default it runs them), for W0308."""
    checked, diags = load([path], overlay=overlay)
    if not any(d.is_error for d in diags):
        cov = tested([path])
        if cov is not None:
            diags = sorted(diags + untested_in(checked, cov), key=Diagnostic.sort_key)
    return checked, diags


def _render(diags: list[Diagnostic], fmt: LintFormat, files: list[str], docs_url: str) -> str:
    if fmt is LintFormat.json:
        return json.dumps({"files": files, "diagnostics": [d.to_dict() for d in diags]}, indent=2) + "\n"
    if fmt is LintFormat.github:
        return report_formats.github(diags)
    if fmt is LintFormat.sarif:
        return json.dumps(report_formats.sarif(diags, docs_url), indent=2) + "\n"
    errors = sum(d.is_error for d in diags)
    warnings = len(diags) - errors
    body = "\n\n".join(d.render() for d in diags)
    summary = f"{len(files)} file{'s' * (len(files) != 1)} checked: {errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
    return (body + "\n\n" if body else "") + summary + "\n"
