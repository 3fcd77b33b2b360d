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


def load_or_exit(paths: list[Path]) -> PolicySet:
    for p in paths:
        if not p.exists():
            err(f"error: {p}: no such file or directory")
            raise typer.Exit(EXIT_USAGE)
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
    p = Path(path)
    if not p.is_file():
        err(f"error: {path}: no such file")
        raise typer.Exit(EXIT_USAGE)
    return p.read_text(encoding="utf-8")
