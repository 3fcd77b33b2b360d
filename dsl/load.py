"""Load a policy from files or folders as a list of named stages, as OPA's
compiler does: parse every `.policy` file, check them together (one namespace
across a folder), lint; `policy_engine.policyset` adds `compile`. Each stage is
timed; every diagnostic of every stage that ran is returned, sorted by place.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from collections.abc import Callable, Mapping

from dsl import ast as A
from dsl.checked import CheckedPolicy
from dsl.checker import check_policy
from dsl.diagnostics import Diagnostic, without_suppressed
from dsl.parser import parse
from dsl.semantic import analyze

POLICY_SUFFIX = ".policy"
UNUSED = ("W0301", "W0302")  # a let or data list nothing reads


def policy_files(paths: list[Path]) -> list[Path]:
    """The `.policy` files named or found (recursively, sorted) under `paths`.
    A file found in a folder that is a link to somewhere outside it is left
    out (see `escaping_files`): a policy folder never reads beyond itself."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(f for f in _found(p) if _inside(f, p))
        else:
            out.append(p)
    return out


def escaping_files(paths: list[Path]) -> list[Path]:
    """Files found in the folders of `paths` that link outside their folder."""
    return [f for p in paths if p.is_dir() for f in _found(p) if not _inside(f, p)]


def _found(folder: Path) -> list[Path]:
    return sorted(f for f in folder.rglob(f"*{POLICY_SUFFIX}") if f.is_file())


def _inside(f: Path, folder: Path) -> bool:
    root = folder.resolve()
    return root in f.resolve().parents


def _with_unsaved(paths: list[Path], files: list[Path], overlay: Mapping[Path, str]) -> list[Path]:
    known = {f.resolve() for f in files}
    roots = [p.resolve() for p in paths if p.is_dir()]
    extra = [f for f in overlay if f.suffix == POLICY_SUFFIX and f not in known and any(r in f.parents for r in roots)]
    return sorted(files + extra) if extra else files


def parse_files(
    files: list[Path], overlay: Mapping[Path, str] | None = None
) -> tuple[list[A.Module], list[Diagnostic]]:
    """Parse each file; a file whose resolved path is in `overlay` is read from
    there instead of the disk (an editor's unsaved buffer)."""
    modules: list[A.Module] = []
    diags: list[Diagnostic] = []
    for f in files:
        text = overlay.get(f.resolve()) if overlay else None
        if text is None:
            try:
                text = f.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                diags.append(Diagnostic("E0214", f"cannot read policy file: {e}", None, file=str(f)))
                continue
        module, ds = parse(text, str(f))
        modules.append(module)
        diags.extend(ds)
    return modules, diags


@dataclass
class Loading:
    """What the stages of one load read and fill in."""

    paths: list[Path]
    base_dir: Path | None = None  # where data paths resolve (default: a lone folder, else each file's own)
    # Resolved path -> text that replaces the file on disk (an editor's unsaved buffer); an
    # overlay file inside a folder of `paths` that is not on disk yet joins that policy.
    overlay: Mapping[Path, str] | None = None
    modules: list[A.Module] = field(default_factory=list)
    checked: CheckedPolicy | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # stage name -> time it took

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.diagnostics)


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    run: Callable[[Loading], list[Diagnostic]]
    needs_clean: bool = False  # skipped once an earlier stage found an error


L = TypeVar("L", bound=Loading)


def run_stages(state: L, stages: tuple[Stage, ...]) -> L:
    """Run `stages` in order on `state`; warnings a comment turns off are dropped."""
    for stage in stages:
        if stage.needs_clean and state.has_errors:
            continue
        t0 = time.perf_counter()
        state.diagnostics += stage.run(state)
        state.seconds[stage.name] = time.perf_counter() - t0
    state.diagnostics = sorted(without_suppressed(state.diagnostics, state.modules), key=Diagnostic.sort_key)
    return state


def _parse(state: Loading) -> list[Diagnostic]:
    files = policy_files(state.paths)
    if state.overlay:
        files = _with_unsaved(state.paths, files, state.overlay)
    state.modules, diags = parse_files(files, state.overlay)
    for f in escaping_files(state.paths):
        diags.append(
            Diagnostic("E0214", "policy file is a link that leaves the policy folder; not read", None, file=str(f))
        )
    return diags


def _check(state: Loading) -> list[Diagnostic]:
    # Parse errors do not stop it: every broken declaration is reported at once.
    paths = state.paths
    if state.base_dir is None and len(paths) == 1 and paths[0].is_dir():
        state.base_dir = paths[0]
    state.checked, diags = check_policy(state.modules, state.base_dir)
    if state.has_errors:  # a declaration a syntax error dropped may be the one that used a let
        diags = [d for d in diags if d.code not in UNUSED]
    return diags


def _lint(state: Loading) -> list[Diagnostic]:
    assert state.checked is not None
    return analyze(state.checked)


PARSE = Stage("parse", _parse)
CHECK = Stage("check", _check)
LINT = Stage("lint", _lint, needs_clean=True)
FRONT_END = (PARSE, CHECK, LINT)


def load(
    paths: list[Path], base_dir: Path | None = None, overlay: Mapping[Path, str] | None = None
) -> tuple[CheckedPolicy, list[Diagnostic]]:
    """Parse, check and lint (see `Loading` for `base_dir` and `overlay`)."""
    state = run_stages(Loading(paths, base_dir, overlay), FRONT_END)
    assert state.checked is not None
    return state.checked, state.diagnostics
