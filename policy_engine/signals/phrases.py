"""Phrase sets: lists of RE2 patterns matched against a prompt in one pass.

A phrase file has one pattern per line; `#` starts a comment line, blank lines
are skipped, matching is case-insensitive and unanchored. Patterns are RE2, so
matching time is linear in the prompt whatever the list says.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import re2

from .registry import signal


def _options() -> re2.Options:
    options = re2.Options()
    options.case_sensitive = False
    options.never_capture = True  # a set only reports which patterns matched
    options.log_errors = False  # errors come back as exceptions, not stderr noise
    return options


@dataclass(frozen=True, slots=True)
class PhraseSet:
    """Compiled phrase list. `patterns[i]` came from line `lines[i]` of `source`."""

    source: str
    patterns: tuple[str, ...]
    lines: tuple[int, ...]
    _set: re2.Set | None = field(repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.patterns)

    def __hash__(self) -> int:
        # The compiler's per-request signal cache hashes its arguments at every
        # call: the generated hash would hash every pattern each time.
        return hash((self.source, len(self.patterns)))

    def matching(self, s: str) -> list[int]:
        """Indices of the patterns that match somewhere in s, ascending."""
        if self._set is None:
            return []
        # Encode ourselves: lone surrogates (possible in JSON input) must not raise.
        found = self._set.Match(s.encode("utf-8", "surrogatepass"))
        return sorted(found) if found else []

    def matches(self, s: str) -> bool:
        """Whether any pattern matches somewhere in s."""
        return self._set is not None and bool(self._set.Match(s.encode("utf-8", "surrogatepass")))


def compile_phrases(lines: list[str], source: str) -> PhraseSet:
    """Compile a phrase list; a bad pattern raises ValueError naming source:line."""
    options = _options()
    patterns: list[str] = []
    numbers: list[int] = []
    for number, raw in enumerate(lines, start=1):
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        try:
            re2.compile(pattern, options)
        except re2.error as err:
            raise ValueError(f"{source}:{number}: invalid RE2 pattern {pattern!r}: {_reason(err)}") from None
        patterns.append(pattern)
        numbers.append(number)
    return PhraseSet(source, tuple(patterns), tuple(numbers), _build_set(patterns, source))


def _build_set(patterns: list[str], source: str) -> re2.Set | None:
    if not patterns:
        return None  # RE2 refuses to compile an empty set
    rset = re2.Set.SearchSet(_options())
    for pattern in patterns:
        rset.Add(pattern)
    try:
        rset.Compile()
    except re2.error as err:
        raise ValueError(f"{source}: phrase set does not compile: {_reason(err)}") from None
    return rset


def _reason(err: Exception) -> str:
    reason = err.args[0] if err.args else err
    return reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)


def load_phrases(path: str) -> PhraseSet:
    """Read and compile a phrase file (UTF-8)."""
    with open(path, encoding="utf-8") as f:
        return compile_phrases(f.read().splitlines(), path)


@signal
def matches_any(s: str | None, patterns: PhraseSet | None) -> bool | None:
    """Whether any pattern of the set occurs in s."""
    if s is None or patterns is None:
        return None
    return patterns.matches(s)


@signal
def match_count(s: str | None, patterns: PhraseSet | None) -> int | None:
    """How many distinct patterns of the set occur in s (not occurrences)."""
    if s is None or patterns is None:
        return None
    return len(patterns.matching(s))
