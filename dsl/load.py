"""Load a policy from files or folders: parse every `.policy` file, check them
together (one namespace across a folder), and return every diagnostic."""

from __future__ import annotations

from pathlib import Path

from dsl import ast as A
from dsl.checker import CheckedPolicy, check
from dsl.diagnostics import Diagnostic
from dsl.parser import parse

POLICY_SUFFIX = ".policy"


def policy_files(paths: list[Path]) -> list[Path]:
    """The `.policy` files named or found (recursively, sorted) under `paths`."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob(f"*{POLICY_SUFFIX}") if f.is_file()))
        else:
            out.append(p)
    return out


def parse_files(files: list[Path]) -> tuple[list[A.Module], list[Diagnostic]]:
    modules: list[A.Module] = []
    diags: list[Diagnostic] = []
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            diags.append(Diagnostic("E0214", f"cannot read policy file: {e}", None, file=str(f)))
            continue
        module, ds = parse(text, str(f))
        modules.append(module)
        diags.extend(ds)
    return modules, diags


def load(paths: list[Path], base_dir: Path | None = None) -> tuple[CheckedPolicy, list[Diagnostic]]:
    """Parse and check. `base_dir` is where data paths resolve (default: each file's folder)."""
    files = policy_files(paths)
    modules, diags = parse_files(files)
    if base_dir is None and len(paths) == 1 and paths[0].is_dir():
        base_dir = paths[0]
    checked, cdiags = check(modules, base_dir)
    all_diags = sorted(diags + cdiags, key=Diagnostic.sort_key)
    return checked, all_diags
