"""The language's reserved words, once: the parser, the checker and the Pygments
lexer read them from here (the TextMate grammar spells them out, and a test keeps
it in step)."""

from __future__ import annotations

from dsl.checked import BLOCK_MODES, CALENDAR_UNITS, EFFECTS, FAIL_MODES, RECORD_MODES

DECLARATIONS = ("policy", "let", "data", "rule", "limit", "measure", "exempt", "attribute")
# The words that start a clause of a rule, limit or measure body (besides the effects).
CLAUSES = (
    "when", "unless", "reason", "status", "retry_after", "header", "shadow",
    "key", "count", "sum", "distinct", "usage", "window", "max", "record", "on_error", "block", "rules",
)  # fmt: skip
# `window calendar month in "Europe/Paris"`: the word that makes a window a calendar one, and its units.
CALENDAR = "calendar"
# The values of `record`, `on_error` and `block` that are not clause words themselves.
MODES = tuple(m for m in (*RECORD_MODES, *FAIL_MODES, *BLOCK_MODES) if m not in CLAUSES)

__all__ = ["CALENDAR", "CALENDAR_UNITS", "CLAUSES", "DECLARATIONS", "EFFECTS", "MODES"]
