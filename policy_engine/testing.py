"""Policy tests: YAML cases run against a policy on a simulated clock.

A test file (`*.test.yaml`, or any `.yaml` in a `tests/` folder beside the
`.policy` files) holds cases; a case is a sequence of steps. Each step is a
request context in the shape of DESIGN.md (sections `request`, `account`,
`api_key`, `client`), merged over the file's and the case's `defaults`, with
an optional `usage` report sent after it and the decision it must get:

    defaults:
      account: {id: acct-1, age_days: 120, verification: kyc}
    cases:
      - name: a burst is throttled
        steps:
          - repeat: 3          # three requests...
            every: 1s          # ...one second apart
            expect: allow
          - expect: {effect: throttle, rules: [per_minute], headers: {retry-after: "57"}}
      - name: a card shared by four accounts
        steps:
          - {repeat: 3, account: {...}, expect: allow}
          - expect: {effect: deny, measures: {card_accounts: 4, suspicion: {at_least: 2}}}

Every case gets a fresh memory store; the clock starts at `start` (or the
defaults' `request.ts`, or a fixed instant), moves by `after` before a step and
by `every` between repetitions; a step's own `request.ts` sets it. A case stops
at its first failing step: later steps depend on the state the earlier built.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dsl.diagnostics import PolicyError, render_all
from dsl.load import POLICY_SUFFIX
from dsl.parser import parse_duration
from policy_engine.context import Context, RequestContext, describe_validation_error
from policy_engine.decision import Decision
from policy_engine.engine import Engine
from policy_engine.policyset import PolicySet, load_policy_set
from policy_engine.state.factory import open_store

TEST_SUFFIXES = (".test.yaml", ".test.yml")
TESTS_DIR = "tests"
DEFAULT_START = 1_764_300_000.0   # the clock of a case that names no time
MAX_REPEAT = 100_000
TEST_STORE = "memory://?max_keys=100000&max_receipts=100000"  # each case gets a fresh one
SECTIONS = ("request", "account", "api_key", "client")


# ------------------------------------------------------------------ file model


def _seconds(v: Any) -> float:
    """A duration: a number of seconds or a policy duration such as `30s`, `5m`."""
    if isinstance(v, bool):
        raise ValueError("expected a duration such as 30s, or a number of seconds")
    if isinstance(v, (int, float)):
        if v < 0:
            raise ValueError("a duration cannot be negative")
        return float(v)
    if isinstance(v, str) and re.fullmatch(r"\d+(\.\d+)?(ms|s|m|h|d|w)", v.strip()):
        return parse_duration(v.strip())
    raise ValueError(f"{v!r} is not a duration: write e.g. 500ms, 30s, 5m, 1h, 1d or a number of seconds")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MeasureBound(_Model):
    """`{at_least: 4}`, `{at_most: 10}` or both: a range for a measure's value."""

    at_least: float | None = None
    at_most: float | None = None

    @model_validator(mode="after")
    def _some_bound(self) -> "MeasureBound":
        if self.at_least is None and self.at_most is None:
            raise ValueError("give at_least, at_most or both")
        return self

    def holds(self, v: float | None) -> bool:
        return v is not None and (self.at_least is None or v >= self.at_least) and (
            self.at_most is None or v <= self.at_most)

    def show(self) -> dict[str, float]:
        return {k: v for k, v in (("at_least", self.at_least), ("at_most", self.at_most)) if v is not None}


# A measure's expected value: exact (a number, or null for a measure whose key
# is null or whose store failed) or a range.
MeasureExpect = float | MeasureBound | None


def measure_matches(want: MeasureExpect, got: float | None) -> bool:
    if isinstance(want, MeasureBound):
        return want.holds(got)
    if want is None or got is None:
        return want is got
    return abs(got - want) <= 1e-9 * max(1.0, abs(want))  # sliding windows give fractions


class Expect(_Model):
    """What a step's decision must be. Lists are 'contains', headers a subset,
    measures a subset (each exact or within bounds)."""

    effect: Literal["allow", "flag", "throttle", "deny"]
    status: int | None = None
    reason: str | None = None
    rules: list[str] | None = None
    shadow_rules: list[str] | None = None
    flags: list[str] | None = None
    headers: dict[str, str] | None = None
    measures: dict[str, MeasureExpect] | None = None

    @field_validator("headers", mode="before")
    @classmethod
    def _header_text(cls, v: Any) -> Any:
        # `retry-after: 57` in YAML is an int; headers are text on the wire.
        if isinstance(v, dict):
            return {str(k).lower(): str(x) for k, x in v.items()}
        return v


class Usage(_Model):
    prompt_tokens: int | None = Field(default=None, ge=0)
    completion_tokens: int | None = Field(default=None, ge=0)


class Step(_Model):
    name: str | None = None
    request: dict[str, Any] | None = None
    account: dict[str, Any] | None = None
    api_key: dict[str, Any] | None = None
    client: dict[str, Any] | None = None
    usage: Usage | None = None           # reported after the step (engine.report_sync)
    repeat: int = Field(default=1, ge=1, le=MAX_REPEAT)
    every: float = 0.0                   # clock advance between repetitions
    after: float = 0.0                   # clock advance before the step
    expect: Expect | None = None         # None: the step only builds state

    @field_validator("every", "after", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float:
        return _seconds(v)

    @field_validator("expect", mode="before")
    @classmethod
    def _effect_only(cls, v: Any) -> Any:
        return {"effect": v} if isinstance(v, str) else v


class Case(_Model):
    name: str
    defaults: dict[str, Any] | None = None
    start: float | None = None
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _single_step(cls, data: Any) -> Any:
        """A case without `steps` is one step: its other keys are the step's."""
        if isinstance(data, dict) and "steps" not in data:
            own = {k: data[k] for k in ("name", "defaults", "start") if k in data}
            step = {k: v for k, v in data.items() if k not in own}
            return {**own, "steps": [step]}
        return data


class TestFile(_Model):
    policy: str | None = None            # the policy folder or file, relative to this file
    defaults: dict[str, Any] | None = None
    cases: list[Case] = Field(min_length=1)

    @field_validator("defaults")
    @classmethod
    def _sections(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is not None:
            unknown = sorted(set(v) - set(SECTIONS))
            if unknown:
                raise ValueError(f"unknown section {unknown[0]!r}: defaults take {', '.join(SECTIONS)}")
        return v


# -------------------------------------------------------- YAML with line numbers


class _LineDict(dict):  # type: ignore[type-arg]
    line = 0


class _LineList(list):  # type: ignore[type-arg]
    line = 0


class _Loader(yaml.SafeLoader):
    """A safe loader whose mappings and sequences remember their line."""


def _map(loader: _Loader, node: yaml.MappingNode) -> Iterable[_LineDict]:
    d = _LineDict()
    d.line = node.start_mark.line + 1
    yield d
    d.update(loader.construct_mapping(node))


def _seq(loader: _Loader, node: yaml.SequenceNode) -> Iterable[_LineList]:
    s = _LineList()
    s.line = node.start_mark.line + 1
    yield s
    s.extend(loader.construct_sequence(node))


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _map)  # type: ignore[arg-type]
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _seq)  # type: ignore[arg-type]


def _line_at(raw: Any, loc: Iterable[Any]) -> int:
    """The line of the deepest YAML node on `loc` (a pydantic error location)."""
    line = getattr(raw, "line", 1) or 1
    node = raw
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            continue  # a part the model added (a one-step case's `steps`): skip it
        line = getattr(node, "line", line) or line
    return line


# --------------------------------------------------------------------- results


@dataclass
class Mismatch:
    field: str
    expected: Any
    actual: Any
    how: str = "equal"    # equal | contains | subset


@dataclass
class StepFailure:
    step: int                  # 1-based
    line: int
    repetition: int            # 1-based
    repeat: int
    ts: float
    name: str | None
    mismatches: list[Mismatch]
    decision: Decision | None
    error: str | None = None   # an invalid request context


@dataclass
class CaseResult:
    file: str
    line: int
    name: str
    seconds: float
    failure: StepFailure | None = None

    @property
    def passed(self) -> bool:
        return self.failure is None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class FileError:
    file: str
    line: int
    message: str


@dataclass
class Coverage:
    """Which rules, limits and measures of one policy any step exercised: a rule
    matched, a limit over, a measure whose value a step expects or that an
    exercised rule, limit or measure reads."""

    policy: str
    items: list[tuple[str, str, str]]            # (kind, id, "file:line")
    exercised: set[str] = field(default_factory=set)
    reads: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> measures it reads

    @property
    def covered(self) -> set[str]:
        return covered_ids(self.exercised, self.reads)

    @property
    def missing(self) -> list[tuple[str, str, str]]:
        covered = self.covered
        return [it for it in self.items if it[1] not in covered]


def covered_ids(exercised: set[str], reads: dict[str, dict[str, Any]]) -> set[str]:
    """`exercised`, plus every measure they read, directly or through other measures."""
    out = set(exercised)
    todo = list(exercised)
    while todo:
        for name in reads.get(todo.pop(), ()):
            if name not in out:
                out.add(name)
                todo.append(name)
    return out


@dataclass
class SuiteResult:
    files: list[str] = field(default_factory=list)
    cases: list[CaseResult] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    coverage: dict[str, Coverage] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def failed(self) -> list[CaseResult]:
        return [c for c in self.cases if not c.passed]

    @property
    def ok(self) -> bool:
        return not self.errors and not self.failed and bool(self.cases)


# ------------------------------------------------------------------- discovery


def is_test_file(p: Path) -> bool:
    if p.name.endswith(TEST_SUFFIXES):
        return True
    return p.suffix in (".yaml", ".yml") and p.parent.name == TESTS_DIR and _has_policies(p.parent.parent)


def _has_policies(d: Path) -> bool:
    return d.is_dir() and any(f.is_file() for f in d.glob(f"*{POLICY_SUFFIX}"))


def discover(paths: Iterable[Path]) -> list[Path]:
    """Test files named, or found under folders, or beside named `.policy` files."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found.extend(f for f in sorted(p.rglob("*.y*ml")) if f.is_file() and is_test_file(f))
        elif p.suffix == POLICY_SUFFIX:
            d = p.parent
            beside = list(d.glob("*.y*ml")) + list((d / TESTS_DIR).glob("*.y*ml"))
            found.extend(f for f in sorted(beside) if f.is_file() and is_test_file(f))
        else:
            found.append(p)
    seen: set[Path] = set()
    out = []
    for f in found:
        r = f.resolve()
        if r not in seen:
            seen.add(r)
            out.append(f)
    return out


def policy_target(test_file: Path, declared: str | None) -> Path:
    """The policy a test file runs against: `policy:` if given, else its folder
    (or the parent of a `tests/` folder)."""
    if declared is not None:
        return test_file.parent / declared
    d = test_file.parent
    if not _has_policies(d) and _has_policies(d.parent):
        return d.parent
    return d


# --------------------------------------------------------------------- running


class Runner:
    def __init__(self, *, coverage: bool = False) -> None:
        self.coverage = coverage
        self._policies: dict[Path, PolicySet | str] = {}
        self.result = SuiteResult()

    def run(self, paths: Iterable[Path]) -> SuiteResult:
        t0 = time.perf_counter()
        for f in discover(paths):
            self.run_file(f)
        self.result.seconds = time.perf_counter() - t0
        return self.result

    def run_file(self, path: Path) -> None:
        name = str(path)
        self.result.files.append(name)
        parsed = self._parse(path)
        if parsed is None:
            return
        tf, raw = parsed
        target = policy_target(path, tf.policy)
        policy = self._policy(target)
        if isinstance(policy, str):
            self.result.errors.append(FileError(name, _line_at(raw, ("policy",)), policy))
            return
        unknown = _unknown_measures(tf, raw, policy)
        if unknown is not None:
            self.result.errors.append(FileError(name, *unknown))
            return
        cov = self._coverage_for(target, policy)
        for i, case in enumerate(tf.cases):
            case_raw = raw["cases"][i]
            result, exercised = run_case(policy, case, tf.defaults, name, case_raw)
            self.result.cases.append(result)
            if cov is not None:
                cov.exercised |= exercised

    def _parse(self, path: Path) -> tuple[TestFile, Any] | None:
        name = str(path)
        try:
            raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
        except OSError as e:
            self.result.errors.append(FileError(name, 1, f"cannot read test file: {e}"))
            return None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = mark.line + 1 if mark is not None else 1
            self.result.errors.append(FileError(name, line, f"invalid YAML: {e}"))
            return None
        try:
            return TestFile.model_validate(raw), raw
        except ValidationError as e:
            first = e.errors()[0]
            line = _line_at(raw, first["loc"])
            self.result.errors.append(FileError(name, line, "invalid test file\n" + describe_validation_error(e)))
            return None

    def _policy(self, target: Path) -> PolicySet | str:
        key = target.resolve()
        if key not in self._policies:
            if not target.exists():
                self._policies[key] = f"policy {target} not found"
            else:
                try:
                    self._policies[key] = load_policy_set([target])
                except PolicyError as e:
                    self._policies[key] = f"policy {target} does not load:\n{render_all(e.diagnostics)}"
        return self._policies[key]

    def _coverage_for(self, target: Path, policy: PolicySet) -> Coverage | None:
        if not self.coverage:
            return None
        key = str(target)
        if key not in self.result.coverage:
            items = [("rule", r.id, f"{r.span.source.name}:{r.span.line}") for r in policy.rules]
            items += [("limit", lim.id, f"{lim.span.source.name}:{lim.span.line}") for lim in policy.limits]
            items += [("measure", m.id, f"{m.span.source.name}:{m.span.line}") for m in policy.compiled.measures]
            self.result.coverage[key] = Coverage(key, items, reads=policy.checked.measure_reads)
        return self.result.coverage[key]


def _unknown_measures(tf: TestFile, raw: Any, policy: PolicySet) -> tuple[int, str] | None:
    """(line, message) for the first `expect.measures` entry naming no measure of the policy."""
    from dsl.diagnostics import did_you_mean

    names = [m.id for m in policy.compiled.measures]
    for ci, case in enumerate(tf.cases):
        for si, step in enumerate(case.steps):
            for name in (step.expect.measures or {}) if step.expect is not None else {}:
                if name not in names:
                    line = _line_at(raw, ("cases", ci, "steps", si, "expect", "measures"))
                    hint = did_you_mean(name, names) or ("measures: " + ", ".join(names) if names
                                                         else "the policy has no measures")
                    return line, f"expect.measures: unknown measure `{name}` ({hint})"
    return None


def _merge(base: dict[str, Any], over: dict[str, Any] | None) -> dict[str, Any]:
    """Section-wise merge: a step's field replaces the default's, others stay."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for sec, fields in (over or {}).items():
        if isinstance(fields, dict) and isinstance(out.get(sec), dict):
            out[sec].update(fields)
        else:
            out[sec] = dict(fields) if isinstance(fields, dict) else fields
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "case"


def run_case(
    policy: PolicySet, case: Case, file_defaults: dict[str, Any] | None, file: str, raw: Any
) -> tuple[CaseResult, set[str]]:
    """Run one case on a fresh memory store; return its result and the ids it exercised."""
    t0 = time.perf_counter()
    engine = Engine(policy, open_store(TEST_STORE))
    defaults = _merge(_merge({}, file_defaults), case.defaults)
    now = case.start if case.start is not None else float((defaults.get("request") or {}).get("ts") or DEFAULT_START)
    exercised: set[str] = set()
    result = CaseResult(file, getattr(raw, "line", 1), case.name, 0.0)
    raw_steps = raw.get("steps") if isinstance(raw, dict) else None
    for si, step in enumerate(case.steps, 1):
        step_line = getattr(raw_steps[si - 1], "line", result.line) if raw_steps else result.line
        own = {s: getattr(step, s) for s in SECTIONS if getattr(step, s) is not None}
        merged = _merge(defaults, own)
        now += step.after
        if "ts" in (own.get("request") or {}):
            now = float(own["request"]["ts"])
        for rep in range(1, step.repeat + 1):
            if rep > 1:
                now += step.every
            fail = _run_step(engine, merged, now, step, (si, step_line, rep, case.name), exercised)
            if fail is not None:
                result.failure = fail
                result.seconds = time.perf_counter() - t0
                return result, exercised
    result.seconds = time.perf_counter() - t0
    return result, exercised


def _run_step(
    engine: Engine, merged: dict[str, Any], now: float, step: Step, where: tuple[int, int, int, str],
    exercised: set[str],
) -> StepFailure | None:
    si, line, rep, case_name = where
    req = dict(merged.get("request") or {})
    req["ts"] = now
    if "id" not in req:
        req["id"] = f"{_slug(case_name)}-{si}-{rep}"
    elif step.repeat > 1:
        req["id"] = f"{req['id']}-{rep}"
    merged = {**merged, "request": req}
    try:
        ctx = Context.from_model(RequestContext.model_validate(merged))
    except ValidationError as e:
        return StepFailure(si, line, rep, step.repeat, now, step.name, [], None,
                           "invalid request context\n" + describe_validation_error(e))
    d = engine.decide_sync(ctx, now)
    exercised.update(d.rules)
    exercised.update(d.shadow_rules)
    if step.expect is not None and step.expect.measures:
        exercised.update(step.expect.measures)
    if step.usage is not None:
        engine.report_sync(req["id"], step.usage.prompt_tokens, step.usage.completion_tokens, now)
    if step.expect is None:
        return None
    mism = compare(step.expect, d)
    if not mism:
        return None
    return StepFailure(si, line, rep, step.repeat, now, step.name, mism, d)


def compare(exp: Expect, d: Decision) -> list[Mismatch]:
    out: list[Mismatch] = []
    if exp.effect != d.effect.label:
        out.append(Mismatch("effect", exp.effect, d.effect.label))
    if exp.status is not None and exp.status != d.status:
        out.append(Mismatch("status", exp.status, d.status))
    if exp.reason is not None and exp.reason != d.reason:
        out.append(Mismatch("reason", exp.reason, d.reason))
    for name, want, got in (
        ("rules", exp.rules, d.rules),
        ("shadow_rules", exp.shadow_rules, d.shadow_rules),
        ("flags", exp.flags, d.flags),
    ):
        if want is not None and not set(want) <= set(got):
            out.append(Mismatch(name, want, list(got), "contains"))
    if exp.headers is not None:
        got_h = {k.lower(): v for k, v in d.headers.items()}
        if any(got_h.get(k) != v for k, v in exp.headers.items()):
            out.append(Mismatch("headers", exp.headers, {k: got_h.get(k) for k in exp.headers}, "subset"))
    if exp.measures is not None:
        got_m = {m.measure: m.value for m in d.measures}
        if any(not measure_matches(want, got_m.get(k)) for k, want in exp.measures.items()):
            want_shown = {k: w.show() if isinstance(w, MeasureBound) else w for k, w in exp.measures.items()}
            out.append(Mismatch("measures", want_shown, {k: got_m.get(k) for k in exp.measures}, "subset"))
    return out


def run_tests(paths: Iterable[Path], *, coverage: bool = False) -> SuiteResult:
    return Runner(coverage=coverage).run(paths)


# ------------------------------------------------------------------- reporting


def _show(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else str(round(v, 4))
    if isinstance(v, list):
        return "[" + ", ".join(_show(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_show(x)}" for k, x in v.items()) + "}"
    return str(v)


def _ts(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.3f}"


def describe_failure(c: CaseResult) -> list[str]:
    """The failure of one case: where, expected vs actual per field, the decision."""
    f = c.failure
    assert f is not None
    step = f"step {f.step}" + (f" ({f.name})" if f.name else "")
    rep = f", request {f.repetition} of {f.repeat}" if f.repeat > 1 else ""
    lines = [f"{step} at {c.file}:{f.line}{rep}, ts {_ts(f.ts)}:"]
    if f.error:
        lines += ["  " + x for x in f.error.splitlines()]
        return lines
    for m in f.mismatches:
        label = {"equal": "expected", "contains": "expected to contain", "subset": "expected to include"}[m.how]
        width = max(len(label), len("actual"))
        lines.append(f"  {m.field}:")
        lines.append(f"    - {label:<{width}}  {_show(m.expected)}")
        lines.append(f"    + {'actual':<{width}}  {_show(m.actual)}")
    if f.decision is not None:
        lines.append("  decision: " + summarize(f.decision))
    return lines


def summarize(d: Decision) -> str:
    parts = [f"{d.effect.label} {d.status}"]
    if d.reason:
        parts.append(f'reason "{d.reason}"')
    parts.append("rules " + _show(d.rules))
    if d.shadow_rules:
        parts.append("shadow " + _show(d.shadow_rules))
    for s in d.limits:
        used = int(s.used) if float(s.used).is_integer() else round(s.used, 2)
        mx = int(s.max) if float(s.max).is_integer() else round(s.max, 2)
        parts.append(f"{s.limit}[{s.key}] {used}/{mx}{' over' if s.over else ''}")
    for m in d.measures:
        parts.append(f"measures.{m.measure}[{m.key}] {_show(m.value)}{'' if m.charged else ' (read)'}")
    return "; ".join(parts)


def render_text(res: SuiteResult, *, coverage: bool = False) -> str:
    out: list[str] = []
    by_file: dict[str, list[CaseResult]] = {}
    for c in res.cases:
        by_file.setdefault(c.file, []).append(c)
    for file in res.files:
        cases = by_file.get(file, [])
        errs = [e for e in res.errors if e.file == file]
        out.append(file)
        for c in cases:
            out.append(f"  {'PASS' if c.passed else 'FAIL'}  {c.name}  ({c.where})")
        for e in errs:
            out.append(f"  ERROR {e.file}:{e.line}: {e.message.splitlines()[0]}")
    if res.errors or res.failed:
        out.append("")
        out.append(" FAILURES ".center(72, "="))
    for e in res.errors:
        out.append("")
        out.append(f"___ {e.file}:{e.line} ___")
        out.extend(e.message.splitlines())
    for c in res.failed:
        out.append("")
        out.append(f"___ {c.where}: {c.name} ___")
        out.extend(describe_failure(c))
    if coverage:
        out.append("")
        out.extend(render_coverage(res))
    out.append(summary_line(res))
    return "\n".join(out) + "\n"


def render_coverage(res: SuiteResult) -> list[str]:
    out = [" coverage ".center(72, "=")]
    for cov in res.coverage.values():
        missing = cov.missing
        done = len(cov.items) - len(missing)
        what = "rules, limits and measures" if any(k == "measure" for k, _, _ in cov.items) else "rules and limits"
        out.append(f"{cov.policy}: {done}/{len(cov.items)} {what} exercised")
        for kind, ident, where in missing:
            out.append(f"  never {_NEVER[kind]}: {kind} {ident}  ({where})")
    return out


_NEVER = {"rule": "matched", "limit": "exceeded", "measure": "read"}


def summary_line(res: SuiteResult) -> str:
    passed = len(res.cases) - len(res.failed)
    parts = []
    if res.failed:
        parts.append(f"{len(res.failed)} failed")
    parts.append(f"{passed} passed")
    if res.errors:
        parts.append(f"{len(res.errors)} error{'s' * (len(res.errors) != 1)}")
    if not res.cases and not res.errors:
        parts = ["no test cases found"]
    return f" {', '.join(parts)} in {res.seconds:.2f}s ".center(72, "=")


def render_junit(res: SuiteResult) -> str:
    """JUnit XML, one <testsuite> per test file, for CI test reports."""
    import xml.etree.ElementTree as ET

    root = ET.Element("testsuites", name="policyctl test", tests=str(len(res.cases)),
                      failures=str(len(res.failed)), errors=str(len(res.errors)), time=f"{res.seconds:.3f}")
    for file in res.files:
        cases = [c for c in res.cases if c.file == file]
        errs = [e for e in res.errors if e.file == file]
        suite = ET.SubElement(
            root, "testsuite", name=file, tests=str(len(cases) + len(errs)),
            failures=str(sum(not c.passed for c in cases)), errors=str(len(errs)),
            time=f"{sum(c.seconds for c in cases):.3f}",
        )
        for c in cases:
            tc = ET.SubElement(suite, "testcase", classname=file, name=c.name, file=file, line=str(c.line),
                               time=f"{c.seconds:.3f}")
            if c.failure is not None:
                f = c.failure
                what = f.error.splitlines()[0] if f.error else "wrong " + ", ".join(m.field for m in f.mismatches)
                el = ET.SubElement(tc, "failure", message=f"step {f.step}: {what}")
                el.text = "\n".join(describe_failure(c))
        for e in errs:
            tc = ET.SubElement(suite, "testcase", classname=file, name=f"{file}:{e.line}", file=file, line=str(e.line))
            el = ET.SubElement(tc, "error", message=e.message.splitlines()[0])
            el.text = e.message
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# ------------------------------------------------------------ lint: W0308


@dataclass(frozen=True)
class ExercisedBlocks:
    """What the test files beside a policy exercise: rule, limit and measure names."""

    exercised: frozenset[str]
    test_files: int


def tested_names(paths: list[Path]) -> ExercisedBlocks | None:
    """Run the tests beside the policy (read from disk) for their coverage; None when
    there are none, or none could run (they report their own errors under `policyctl test`)."""
    tests = discover(paths)
    if not tests:
        return None
    res = Runner(coverage=True).run(tests)
    if not res.coverage:
        return None
    exercised: set[str] = set().union(*(c.exercised for c in res.coverage.values()))
    return ExercisedBlocks(frozenset(exercised), len(tests))


def untested(checked: Any, paths: list[Path]) -> list[Any]:
    """W0308 for each rule, limit and measure that no test beside the policy
    exercises (a measure: no step expects its value and nothing exercised reads it).

    Only when test files are found there (a policy without tests is not
    warned about rule by rule); honours `# policy: ignore[W0308]`.
    """
    cov = tested_names(paths)
    return [] if cov is None else untested_in(checked, cov)


def untested_in(checked: Any, cov: ExercisedBlocks) -> list[Any]:
    """W0308 against a coverage already computed (the language server keeps one per folder)."""
    from dsl.diagnostics import Diagnostic, Severity, without_suppressed

    n = cov.test_files
    exercised = covered_ids(set(cov.exercised), checked.measure_reads)
    out = []
    for kind, blocks in (("rule", checked.rules), ("limit", checked.limits), ("measure", checked.measures)):
        for b in blocks:
            if b.name in exercised:
                continue
            verb = {"rule": "matches", "limit": "exceeds", "measure": "reads"}[kind]
            out.append(Diagnostic(
                "W0308", f"{kind} `{b.name}` has no test: no step of {n} test file"
                f"{'s' * (n != 1)} beside it {verb} it", b.span, Severity.WARNING,
                "add a case to a *.test.yaml file that expects it (see `policyctl test --coverage`)",
            ))
    return without_suppressed(out, checked.modules)
