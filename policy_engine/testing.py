"""Policy tests: YAML cases run against a policy on a simulated clock.

The format is documented in docs/testing.md; policy_engine/testfile.py reads it.
A test file (`*.test.yaml`, or any `.yaml` in a `tests/` folder beside the
`.policy` files) holds cases; a case is a sequence of steps. Each step is a
request context (sections `request`, `account`,
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
by `every` between repetitions; a step's `at` or own `request.ts` sets it. A case stops
at its first failing step: later steps depend on the state the earlier built.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Iterable

from pydantic import ValidationError

from dsl.ast import Source
from dsl.diagnostics import Diagnostic, PolicyError, did_you_mean, render_all
from dsl.load import POLICY_SUFFIX
from policy_engine.context import Context, RequestContext, describe_validation_error
from policy_engine.decision import Decision
from policy_engine.engine import Engine
from policy_engine.ingress.usage import Usage as UsageReport
from policy_engine.policyset import PolicySet, load_policy_set
from policy_engine.state.factory import open_store
from policy_engine.testfile import (
    T_POLICY,
    T_UNKNOWN_NAME,
    T_YAML,
    Case,
    Expect,
    Sections,
    Step,
    TestFile,
    TestFileText,
    read,
    sections_given,
    show_expected,
    value_matches,
)

TEST_SUFFIXES = (".test.yaml", ".test.yml")
TESTS_DIR = "tests"
DEFAULT_START = 1_764_300_000.0  # the clock of a case that names no time
TEST_STORE = "memory://?max_keys=100000&max_receipts=100000"  # each case gets a fresh one


# --------------------------------------------------------------------- results


@dataclass
class Mismatch:
    field: str
    expected: Any
    actual: Any
    how: str = "equal"  # equal | contains | subset | exactly


@dataclass
class StepFailure:
    step: int  # 1-based
    line: int
    repetition: int  # 1-based
    repeat: int
    ts: float
    name: str | None
    mismatches: list[Mismatch]
    decision: Decision | None
    error: str | None = None  # an invalid request context


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
    """A test file that cannot run: the problem, where the author wrote it, and
    (for a policy that does not load) the policy's own diagnostics."""

    file: str
    diagnostic: Diagnostic
    detail: str = ""

    @property
    def line(self) -> int:
        return self.diagnostic.line

    @property
    def where(self) -> str:
        return f"{self.diagnostic.filename}:{self.diagnostic.line}:{self.diagnostic.column}"

    @property
    def message(self) -> str:
        return self.diagnostic.message

    def render(self) -> str:
        return self.diagnostic.render() + (f"\n\n{self.detail}" if self.detail else "")


@dataclass
class Coverage:
    """Which rules, limits and measures of one policy any step exercised: a rule
    matched, a limit over, a measure whose value a step expects or that an
    exercised rule, limit or measure reads."""

    policy: str
    items: list[tuple[str, str, str]]  # (kind, id, "file:line")
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
        self._policies: dict[Path, PolicySet | FileError] = {}
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
        tf, f = self._parse(path)
        if tf is None:
            return
        target = policy_target(path, tf.policy)
        policy = self._policy(target)
        if isinstance(policy, FileError):
            d = policy.diagnostic
            # At the `policy:` key that names it; a policy found beside the file has no place in it.
            at = f.diag(d.code, d.message, ["policy"]) if tf.policy else Diagnostic(d.code, d.message, None, file=name)
            self.result.errors.append(FileError(name, at, policy.detail))
            return
        unknown = unknown_names(tf, f, policy)
        if unknown:
            self.result.errors.extend(FileError(name, d) for d in unknown)
            return
        cov = self._coverage_for(target, policy)
        for i, case in enumerate(tf.cases):
            result, exercised = run_case(policy, case, tf.defaults, name, f.raw["cases"][i])
            self.result.cases.append(result)
            if cov is not None:
                cov.exercised |= exercised

    def _parse(self, path: Path) -> tuple[TestFile | None, TestFileText]:
        name = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            f = TestFileText(Source(name, ""))
            self.result.errors.append(
                FileError(name, Diagnostic(T_YAML, f"cannot read test file: {e}", None, file=name))
            )
            return None, f
        tf, f, problems = read(name, text)
        self.result.errors.extend(FileError(name, d) for d in problems)
        return tf, f

    def _policy(self, target: Path) -> PolicySet | FileError:
        key = target.resolve()
        if key not in self._policies:
            self._policies[key] = _load_policy(target)
        return self._policies[key]

    def _coverage_for(self, target: Path, policy: PolicySet) -> Coverage | None:
        if not self.coverage:
            return None
        key = str(target)
        if key not in self.result.coverage:
            items = [("rule", r.id, f"{r.span.source.name}:{r.span.line}") for r in policy.rules]
            items += [("limit", lim.id, f"{lim.span.source.name}:{lim.span.line}") for lim in policy.limits]
            items += [("measure", m.id, f"{m.span.source.name}:{m.span.line}") for m in policy.compiled.measures]
            items += [("exemption", x.id, f"{x.span.source.name}:{x.span.line}") for x in policy.compiled.exempts]
            self.result.coverage[key] = Coverage(key, items, reads=policy.checked.measure_reads)
        return self.result.coverage[key]


def _load_policy(target: Path) -> PolicySet | FileError:
    if not target.exists():
        return FileError(str(target), Diagnostic(T_POLICY, f"policy {target} not found", None, file=str(target)), "")
    try:
        return load_policy_set([target])
    except PolicyError as e:
        n = len(e.diagnostics)
        return FileError(
            str(target),
            Diagnostic(T_POLICY, f"policy {target} does not load: {n} error{'s' * (n != 1)}", None, file=str(target)),
            render_all(e.diagnostics),
        )


def unknown_names(tf: TestFile, f: TestFileText, policy: PolicySet) -> list[Diagnostic]:
    """T0405 for each rule, limit, measure or exemption an expectation names that the policy lacks."""
    rules = [r.id for r in policy.rules] + [lim.id for lim in policy.limits]
    limits = [lim.id for lim in policy.limits]
    measures = [m.id for m in policy.compiled.measures]
    exempts = [x.id for x in policy.compiled.exempts]
    out: list[Diagnostic] = []

    def check(name: str, known: list[str], what: str, path: list[Any], *, key: bool) -> None:
        if name not in known:
            hint = did_you_mean(name, known) or (
                f"its {what}s: {', '.join(known)}" if known else f"the policy has no {what}s"
            )
            out.append(f.diag(T_UNKNOWN_NAME, f"the policy has no {what} `{name}`", path, hint, key=key))

    for ci, case in enumerate(tf.cases):
        case_raw = f.raw["cases"][ci]
        for si, step in enumerate(case.steps):
            exp = step.expect
            if exp is None:
                continue
            base = ["cases", ci, *(["steps", si] if "steps" in case_raw else []), "expect"]
            for k, names in exp.named_rules():
                for i, n in enumerate(names):
                    check(n, rules, "rule or limit", [*base, k, i], key=False)
            for n in exp.measures or {}:
                check(n, measures, "measure", [*base, "measures", n], key=True)
            for n in exp.limits or {}:
                check(n, limits, "limit", [*base, "limits", n], key=True)
            for i, n in enumerate(exp.exempt or []):
                check(n, exempts, "exemption", [*base, "exempt", i], key=False)
    return out


def _merge(base: dict[str, Any], over: dict[str, Any] | None) -> dict[str, Any]:
    """Section-wise merge: a step's field replaces the default's, others stay."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for sec, fields in (over or {}).items():
        if isinstance(fields, dict) and isinstance(out.get(sec), dict):
            out[sec].update(fields)
        else:
            out[sec] = dict(fields) if isinstance(fields, dict) else fields
    return out


def _given(sections: Sections | None) -> dict[str, dict[str, Any]]:
    return {} if sections is None else sections_given(sections)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "case"


def run_case(
    policy: PolicySet, case: Case, file_defaults: Sections | None, file: str, raw: Any
) -> tuple[CaseResult, set[str]]:
    """Run one case on a fresh memory store; return its result and the ids it exercised."""
    t0 = time.perf_counter()
    engine = Engine(policy, open_store(TEST_STORE))
    defaults = _merge(_merge({}, _given(file_defaults)), _given(case.defaults))
    now = case.start if case.start is not None else float((defaults.get("request") or {}).get("ts") or DEFAULT_START)
    exercised: set[str] = set()
    result = CaseResult(file, getattr(raw, "line", 1), case.name, 0.0)
    raw_steps = raw.get("steps") if isinstance(raw, dict) else None
    for si, step in enumerate(case.steps, 1):
        step_line = getattr(raw_steps[si - 1], "line", result.line) if raw_steps else result.line
        own = sections_given(step)
        merged = _merge(defaults, own)
        now += step.after
        if step.at is not None:
            now = step.at
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
    engine: Engine,
    merged: dict[str, Any],
    now: float,
    step: Step,
    where: tuple[int, int, int, str],
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
        return StepFailure(
            si,
            line,
            rep,
            step.repeat,
            now,
            step.name,
            [],
            None,
            "invalid request context\n" + describe_validation_error(e),
        )
    d = engine.decide_sync(ctx, now)
    exercised.update(d.rules)
    exercised.update(d.exempt)
    exercised.update(d.shadow_rules)
    if step.expect is not None and step.expect.measures:
        exercised.update(step.expect.measures)
    if step.usage is not None:
        # The model that served the call: the one the request asked for, unless the step names it.
        report = UsageReport(**step.usage.model_dump()).with_model(ctx.request_model)
        engine.report_sync(req["id"], report, now)
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
    out += _compare_lists(exp, d)
    if exp.headers is not None:
        got_h = {k.lower(): v for k, v in d.headers.items()}
        if any(got_h.get(k) != v for k, v in exp.headers.items()):
            out.append(Mismatch("headers", exp.headers, {k: got_h.get(k) for k in exp.headers}, "subset"))
    if exp.measures is not None:
        got_m = {m.measure: m.value for m in d.measures}
        if any(not value_matches(want, got_m.get(k)) for k, want in exp.measures.items()):
            want_shown = {k: show_expected(w) for k, w in exp.measures.items()}
            out.append(Mismatch("measures", want_shown, {k: got_m.get(k) for k in exp.measures}, "subset"))
    if exp.limits is not None:
        out += _compare_limits(exp.limits, d)
    return out


def _compare_lists(exp: Expect, d: Decision) -> list[Mismatch]:
    """`rules`, `shadow_rules`, `flags` (contains), their exact forms, `no_rules`."""
    out = []
    for name, want, got in (
        ("rules", exp.rules, d.rules),
        ("shadow_rules", exp.shadow_rules, d.shadow_rules),
        ("flags", exp.flags, d.flags),
    ):
        if want is not None and not set(want) <= set(got):
            out.append(Mismatch(name, want, list(got), "contains"))
    for name, want, got in (
        ("rules_exactly", exp.rules_exactly, d.rules),
        ("shadow_rules_exactly", exp.shadow_rules_exactly, d.shadow_rules),
        ("no_rules", [] if exp.no_rules else None, d.rules),
        ("exempt", exp.exempt, list(d.exempt)),
    ):
        if want is not None and set(want) != set(got):
            out.append(Mismatch(name, want, list(got), "exactly"))
    return out


def _compare_limits(want: dict[str, Any], d: Decision) -> list[Mismatch]:
    """Each limit named: absent when `null` is expected, else its state within what is given."""
    states = {s.limit: s for s in d.limits}
    bad = False
    for name, w in want.items():
        s = states.get(name)
        bad = bad or (s is not None if w is None else s is None or w.mismatched(s))
    if not bad:
        return []
    shown = {k: None if w is None else w.show() for k, w in want.items()}
    actual: dict[str, Any] = {}
    for name, w in want.items():
        s = states.get(name)
        # Of a limit that applied though none was expected to: what it counted.
        fields = list(w.show()) if w is not None else ["key", "used", "max", "over"]
        actual[name] = None if s is None else {k: getattr(s, k) for k in fields}
    return [Mismatch("limits", shown, actual, "subset")]


def run_tests(paths: Iterable[Path], *, coverage: bool = False) -> SuiteResult:
    return Runner(coverage=coverage).run(paths)


# ------------------------------------------------------------------- reporting


def _show(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
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
        label = {
            "equal": "expected",
            "contains": "expected to contain",
            "subset": "expected to include",
            "exactly": "expected exactly",
        }[m.how]
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
            out.append(f"  ERROR {e.where}: {e.message}")
    if res.errors or res.failed:
        out.append("")
        out.append(" FAILURES ".center(72, "="))
    for e in res.errors:
        out.append("")
        out.extend(e.render().splitlines())
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
        if any(k == "exemption" for k, _, _ in cov.items):
            what = what.replace(" and ", ", ") + " and exemptions"
        out.append(f"{cov.policy}: {done}/{len(cov.items)} {what} exercised")
        for kind, ident, where in missing:
            out.append(f"  never {_NEVER[kind]}: {kind} {ident}  ({where})")
    return out


_NEVER = {"rule": "matched", "limit": "exceeded", "measure": "read", "exemption": "matched"}


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

    root = ET.Element(
        "testsuites",
        name="policyctl test",
        tests=str(len(res.cases)),
        failures=str(len(res.failed)),
        errors=str(len(res.errors)),
        time=f"{res.seconds:.3f}",
    )
    for file in res.files:
        cases = [c for c in res.cases if c.file == file]
        errs = [e for e in res.errors if e.file == file]
        suite = ET.SubElement(
            root,
            "testsuite",
            name=file,
            tests=str(len(cases) + len(errs)),
            failures=str(sum(not c.passed for c in cases)),
            errors=str(len(errs)),
            time=f"{sum(c.seconds for c in cases):.3f}",
        )
        for c in cases:
            tc = ET.SubElement(
                suite, "testcase", classname=file, name=c.name, file=file, line=str(c.line), time=f"{c.seconds:.3f}"
            )
            if c.failure is not None:
                f = c.failure
                what = f.error.splitlines()[0] if f.error else "wrong " + ", ".join(m.field for m in f.mismatches)
                el = ET.SubElement(tc, "failure", message=f"step {f.step}: {what}")
                el.text = "\n".join(describe_failure(c))
        for e in errs:
            tc = ET.SubElement(suite, "testcase", classname=file, name=f"{file}:{e.line}", file=file, line=str(e.line))
            el = ET.SubElement(tc, "error", message=f"{e.diagnostic.code}: {e.message}")
            el.text = e.render()
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
    kinds = (("rule", checked.rules), ("limit", checked.limits), ("measure", checked.measures))
    for kind, blocks in (*kinds, ("exemption", checked.exempts)):
        for b in blocks:
            if b.name in exercised:
                continue
            verb = {"rule": "matches", "limit": "exceeds", "measure": "reads", "exemption": "matches"}[kind]
            out.append(
                Diagnostic(
                    "W0308",
                    f"{kind} `{b.name}` has no test: no step of {n} test file{'s' * (n != 1)} beside it {verb} it",
                    b.span,
                    Severity.WARNING,
                    "add a case to a *.test.yaml file that expects it (see `policyctl test --coverage`)",
                )
            )
    return without_suppressed(out, checked.modules)
