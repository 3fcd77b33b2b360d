"""`policyctl diff --old DIR --new DIR TRAFFIC.jsonl [--json]`: what a policy change does.

Both policies replay the same traffic, each with its own fresh memory store,
and every request's two decisions are compared: effect transitions (with a
few example request ids each), rules that newly fire or no longer fire, and
the accounts whose outcomes changed most. Always exits 0 once both policies
load: a difference is information, not a failure.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from policy_engine.cli.common import EXIT_OK, err, load_or_exit, require_file
from policy_engine.decision import Decision
from policy_engine.policyset import PolicySet
from policy_engine.replay import EFFECTS, LineError, SyncReplayer, read_traffic
from policy_engine.state.factory import open_store

EXAMPLES = 5  # request ids kept per transition
TOP_ACCOUNTS = 20
MAX_ERRORS_SHOWN = 20


@dataclass
class AccountChange:
    changed: int = 0
    newly_blocked: int = 0  # admitted by the old policy, denied or throttled by the new one
    newly_admitted: int = 0  # the reverse


@dataclass
class DiffResult:
    old: PolicySet
    new: PolicySet
    requests: int = 0
    invalid: int = 0
    old_effects: Counter[str] = field(default_factory=Counter)
    new_effects: Counter[str] = field(default_factory=Counter)
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)  # changed effects only
    examples: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    newly_firing: Counter[str] = field(default_factory=Counter)
    no_longer_firing: Counter[str] = field(default_factory=Counter)
    accounts: dict[str, AccountChange] = field(default_factory=dict)

    @property
    def changed(self) -> int:
        return sum(self.transitions.values())

    def add(self, account: str | None, a: Decision, b: Decision) -> None:
        self.requests += 1
        ea, eb = a.effect.label, b.effect.label
        self.old_effects[ea] += 1
        self.new_effects[eb] += 1
        ra, rb = _fired(a), _fired(b)
        if ra != rb:
            self.newly_firing.update(rb - ra)
            self.no_longer_firing.update(ra - rb)
        if ea == eb:
            return
        t = (ea, eb)
        self.transitions[t] += 1
        ex = self.examples.setdefault(t, [])
        if len(ex) < EXAMPLES:
            ex.append(a.request_id or "-")
        ac = self.accounts.setdefault(account or "-", AccountChange())
        ac.changed += 1
        if a.allowed and not b.allowed:
            ac.newly_blocked += 1
        elif b.allowed and not a.allowed:
            ac.newly_admitted += 1

    def top_accounts(self, n: int = TOP_ACCOUNTS) -> list[tuple[str, AccountChange]]:
        return sorted(self.accounts.items(), key=lambda kv: (-kv[1].changed, kv[0]))[:n]

    def to_json(self) -> dict[str, Any]:
        def side(p: PolicySet, effects: Counter[str]) -> dict[str, Any]:
            return {"policy": p.name, "version": p.version, "effects": {e: effects[e] for e in EFFECTS}}

        return {
            "requests": self.requests,
            "invalid_lines": self.invalid,
            "changed": self.changed,
            "old": side(self.old, self.old_effects),
            "new": side(self.new, self.new_effects),
            "transitions": [
                {"from": f, "to": t, "requests": c, "examples": self.examples[(f, t)]}
                for (f, t), c in _ordered(self.transitions)
            ],
            "rules": [
                {"rule": r, "newly_firing": self.newly_firing[r], "no_longer_firing": self.no_longer_firing[r]}
                for r in sorted(set(self.newly_firing) | set(self.no_longer_firing))
            ],
            "accounts": [
                {
                    "account": a,
                    "changed": c.changed,
                    "newly_blocked": c.newly_blocked,
                    "newly_admitted": c.newly_admitted,
                }
                for a, c in self.top_accounts()
            ],
        }


def _fired(d: Decision) -> set[str]:
    """Enforced and shadow rules of a decision; shadow ones marked, since moving a
    rule in or out of shadow mode is a change worth seeing."""
    s = set(d.rules)
    if d.shadow_rules:
        s.update(f"{r} (shadow)" for r in d.shadow_rules)
    return s


def _ordered(transitions: Counter[tuple[str, str]]) -> list[tuple[tuple[str, str], int]]:
    return sorted(transitions.items(), key=lambda kv: (-kv[1], kv[0]))


def diff_traffic(old: PolicySet, new: PolicySet, traffic: Path, on_error: Any = None) -> DiffResult:
    """Replay `traffic` through both policies (fresh memory stores) and compare."""
    result = DiffResult(old, new)
    ra, rb = SyncReplayer(old, open_store()), SyncReplayer(new, open_store())
    for _, item in read_traffic(traffic):
        if isinstance(item, LineError):
            result.invalid += 1
            if on_error is not None:
                on_error(item)
            continue
        # One parsed context feeds both: its signal cache holds values that do not depend on the policy.
        a, _ = ra.step(item)
        b, _ = rb.step(item)
        result.add(item.account_id, a, b)
    return result


def diff_cmd(
    traffic: Annotated[Path, typer.Argument(help="request contexts, one JSON object per line, in time order")],
    old: Annotated[Path, typer.Option("--old", help="the current policy folder or file")],
    new: Annotated[Path, typer.Option("--new", help="the changed policy folder or file")],
    as_json: Annotated[bool, typer.Option("--json", help="print the comparison as JSON")] = False,
) -> None:
    """Replay traffic through two policies and show how the decisions change."""
    old_p, new_p = load_or_exit([old]), load_or_exit([new])
    require_file(traffic)
    shown = [0]

    def on_error(e: LineError) -> None:
        shown[0] += 1
        if shown[0] <= MAX_ERRORS_SHOWN:
            err(f"error: {traffic}:{e.line}: invalid request context: {e.message.replace(chr(10), '; ')}")

    result = diff_traffic(old_p, new_p, traffic, on_error)
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        render(result, Console())
    raise typer.Exit(EXIT_OK)


def render(r: DiffResult, console: Console) -> None:
    console.print(
        f"{r.requests:,} requests: {r.changed:,} changed effect ({100.0 * r.changed / r.requests if r.requests else 0:.2f}%)"
        f"; old {r.old.name} {r.old.version}, new {r.new.name} {r.new.version}"
        + (f"; {r.invalid:,} invalid lines skipped" if r.invalid else ""),
        highlight=False,
    )
    t = Table(title="effects", title_justify="left")
    for col in ("effect", "old", "new", "delta"):
        t.add_column(col, justify="left" if col == "effect" else "right")
    for e in EFFECTS:
        a, b = r.old_effects[e], r.new_effects[e]
        t.add_row(e, f"{a:,}", f"{b:,}", f"{b - a:+,}")
    console.print(t)
    if not r.changed and not r.newly_firing and not r.no_longer_firing:
        console.print("no decision changed")
        return
    if r.transitions:
        t = Table(title="transitions", title_justify="left")
        for col in ("from -> to", "requests", "examples"):
            t.add_column(col, justify="right" if col == "requests" else "left")
        for (f, to), c in _ordered(r.transitions):
            t.add_row(f"{f} -> {to}", f"{c:,}", ", ".join(r.examples[(f, to)]))
        console.print(t)
    if r.newly_firing or r.no_longer_firing:
        t = Table(title="rules", title_justify="left")
        for col in ("rule", "newly firing", "no longer firing"):
            t.add_column(col, justify="left" if col == "rule" else "right")
        for rule in sorted(
            set(r.newly_firing) | set(r.no_longer_firing),
            key=lambda x: (-(r.newly_firing[x] + r.no_longer_firing[x]), x),
        ):
            t.add_row(rule, f"{r.newly_firing[rule]:,}", f"{r.no_longer_firing[rule]:,}")
        console.print(t)
    if r.accounts:
        t = Table(
            title=f"accounts whose outcomes changed (top {TOP_ACCOUNTS} of {len(r.accounts):,})", title_justify="left"
        )
        for col in ("account", "changed", "newly blocked", "newly admitted"):
            t.add_column(col, justify="left" if col == "account" else "right")
        for account, change in r.top_accounts():
            t.add_row(account, f"{change.changed:,}", f"{change.newly_blocked:,}", f"{change.newly_admitted:,}")
        console.print(t)
