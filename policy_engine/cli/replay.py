"""`policyctl replay --policies DIR TRAFFIC.jsonl --out DECISIONS.jsonl`.

Options: `--store URL` (or `--redis URL`: limit state in that store, under a
fresh key prefix that is deleted afterwards; default: in memory), `--store-sync batched:<N>ms`
(on a shared store: decide from local counters and send the deltas every N ms;
one process, so every limit is batched and the decisions are exact mode's),
`--report REPORT.html`, `--strict` (stop at the first invalid line), `--quiet`
(no progress bar or summary; errors still print).
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import replace
from pathlib import Path
from typing import IO, Annotated
from collections.abc import Callable

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from policy_engine.cli.common import EXIT_OK, EXIT_USAGE, RedisOption, StoreFlag, StoreOption, err, load_or_exit
from policy_engine.cli.common import require_file, require_folders_of
from policy_engine.policyset import PolicySet
from policy_engine.replay import (
    REPLAY_STORE_DEADLINE,
    LineError,
    ReplayAborted,
    ReplayOptions,
    ReplayStats,
    replay_async,
    replay_memory,
    share,
    top_counts,
)
from policy_engine.state.base import Store
from policy_engine.state.factory import StoreOptions
from policy_engine.state.sync_mode import SyncMode, parse_interval, parse_sync

MAX_ERRORS_SHOWN = 20  # invalid lines printed one by one; the rest are counted
TOP = 10


def replay_cmd(
    traffic: Annotated[Path, typer.Argument(help="request contexts, one JSON object per line, in time order")],
    policies: Annotated[Path, typer.Option("--policies", "-p", help="policy folder or file")],
    out: Annotated[Path, typer.Option("--out", "-o", help="where to write one decision per line")],
    store: StoreOption = None,
    redis: RedisOption = None,
    report: Annotated[Path | None, typer.Option("--report", help="also write a self-contained HTML report")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="stop at the first invalid line (exit 2)")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar or summary")] = False,
    store_sync: Annotated[
        str,
        typer.Option(
            "--store-sync",
            metavar="MODE",
            help="exact, or batched:<N>ms: local counters, deltas sent to the shared store every N ms "
            "(one process: the same decisions, without a round trip per request)",
        ),
    ] = "exact",
) -> None:
    """Replay recorded traffic through a policy on a simulated clock (request.ts)."""
    store_flag = StoreFlag.of(store, redis)
    policy = load_or_exit([policies])
    sync = _sync_mode(store_sync, policy)
    require_file(traffic)
    require_folders_of(out, report)
    console = Console(stderr=True)
    shown = [0]

    def on_error(e: LineError) -> None:
        shown[0] += 1
        if shown[0] <= MAX_ERRORS_SHOWN:
            msg = e.message.replace("\n", "; ")
            console.print(
                f"[red]error[/]: {traffic}:{e.line}: invalid request context: {msg}",
                highlight=False,
                markup=True,
                soft_wrap=True,
            )
        elif shown[0] == MAX_ERRORS_SHOWN + 1:
            console.print("[red]error[/]: more invalid lines; only their count is reported", highlight=False)

    try:
        stats = _run(policy, traffic, out, store_flag, sync, strict, quiet, on_error, console)
    except ReplayAborted as e:
        err(f"error: {traffic}: {e} (--strict: replay stopped; {out} holds the decisions so far)")
        raise typer.Exit(EXIT_USAGE) from None
    if report is not None:
        from policy_engine.report import render_report

        report.write_text(render_report(stats, traffic=traffic.name), encoding="utf-8")
    if not quiet:
        print_summary(stats, console, out, report)
    raise typer.Exit(EXIT_OK)


def _run(
    policy: PolicySet,
    traffic: Path,
    out: Path,
    store_flag: StoreFlag,
    sync: SyncMode,
    strict: bool,
    quiet: bool,
    on_error: Callable[[LineError], None],
    console: Console,
) -> ReplayStats:
    total = traffic.stat().st_size
    progress = (
        None
        if quiet
        else Progress(
            TextColumn("replay"),
            BarColumn(),
            DownloadColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
    )
    with out.open("wb") as f:
        if progress is None:
            return _replay(policy, traffic, f, store_flag, sync, ReplayOptions(strict=strict, on_error=on_error))
        with progress:
            task = progress.add_task("replay", total=total)
            opts = ReplayOptions(
                strict=strict, on_error=on_error, progress=lambda done: progress.update(task, completed=done)
            )
            return _replay(policy, traffic, f, store_flag, sync, opts)


def _sync_mode(text: str, policy: PolicySet) -> SyncMode:
    """Batched: every limit and measure, sums too: one process never overshoots."""
    try:
        if parse_interval(text) is None:
            return SyncMode()
        every = {lim.id: "batched" for lim in policy.limits} | {m.id: "batched" for m in policy.compiled.measures}
        return replace(parse_sync(text, every), solo=True)
    except ValueError as e:
        err(f"error: --store-sync: {e}")
        raise typer.Exit(EXIT_USAGE) from None


def _replay(
    policy: PolicySet, traffic: Path, f: IO[bytes], store_flag: StoreFlag, sync: SyncMode, opts: ReplayOptions
) -> ReplayStats:
    # A fresh prefix: on a shared store the replay starts from empty limits and
    # never touches the counters of a live server.
    options = StoreOptions(deadline=REPLAY_STORE_DEADLINE, prefix=f"pe-replay-{secrets.token_hex(4)}", sync=sync)
    store = store_flag.open(options)
    if store.as_sync() is not None:  # memory: no event loop at all
        return replay_memory(policy, traffic, f, store, opts)
    return asyncio.run(_replay_async(policy, traffic, f, store, store_flag, opts))


async def _replay_async(
    policy: PolicySet, traffic: Path, f: IO[bytes], store: Store, store_flag: StoreFlag, opts: ReplayOptions
) -> ReplayStats:
    try:
        await store_flag.check(store)  # fail now, not with every decision failing open
        stats = await replay_async(policy, traffic, f, store, opts)
        await store.flush()  # only our prefix
        return stats
    finally:
        await store.close()


# ------------------------------------------------------------------- summary
def print_summary(stats: ReplayStats, console: Console, out: Path | None = None, report: Path | None = None) -> None:
    n = stats.requests
    head = (
        f"{n:,} requests replayed in {stats.seconds:.2f}s ({stats.rate:,.0f}/s) "
        f"on the {stats.store} store, policy {stats.policy_name} {stats.policy_version}"
    )
    console.print(head, highlight=False)
    extras = []
    if stats.invalid:
        extras.append(f"[red]{stats.invalid:,} invalid line{'s' * (stats.invalid != 1)} skipped[/]")
    if stats.out_of_order:
        extras.append(f"[yellow]{stats.out_of_order:,} lines out of time order (decided at the clock so far)[/]")
    if stats.store_errors:
        extras.append(
            f"[red]{stats.store_errors:,} limit checks failed in the store (each limit's on_error applied)[/]"
        )
    extras.append(f"{stats.usage_reconciled:,} usage reports reconciled")
    console.print("; ".join(extras), highlight=False)
    console.print(_effects_table(stats))
    if stats.fired or stats.shadow_fired:
        console.print(_rules_table(stats))
    for title, counter in (
        ("top blocked accounts", stats.blocked_accounts),
        ("top blocked limit keys", {f"{lim}: {key}": c for (lim, key), c in stats.blocked_limit_keys.items()}),
        ("top blocked ASNs", stats.blocked_asns),
        ("top blocked countries", stats.blocked_countries),
    ):
        if counter:
            console.print(_top_table(title, counter))
    if out is not None:
        console.print(f"decisions: {out}", highlight=False)
    if report is not None:
        console.print(f"report: {report}", highlight=False)


def _effects_table(stats: ReplayStats) -> Table:
    t = Table(title="decisions by effect", title_justify="left")
    t.add_column("effect")
    t.add_column("requests", justify="right")
    t.add_column("share", justify="right")
    for label, c in stats.effect_counts().items():
        t.add_row(label, f"{c:,}", share(c, stats.requests))
    return t


def _rules_table(stats: ReplayStats) -> Table:
    t = Table(title="rules and limits that fired", title_justify="left")
    for col in ("rule", "kind", "effect", "requests", "share"):
        t.add_column(col, justify="right" if col in ("requests", "share") else "left")
    for rid, kind, effect, c in stats.fired_rows():
        t.add_row(rid, kind, effect, f"{c:,}", share(c, stats.requests))
    return t


def _top_table(title: str, counter: dict[str, int]) -> Table:
    t = Table(title=title, title_justify="left", min_width=len(title))  # a title wider than the keys stays one line
    t.add_column("key")
    t.add_column("blocked", justify="right")
    for key, c in top_counts(counter, TOP):
        t.add_row(key, f"{c:,}")
    return t
