"""Load a policy from files or folders: parse every `.policy` file, check them
together (one namespace across a folder), and return every diagnostic."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

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


def load(
    paths: list[Path], base_dir: Path | None = None, overlay: Mapping[Path, str] | None = None
) -> tuple[CheckedPolicy, list[Diagnostic]]:
    """Parse and check. `base_dir` is where data paths resolve (default: each file's folder).
    `overlay` maps resolved paths to text that replaces the file on disk; an overlay
    file inside a folder of `paths` that is not on disk yet joins that policy."""
    files = policy_files(paths)
    if overlay:
        files = _with_unsaved(paths, files, overlay)
    modules, diags = parse_files(files, overlay)
    for f in escaping_files(paths):
        diags.append(Diagnostic("E0214", "policy file is a link that leaves the policy folder; not read", None,
                                file=str(f)))
    if base_dir is None and len(paths) == 1 and paths[0].is_dir():
        base_dir = paths[0]
    checked, cdiags = check(modules, base_dir)
    all_diags = sorted(diags + cdiags, key=Diagnostic.sort_key)
    return checked, all_diags
