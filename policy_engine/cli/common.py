"""Helpers the commands share: exit codes, loading a policy with diagnostics."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from dsl.diagnostics import PolicyError, render_all
from policy_engine.policyset import PolicySet, load_policy_set

EXIT_OK = 0
EXIT_FAIL = 1    # policy errors, lint errors, files that would change, failing tests
EXIT_USAGE = 2   # bad command line or bad input (e.g. an invalid request)


def err(msg: str) -> None:
    typer.echo(msg, err=True)


def require_paths(paths: list[Path]) -> None:
    """Exit (usage error) naming the first path that does not exist."""
    for p in paths:
        if not p.exists():
            err(f"error: {p}: no such file or directory")
            raise typer.Exit(EXIT_USAGE)


def require_file(path: Path | str) -> None:
    """Exit (usage error) unless `path` is a file (an input such as traffic or a request);
    the message names it as given."""
    if not Path(path).is_file():
        err(f"error: {path}: no such file")
        raise typer.Exit(EXIT_USAGE)


def load_or_exit(paths: list[Path]) -> PolicySet:
    require_paths(paths)
    try:
        return load_policy_set(paths)
    except PolicyError as e:
        err(render_all(e.diagnostics))
        n = len(e.diagnostics)
        err(f"\npolicy not loaded: {n} error{'s' * (n != 1)}")
        raise typer.Exit(EXIT_FAIL) from None


def read_input(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    require_file(path)
    return Path(path).read_text(encoding="utf-8")
