"""Diagnostics: errors and warnings as values, each with a stable code, a span
and, where one helps, a hint. Rendered the way Cedar and Lark report them:
`file:line:col: error[E0201]: message`, the source line, and a caret."""

from __future__ import annotations

import difflib
import enum
from dataclasses import dataclass
from collections.abc import Iterable

from dsl.ast import Module, Span


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    message: str
    span: Span | None
    severity: Severity = Severity.ERROR
    hint: str | None = None
    file: str | None = None  # when there is no span (e.g. a file that cannot be read)

    @property
    def filename(self) -> str:
        return self.span.source.name if self.span else (self.file or "<unknown>")

    @property
    def line(self) -> int:
        return self.span.line if self.span else 1

    @property
    def column(self) -> int:
        return self.span.column if self.span else 1

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.filename, self.line, self.column, self.code)

    def render(self) -> str:
        """The human form: header, excerpt with a caret under the span, hint."""
        head = f"{self.filename}:{self.line}:{self.column}: {self.severity.value}[{self.code}]: {self.message}"
        out = [head]
        pad = " "  # the gutter's width: the line number's, so that `=` sits under `|`
        if self.span is not None:
            src_line = self.span.source.line(self.span.line)
            gutter = str(self.span.line)
            pad = " " * len(gutter)
            width = (
                self.span.end_column - self.span.column
                if self.span.end_line == self.span.line and self.span.end_column > self.span.column
                else 1
            )
            width = max(1, min(width, max(1, len(src_line) - self.span.column + 1)))
            out.append(f"{pad} |")
            out.append(f"{gutter} | {src_line}")
            out.append(f"{pad} | {' ' * (self.span.column - 1)}{'^' * width}")
        if self.hint:
            out.append(f"{pad} = help: {self.hint}")
        return "\n".join(out)

    def to_dict(self) -> dict[str, object]:
        d: dict[str, object] = {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "file": self.filename,
            "line": self.line,
            "column": self.column,
        }
        if self.span is not None:
            d["end_line"] = self.span.end_line
            d["end_column"] = self.span.end_column
        if self.hint:
            d["hint"] = self.hint
        return d


class PolicyError(Exception):
    """Raised by APIs that must fail whole: carries every diagnostic found."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = sorted(diagnostics, key=Diagnostic.sort_key)
        super().__init__(render_all(self.diagnostics))


def render_all(diags: Iterable[Diagnostic]) -> str:
    return "\n\n".join(d.render() for d in diags)


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"did you mean `{matches[0]}`?" if matches else None


# Stable codes. Documented in docs/diagnostics.md; never reuse a retired code.
CODES: dict[str, str] = {
    "E0101": "syntax error",
    "E0102": "invalid number or duration literal",
    "E0103": "unterminated string",
    "E0104": "invalid escape in string",
    "E0105": "policy too large or too deeply nested",
    "E0201": "unknown name",
    "E0202": "unknown field",
    "E0203": "unknown function",
    "E0204": "wrong number of arguments",
    "E0205": "type mismatch",
    "E0206": "invalid regular expression",
    "E0207": "invalid CIDR",
    "E0208": "invalid verification level",
    "E0209": "duplicate definition",
    "E0210": "missing clause",
    "E0211": "duplicate clause",
    "E0212": "clause not allowed here",
    "E0213": "invalid value",
    "E0214": "data file error",
    "E0215": "cyclic definition",
    "E0216": "value out of range",
    "W0301": "unused let",
    "W0302": "unused data list",
    "W0303": "condition is always true",
    "W0304": "condition is always false",
    "W0305": "limit key is constant",
    "W0306": "rule shadowed by an earlier rule",
    "W0307": "contradictory rules",
    "W0308": "rule has no test",
    "W0309": "distinct without a bound",
    "W0310": "limit exceeded by every request",
    "W0311": "unknown policy option",
    "W0312": "limit or measure key can be null",
    "W0313": "price of a model the table may not list",
    # Policy test files (policy_engine/testfile.py; `policyctl test`).
    "T0401": "test file is not valid YAML",
    "T0402": "unknown key in a test file",
    "T0403": "invalid value in a test file",
    "T0404": "missing key in a test file",
    "T0405": "unknown rule, limit or measure in a test",
    "T0406": "expectation that always holds",
    "T0407": "tested policy not found or not loading",
}


def without_suppressed(diags: Iterable[Diagnostic], modules: Iterable[Module]) -> list[Diagnostic]:
    """The diagnostics less the warnings a `# policy: ignore[CODE]` comment turns off on their line."""
    sup = {m.source.name: m.suppressions for m in modules}
    return [
        d for d in diags if not (d.severity is Severity.WARNING and d.code in sup.get(d.filename, {}).get(d.line, ()))
    ]
