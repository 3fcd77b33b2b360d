"""Helpers the commands share: exit codes, loading a policy with diagnostics."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from dsl.diagnostics import PolicyError, render_all
from policy_engine.policyset import PolicySet, load_policy_set
from policy_engine.state.base import Store, StoreUnavailable
from policy_engine.state.factory import StoreOptions, open_store

EXIT_OK = 0
EXIT_FAIL = 1  # policy errors, lint errors, files that would change, failing tests
EXIT_USAGE = 2  # bad command line or bad input (e.g. an invalid request)


# --store URL, and --redis URL, its former name (kept as an alias).
StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        metavar="URL",
        help="limit store: memory:// (default), redis://host:port/db, rediss://..., redis+cluster://host:port",
    ),
]
RedisOption = Annotated[str | None, typer.Option("--redis", metavar="URL", help="the same as --store URL")]


@dataclass(frozen=True, slots=True)
class StoreFlag:
    """The store URL of --store or --redis, and which flag gave it (messages name it)."""

    url: str | None  # None: the default, memory
    flag: str

    @classmethod
    def of(cls, store: str | None, redis: str | None) -> StoreFlag:
        if store is not None and redis is not None:
            err("error: give --store or --redis (the same option), not both")
            raise typer.Exit(EXIT_USAGE)
        return cls(redis, "--redis") if redis is not None else cls(store, "--store")

    def open(self, options: StoreOptions | None = None) -> Store:
        """The store, or a usage error for a URL no store takes."""
        try:
            return open_store(self.url, options)
        except ValueError as e:
            err(f"error: {self.flag}: {e}")
            raise typer.Exit(EXIT_USAGE) from None

    async def check(self, store: Store) -> None:
        """A usage error unless the store answers."""
        try:
            await store.check()
        except StoreUnavailable as e:
            err(f"error: {self.flag} {self.url}: {e}")
            raise typer.Exit(EXIT_USAGE) from None


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


def require_folders_of(*outputs: Path | None) -> None:
    """Exit (usage error) unless the folder of each output file that is given exists."""
    for target in outputs:
        if target is not None and not target.parent.is_dir():
            err(f"error: {target}: folder {target.parent} does not exist")
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
