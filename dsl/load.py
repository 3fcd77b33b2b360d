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
    for f in escaping_files(paths):
        diags.append(Diagnostic("E0214", "policy file is a link that leaves the policy folder; not read", None,
                                file=str(f)))
    if base_dir is None and len(paths) == 1 and paths[0].is_dir():
        base_dir = paths[0]
    checked, cdiags = check(modules, base_dir)
    all_diags = sorted(diags + cdiags, key=Diagnostic.sort_key)
    return checked, all_diags
