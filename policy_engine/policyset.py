"""An immutable, compiled policy identified by the hash of its content.

`load_policy_set(paths)` is all-or-nothing: parse, check and compile every
file, or raise `PolicyError` with every diagnostic. A server swaps a new
`PolicySet` in only when this succeeds, so a broken edit is never half-loaded.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from dsl import ast as A
from dsl.checker import CheckedPolicy
from dsl.diagnostics import Diagnostic, PolicyError
from dsl.load import load, policy_files
from policy_engine.compiler import Compiled, LimitInfo, RuleInfo, compile_policy


@dataclass(frozen=True)
class PolicySet:
    name: str
    version: str                 # sha256 of every policy and data file, first 16 hex chars
    files: tuple[str, ...]
    compiled: Compiled
    checked: CheckedPolicy
    warnings: tuple[Diagnostic, ...] = ()
    loaded_at: float = field(default_factory=time.time)

    @property
    def rules(self) -> list[RuleInfo]:
        return self.compiled.rules

    @property
    def limits(self) -> list[LimitInfo]:
        return self.compiled.limits

    @property
    def source(self) -> str:
        """The generated Python, for debugging."""
        return self.compiled.source


def content_hash(files: list[Path], data_files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in sorted(set(files) | set(data_files)):
        h.update(str(f.name).encode())
        h.update(b"\0")
        h.update(f.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]


def load_policy_set(paths: list[Path] | Path) -> PolicySet:
    if isinstance(paths, Path):
        paths = [paths]
    files = policy_files(paths)
    if not files:
        raise PolicyError([Diagnostic("E0214", "no .policy files found", None, file=", ".join(map(str, paths)))])
    checked, diags = load(paths)
    errors = [d for d in diags if d.is_error]
    if errors:
        raise PolicyError(errors)
    compiled = compile_policy(checked)
    header: A.PolicyHeader | None = checked.header
    data_files = [dv.path for dv in checked.data.values()]
    return PolicySet(
        name=header.name if header else paths[0].name,
        version=content_hash(files, data_files),
        files=tuple(str(f) for f in files),
        compiled=compiled,
        checked=checked,
        warnings=tuple(d for d in diags if not d.is_error),
    )
