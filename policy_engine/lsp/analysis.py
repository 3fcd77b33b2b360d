"""One check of one policy, as the editor sees it.

A policy is a folder: lets, data lists and rules are shared by its files, so a
file is checked together with the rest of its folder, the editor's unsaved
buffers standing in for the files on disk. The check is lint's own
(`lint_policy`): same codes, same spans.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Iterable, Mapping

from dsl import ast as A
from dsl.checked import CheckedPolicy
from dsl.checker import check
from dsl.diagnostics import Diagnostic
from dsl.load import POLICY_SUFFIX
from dsl.parser import parse
from policy_engine.cli.lint import lint_policy
from policy_engine.testing import ExercisedBlocks


@dataclass
class Analysis:
    root: Path | None  # None: a buffer with no file behind it
    checked: CheckedPolicy
    diagnostics: list[Diagnostic]
    modules: dict[str, A.Module] = field(default_factory=dict)  # resolved path (or URI) -> module

    def module(self, key: str) -> A.Module | None:
        return self.modules.get(key)

    def is_current(self, key: str, text: str) -> bool:
        """Whether this check read `text` for that file (line ends normalised)."""
        m = self.modules.get(key)
        return m is not None and m.source.text == text

    @property
    def data_decls(self) -> dict[str, A.Data]:
        out: dict[str, A.Data] = {}
        for m in self.checked.modules:
            for d in m.decls:
                if isinstance(d, A.Data):
                    out.setdefault(d.name, d)
        return out


def has_policy_files(folder: Path) -> bool:
    try:
        return any(f.suffix == POLICY_SUFFIX and f.is_file() for f in folder.iterdir())
    except OSError:
        return False


def policy_root(file: Path, stops: Iterable[Path] = ()) -> Path:
    """The folder a policy file belongs to: its own, or the highest one above it
    reached through folders that hold `.policy` files themselves (a policy's
    subfolders are part of it), never above a workspace folder."""
    stop = {s.resolve() for s in stops}
    root = file.resolve().parent
    while root not in stop and root.parent != root and has_policy_files(root.parent):
        root = root.parent
    return root


def analyze_folder(root: Path, overlay: Mapping[Path, str], tested: ExercisedBlocks | None) -> Analysis:
    """Lint the policy folder `root` with `overlay` (resolved path -> unsaved text);
    `tested` is the last coverage of its tests, for W0308 (None: not known)."""
    checked, diags = lint_policy(root, overlay, tested=lambda _: tested)
    modules = {str(Path(m.source.name).resolve()): m for m in checked.modules}
    return Analysis(root, checked, diags, modules)


def analyze_buffer(key: str, text: str) -> Analysis:
    """Check a buffer that is not a file (e.g. an untitled editor): alone, data
    paths unresolvable."""
    module, diags = parse(text, key)
    checked, cdiags = check([module], None)
    return Analysis(None, checked, sorted(diags + cdiags, key=Diagnostic.sort_key), {key: module})
