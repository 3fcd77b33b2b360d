"""An immutable, compiled policy identified by the hash of its content.

`load_policy_set(paths)` is all-or-nothing: the front end's stages (parse,
check, lint) and then `compile`, or `PolicyError` with every diagnostic. A
server swaps a new `PolicySet` in only when this succeeds, so a broken edit is
never half-loaded.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from dsl import ast as A
from dsl.checked import CheckedPolicy
from dsl.diagnostics import Diagnostic, PolicyError
from dsl.policy_options import DEFAULT as DEFAULT_RATE_HEADERS
from dsl.policy_options import RateLimitHeaders, read_options
from dsl.load import FRONT_END, Loading, Stage, policy_files, run_stages
from policy_engine.attributes import NO_ATTRIBUTES, Attributes
from policy_engine.compiler import Compiled, LimitInfo, RuleInfo, compile_policy


@dataclass(frozen=True)
class PolicySet:
    name: str
    version: str  # sha256 of every policy and data file, first 16 hex chars
    files: tuple[str, ...]
    compiled: Compiled
    checked: CheckedPolicy
    warnings: tuple[Diagnostic, ...] = ()
    loaded_at: float = field(default_factory=time.time)
    stage_seconds: dict[str, float] = field(default_factory=dict)  # parse, check, lint, compile
    rate_headers: RateLimitHeaders = DEFAULT_RATE_HEADERS  # the header's rate-limit header options
    attributes: Attributes = NO_ATTRIBUTES  # the policy's declared attributes

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


@dataclass
class PolicyLoading(Loading):
    compiled: Compiled | None = None


def _compile(state: Loading) -> list[Diagnostic]:
    assert isinstance(state, PolicyLoading) and state.checked is not None
    state.compiled = compile_policy(state.checked)
    return []


STAGES = (*FRONT_END, Stage("compile", _compile, needs_clean=True))


def load_policy_set(paths: list[Path] | Path) -> PolicySet:
    if isinstance(paths, Path):
        paths = [paths]
    files = policy_files(paths)
    if not files:
        raise PolicyError([Diagnostic("E0214", "no .policy files found", None, file=", ".join(map(str, paths)))])
    state = run_stages(PolicyLoading(paths), STAGES)
    if state.has_errors or state.checked is None or state.compiled is None:
        raise PolicyError([d for d in state.diagnostics if d.is_error])
    checked = state.checked
    header: A.PolicyHeader | None = checked.header
    data_files = [dv.path for dv in checked.data.values()]
    return PolicySet(
        name=header.name if header else paths[0].name,
        version=content_hash(files, data_files),
        files=tuple(str(f) for f in files),
        compiled=state.compiled,
        checked=checked,
        warnings=tuple(d for d in state.diagnostics if not d.is_error),
        stage_seconds=dict(state.seconds),
        rate_headers=read_options(header)[0],
        attributes=Attributes(checked.attributes) if checked.attributes else NO_ATTRIBUTES,
    )
