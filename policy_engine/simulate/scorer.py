"""Score a replay: how much did each campaign get, and what did benign users pay?

Inputs are the three files of one run: TRAFFIC.jsonl (request contexts, for
`usage.completion_tokens` and time order), TRUTH.jsonl (request id -> population,
campaign, account) and DECISIONS.jsonl (`policyctl replay` output: request id ->
effect). Definitions of every metric are in docs/simulation.md.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ADMITTED = frozenset({"allow", "flag"})
BLOCKED = frozenset({"deny", "throttle"})
EFFECTS = ("allow", "flag", "throttle", "deny")


class ScoreError(ValueError):
    """An input file is malformed or the three files don't describe the same requests."""


@dataclass(slots=True)
class _Acct:
    answered_before_block: int = 0
    blocked: bool = False


@dataclass(slots=True)
class GroupScore:
    """Scores of one population, one campaign, or all benign traffic."""

    requests: int = 0
    admitted: int = 0
    effects: dict[str, int] = field(default_factory=lambda: dict.fromkeys(EFFECTS, 0))
    completion_tokens: int = 0
    admitted_completion_tokens: int = 0
    accounts: int = 0
    accounts_ever_blocked: int = 0
    answered_before_block_total: int = 0
    answered_before_block_median: float = 0.0
    campaign: str | None = None
    is_campaign: bool = False
    # Had the shadow rules been enforced (replay's `shadow_effect`): a first-order
    # view, since refusals would also have changed what later requests counted.
    shadow_blocked: int = 0
    shadow_admitted_completion_tokens: int = 0

    @property
    def blocked(self) -> int:
        return self.effects["deny"] + self.effects["throttle"]

    @property
    def admitted_share(self) -> float:
        return self.admitted / self.requests if self.requests else 0.0

    @property
    def blocked_share(self) -> float:
        """For benign groups this is the false-positive rate."""
        return self.blocked / self.requests if self.requests else 0.0

    @property
    def extraction_yield(self) -> float:
        """Completion tokens admitted / completion tokens asked for."""
        return self.admitted_completion_tokens / self.completion_tokens if self.completion_tokens else 0.0

    @property
    def shadow_blocked_share(self) -> float:
        """Blocked share had the shadow rules been enforced."""
        return self.shadow_blocked / self.requests if self.requests else 0.0

    @property
    def shadow_extraction_yield(self) -> float:
        """Extraction yield had the shadow rules been enforced."""
        return self.shadow_admitted_completion_tokens / self.completion_tokens if self.completion_tokens else 0.0

    @property
    def accounts_ever_blocked_share(self) -> float:
        return self.accounts_ever_blocked / self.accounts if self.accounts else 0.0

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for name in (
            "blocked",
            "admitted_share",
            "blocked_share",
            "extraction_yield",
            "accounts_ever_blocked_share",
            "shadow_blocked_share",
            "shadow_extraction_yield",
        ):
            out[name] = getattr(self, name)
        return out


@dataclass(slots=True)
class Score:
    populations: dict[str, GroupScore]
    campaigns: dict[str, GroupScore]
    benign: GroupScore

    @property
    def false_positive_rate(self) -> float:
        return self.benign.blocked_share

    def to_json(self) -> dict[str, Any]:
        return {
            "populations": {k: v.to_json() for k, v in self.populations.items()},
            "campaigns": {k: v.to_json() for k, v in self.campaigns.items()},
            "benign": self.benign.to_json()
            | {
                "false_positive_rate": self.false_positive_rate,
                "shadow_false_positive_rate": self.benign.shadow_blocked_share,
            },
        }


def _lines(path: Path, what: str) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        f = path.open(encoding="utf-8")
    except OSError as e:
        raise ScoreError(f"{what} file {path}: {e.strerror}") from e
    with f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ScoreError(f"{path}:{n}: not JSON ({e.msg})") from e
            if not isinstance(obj, dict):
                raise ScoreError(f"{path}:{n}: expected a JSON object")
            yield n, obj


def _get(obj: dict[str, Any], path: Path, n: int, *keys: str) -> Any:
    cur: Any = obj
    for k in keys:
        if not isinstance(cur, dict) or k not in cur:
            raise ScoreError(f"{path}:{n}: missing field {'.'.join(keys)}")
        cur = cur[k]
    return cur


def _load_truth(path: Path) -> dict[str, tuple[str, str | None, str]]:
    out: dict[str, tuple[str, str | None, str]] = {}
    for n, t in _lines(path, "truth"):
        rid = _get(t, path, n, "request_id")
        if rid in out:
            raise ScoreError(f"{path}:{n}: request {rid!r} appears twice")
        out[rid] = (_get(t, path, n, "population"), t.get("campaign"), _get(t, path, n, "account"))
    return out


def _load_decisions(path: Path) -> dict[str, tuple[str, str]]:
    """request id -> (effect, effect had the shadow rules been enforced)."""
    out: dict[str, tuple[str, str]] = {}
    for n, d in _lines(path, "decisions"):
        rid, effect = _get(d, path, n, "request_id"), _get(d, path, n, "effect")
        shadow = d.get("shadow_effect", effect)
        for e in (effect, shadow):
            if e not in EFFECTS:
                raise ScoreError(f"{path}:{n}: unknown effect {e!r} (expected one of {', '.join(EFFECTS)})")
        if rid in out:
            raise ScoreError(f"{path}:{n}: request {rid!r} has two decisions")
        out[rid] = (effect, shadow)
    return out


def _add(g: GroupScore, effect: str, shadow: str, completion: int) -> None:
    g.requests += 1
    g.effects[effect] += 1
    g.completion_tokens += completion
    if effect in ADMITTED:
        g.admitted += 1
        g.admitted_completion_tokens += completion
    if shadow in ADMITTED:
        g.shadow_admitted_completion_tokens += completion
    else:
        g.shadow_blocked += 1


def _finish(g: GroupScore, accounts: list[_Acct]) -> None:
    g.accounts = len(accounts)
    g.accounts_ever_blocked = sum(a.blocked for a in accounts)
    answered = [a.answered_before_block for a in accounts]
    g.answered_before_block_total = sum(answered)
    g.answered_before_block_median = float(statistics.median(answered)) if answered else 0.0


def score(traffic: Path, truth: Path, decisions: Path) -> Score:
    """Walk the traffic in file (time) order, joining truth and decisions by request id."""
    truths, effects = _load_truth(truth), _load_decisions(decisions)
    pops: dict[str, GroupScore] = {}
    camps: dict[str, GroupScore] = {}
    benign = GroupScore()
    accounts: dict[tuple[str, str], _Acct] = {}  # (population, account) -> state
    seen = 0
    for n, ctx in _lines(traffic, "traffic"):
        rid = _get(ctx, traffic, n, "request", "id")
        if rid not in truths:
            raise ScoreError(f"{traffic}:{n}: request {rid!r} has no line in {truth}")
        if rid not in effects:
            raise ScoreError(f"{traffic}:{n}: request {rid!r} has no decision in {decisions}")
        seen += 1
        population, campaign, account = truths[rid]
        effect, shadow = effects[rid]
        usage = ctx.get("usage") or {}
        completion = int(usage.get("completion_tokens") or 0)
        g = pops.setdefault(population, GroupScore(campaign=campaign, is_campaign=campaign is not None))
        _add(g, effect, shadow, completion)
        if campaign is not None:
            _add(
                camps.setdefault(campaign, GroupScore(campaign=campaign, is_campaign=True)), effect, shadow, completion
            )
        else:
            _add(benign, effect, shadow, completion)
        a = accounts.setdefault((population, account), _Acct())
        if effect in BLOCKED:
            a.blocked = True
        elif not a.blocked:
            a.answered_before_block += 1
    if seen != len(truths):
        raise ScoreError(f"{truth} lists {len(truths)} requests but {traffic} has {seen}")
    by_pop: dict[str, list[_Acct]] = {}
    by_camp: dict[str, list[_Acct]] = {}
    benign_accts: list[_Acct] = []
    for (population, _), a in accounts.items():
        by_pop.setdefault(population, []).append(a)
        campaign = pops[population].campaign
        (by_camp.setdefault(campaign, []) if campaign is not None else benign_accts).append(a)
    for name, g in pops.items():
        _finish(g, by_pop[name])
    for name, g in camps.items():
        _finish(g, by_camp[name])
    _finish(benign, benign_accts)
    ordered = dict(sorted(pops.items(), key=lambda kv: (kv[1].is_campaign, kv[0])))
    return Score(populations=ordered, campaigns=dict(sorted(camps.items())), benign=benign)


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


# The per-population columns: (header, cell). Headers wrap at their spaces.
_POP_VOLUME: list[tuple[str, Callable[[GroupScore], str]]] = [
    ("kind", lambda g: "campaign" if g.is_campaign else "benign"),
    ("requests", lambda g: f"{g.requests:,}"),
    ("accounts", lambda g: f"{g.accounts:,}"),
    ("admitted", lambda g: _pct(g.admitted_share)),
    ("blocked", lambda g: _pct(g.blocked_share)),
]
_POP_OUTCOME: list[tuple[str, Callable[[GroupScore], str]]] = [
    ("answered\nbefore block\nmedian per\naccount", lambda g: f"{g.answered_before_block_median:g}"),
    ("answered\nbefore block\ntotal", lambda g: f"{g.answered_before_block_total:,}"),
    ("yield", lambda g: _pct(g.extraction_yield) if g.is_campaign else "-"),
    ("accounts\never blocked", lambda g: f"{g.accounts_ever_blocked:,} ({_pct(g.accounts_ever_blocked_share)})"),
]


def _group_table(
    title: str, first: str, groups: dict[str, GroupScore], cols: list[tuple[str, Callable[[GroupScore], str]]]
) -> Any:
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    # fold, not ellipsis: a cell too wide for the terminal wraps instead of being cut
    t.add_column(first, overflow="fold")
    for header, _ in cols:
        t.add_column(header, justify="left" if header == "kind" else "right", overflow="fold")
    for name, g in groups.items():
        t.add_row(name, *(cell(g) for _, cell in cols))
    return t


def _fits(table: Any, width: int) -> bool:
    """Whether `table` fits `width` columns without wrapping a cell."""
    from rich.console import Console
    from rich.measure import Measurement

    console = Console(width=10_000)  # measured unconstrained: a measurement is capped at the width
    return Measurement.get(console, console.options, table).maximum <= width


def _tables(
    title: str,
    first: str,
    groups: dict[str, GroupScore],
    parts: list[tuple[str, list[tuple[str, Callable[[GroupScore], str]]]]],
    width: int,
) -> list[Any]:
    """One table of every part's columns if it fits `width`, else one table per part."""
    whole = _group_table(title, first, groups, [c for _, cols in parts for c in cols])
    if _fits(whole, width):
        return [whole]
    return [_group_table(f"{title}: {name}", first, groups, cols) for name, cols in parts]


def render(s: Score, width: int = 200) -> list[Any]:
    """Rich renderables: a per-population table, a per-campaign table (each split
    in two when it does not fit `width` columns), a benign verdict."""
    pops = _tables(
        "Replay score per population",
        "population",
        s.populations,
        [("volume", _POP_VOLUME), ("outcome", _POP_OUTCOME)],
        width,
    )
    yield_col = ("extraction\nyield", lambda g: _pct(g.extraction_yield))
    camps = _tables(
        "Campaigns",
        "campaign",
        s.campaigns,
        [("volume", [_POP_VOLUME[1], _POP_VOLUME[2], yield_col]), ("outcome", _POP_OUTCOME[:2])],
        width,
    )
    b = s.benign
    verdict = (
        f"benign: {b.requests:,} requests, false-positive rate {_pct(s.false_positive_rate)} "
        f"({b.blocked:,} denied or throttled), accounts ever blocked {b.accounts_ever_blocked:,} "
        f"of {b.accounts:,} ({_pct(b.accounts_ever_blocked_share)})"
    )
    if any(g.shadow_blocked != g.blocked for g in s.populations.values()):
        verdict += "\nhad the shadow rules been enforced: benign false-positive rate " + _pct(b.shadow_blocked_share)
        verdict += "".join(f", {name} yield {_pct(c.shadow_extraction_yield)}" for name, c in s.campaigns.items())
    return [*pops, *camps, verdict]
