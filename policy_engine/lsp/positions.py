"""Positions between our spans and the editor's.

Spans count lines and columns from 1, in characters (code points), over the
text with line ends normalised to "\\n". LSP counts from 0, and its columns are
code units of the negotiated encoding: UTF-16 unless the client chose UTF-8 or
UTF-32. A character outside the Basic Multilingual Plane (an emoji) is one
character, two UTF-16 units and four UTF-8 bytes.
"""

from __future__ import annotations

import re
from bisect import bisect_right

from lsprotocol import types as T

from dsl.ast import Span

UTF8, UTF16, UTF32 = "utf-8", "utf-16", "utf-32"
_LINE_END = re.compile(r"\r\n|\r|\n")


def normalise(text: str) -> str:
    """Line ends as the parser reads them (and as LSP counts lines)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def units(s: str, encoding: str) -> int:
    """How many code units of `encoding` the text takes."""
    if encoding == UTF32:
        return len(s)
    if encoding == UTF8:
        return len(s.encode("utf-8", "surrogatepass"))
    return len(s.encode("utf-16-le", "surrogatepass")) // 2


def char_index(line: str, n: int, encoding: str) -> int:
    """The index in `line` of the character that starts after `n` code units
    (clamped to the line; a position inside a character rounds up)."""
    if encoding == UTF32:
        return min(n, len(line))
    count = 0
    for i, ch in enumerate(line):
        if count >= n:
            return i
        count += units(ch, encoding)
    return len(line)


def span_range(span: Span | None, encoding: str) -> T.Range:
    """The LSP range of a span (the first character of the file when there is none)."""
    if span is None:
        return T.Range(T.Position(0, 0), T.Position(0, 0))
    start = T.Position(span.line - 1, units(span.source.line(span.line)[: span.column - 1], encoding))
    end = T.Position(span.end_line - 1, units(span.source.line(span.end_line)[: span.end_column - 1], encoding))
    return T.Range(start, end)


class LineIndex:
    """Offsets <-> LSP positions over one text (normalised, as spans count)."""

    def __init__(self, text: str) -> None:
        self.text = normalise(text)
        self.starts = [0] + [m.end() for m in re.finditer("\n", self.text)]

    def line(self, n: int) -> str:
        """Line `n` (0-based) without its line end."""
        if not 0 <= n < len(self.starts):
            return ""
        end = self.starts[n + 1] - 1 if n + 1 < len(self.starts) else len(self.text)
        return self.text[self.starts[n] : end]

    def offset(self, pos: T.Position, encoding: str) -> int:
        if pos.line >= len(self.starts):
            return len(self.text)
        return self.starts[pos.line] + char_index(self.line(pos.line), pos.character, encoding)

    def position(self, offset: int, encoding: str) -> T.Position:
        n = bisect_right(self.starts, offset) - 1
        return T.Position(n, units(self.text[self.starts[n] : offset], encoding))

    def range(self, start: int, end: int, encoding: str) -> T.Range:
        return T.Range(self.position(start, encoding), self.position(end, encoding))


def whole_document(text: str, encoding: str) -> T.Range:
    """The range of a whole document as the client holds it (any line ends)."""
    lines = _LINE_END.split(text)
    return T.Range(T.Position(0, 0), T.Position(len(lines) - 1, units(lines[-1], encoding)))
