"""Request bodies: the model, prompt and token counts of OpenAI-style calls, from whole or cut bodies.

Gateways send at most a prefix of a body (Envoy's `max_request_bytes`, our own
`max_body_bytes`), so the JSON reader here reads as much of a document as is
there: a cut body yields its readable prefix, and the bytes never seen still
count towards the prompt-token estimate.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson


class _Stop(Exception):
    """End of input (or a syntax error) inside a value; carries what was read of it."""

    def __init__(self, partial: Any) -> None:
        self.partial = partial


_WS = re.compile(r"[ \t\n\r]*")
_STR_CHUNK = re.compile(r'[^"\\]*')
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_MAX_DEPTH = 64


class _LenientJson:
    """Parses as much of a JSON text as is there: a cut-off body yields its readable prefix."""

    def __init__(self, text: str) -> None:
        self.s, self.i = text, 0

    def ws(self) -> None:
        self.i = _WS.match(self.s, self.i).end()  # type: ignore[union-attr]

    def value(self, depth: int) -> Any:
        self.ws()
        if self.i >= len(self.s) or depth > _MAX_DEPTH:
            raise _Stop(None)
        c = self.s[self.i]
        if c == "{":
            return self.obj(depth + 1)
        if c == "[":
            return self.arr(depth + 1)
        if c == '"':
            return self.string()
        for word, val in (("true", True), ("false", False), ("null", None)):
            if self.s.startswith(word, self.i):
                self.i += len(word)
                return val
        m = _NUMBER.match(self.s, self.i)
        if not m or m.end() == len(self.s):  # nothing, or a number that may be cut short
            raise _Stop(None)
        self.i = m.end()
        return json.loads(m.group())

    def string(self) -> str:
        out: list[str] = []
        self.i += 1
        while True:
            m = _STR_CHUNK.match(self.s, self.i)
            out.append(m.group())  # type: ignore[union-attr]
            self.i = m.end()  # type: ignore[union-attr]
            if self.i >= len(self.s):
                raise _Stop("".join(out))
            if self.s[self.i] == '"':
                self.i += 1
                return "".join(out)
            esc = self.s[self.i + 1 : self.i + 2]
            if esc in _ESCAPES:
                out.append(_ESCAPES[esc])
                self.i += 2
            elif esc == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", self.s[self.i + 2 : self.i + 6]):
                code = int(self.s[self.i + 2 : self.i + 6], 16)
                self.i += 6
                if 0xD800 <= code < 0xDC00 and len(self.s) - self.i < 6:
                    raise _Stop("".join(out))  # the low half of the pair was cut off
                if 0xD800 <= code < 0xDC00 and re.fullmatch(
                    r"\\u[dD][c-fC-F][0-9a-fA-F]{2}", self.s[self.i : self.i + 6]
                ):
                    low = int(self.s[self.i + 2 : self.i + 6], 16)
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    self.i += 6
                out.append(chr(code) if not 0xD800 <= code < 0xE000 else "\ufffd")
            else:
                raise _Stop("".join(out))

    def members(self, close: str, container: Any, member: Callable[[], None]) -> None:
        """An object's or array's members up to `close`; `member` reads one into `container`."""
        self.i += 1
        while True:
            self.ws()
            if self.s.startswith(close, self.i):
                self.i += 1
                return
            member()
            self.ws()
            if self.s.startswith(",", self.i):
                self.i += 1
            elif not self.s.startswith(close, self.i):
                raise _Stop(container)

    def item(self, depth: int, container: Any, store: Callable[[Any], None]) -> None:
        """One value into `container` with `store`; a cut value is stored as far as it was read."""
        try:
            store(self.value(depth))
        except _Stop as stop:
            if stop.partial is not None:
                store(stop.partial)
            raise _Stop(container) from None

    def obj(self, depth: int) -> dict[str, Any]:
        d: dict[str, Any] = {}

        def member() -> None:
            if not self.s.startswith('"', self.i):
                raise _Stop(d)
            try:
                key = self.string()
            except _Stop:
                raise _Stop(d) from None
            self.ws()
            if not self.s.startswith(":", self.i):
                raise _Stop(d)
            self.i += 1
            self.item(depth, d, lambda v: d.__setitem__(key, v))

        self.members("}", d, member)
        return d

    def arr(self, depth: int) -> list[Any]:
        items: list[Any] = []
        self.members("]", items, lambda: self.item(depth, items, items.append))
        return items


_LONG_NUMBER = re.compile(r"\d{19}")


def lenient_json(text: str) -> tuple[Any, bool]:
    """(value, complete): the whole document, or the readable prefix of a cut or broken one."""
    if _LONG_NUMBER.search(text) is None:  # orjson reads integers beyond 64 bits as floats
        try:
            return orjson.loads(text), True  # the common case, 3-5x faster than json
        except orjson.JSONDecodeError:  # and what json reads but orjson does not: NaN, lone surrogates
            pass
    try:
        return json.loads(text), True
    except (ValueError, RecursionError):
        pass
    try:
        return _LenientJson(text).value(0), False
    except _Stop as stop:
        return stop.partial, False


def _texts(content: Any) -> list[str]:
    """Text of a message content: a string, or content parts ({type: text, text}), or nested."""
    if isinstance(content, str):
        return [content]
    if isinstance(content, dict):
        text = content.get("text")
        if isinstance(text, str):
            return [text]
        return _texts(content.get("content")) if "content" in content else []
    if isinstance(content, list):
        return [t for part in content for t in _texts(part)]
    return []


@dataclass
class BodyInfo:
    model: str | None = None
    prompt: str | None = None
    max_tokens: int | None = None
    complete: bool = True


def parse_llm_body(text: str) -> BodyInfo:
    """Model, prompt and max_tokens of an OpenAI-style chat/completions or completions body.

    The prompt concatenates (newline-separated) a top-level `system`/`instructions`,
    the message contents (strings or content-part arrays), a completions `prompt`
    (string or list of strings) and a responses-style `input`. Never raises.
    """
    doc, complete = lenient_json(text)
    return body_info(doc, complete)


def body_info(doc: Any, complete: bool = True) -> BodyInfo:
    """Model, prompt and max_tokens of a decoded OpenAI-style request (a dict), as `parse_llm_body` reads them."""
    info = BodyInfo(complete=complete)
    if not isinstance(doc, dict):
        return info
    if isinstance(doc.get("model"), str):
        info.model = doc["model"]
    parts: list[str] = []
    for key in ("system", "instructions"):
        parts += _texts(doc.get(key))
    messages = doc.get("messages")
    if isinstance(messages, list):
        for m in messages:
            if isinstance(m, dict):
                parts += _texts(m.get("content"))
    for key in ("prompt", "input"):
        value = doc.get(key)
        if isinstance(value, list):
            parts += [t for item in value for t in _texts(item)]
        else:
            parts += _texts(value)
    if parts or any(k in doc for k in ("messages", "prompt", "input")):
        info.prompt = "\n".join(parts)
    for key in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        v = doc.get(key)
        if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
            info.max_tokens = v
            break
    return info


def estimate_tokens(chars: int, chars_per_token: float) -> int:
    return math.ceil(chars / chars_per_token)


@dataclass(frozen=True, slots=True)
class BodyRead:
    info: BodyInfo
    missing: int  # bytes of the body that were not read (cut by the sender or by us)
    truncated: bool  # some of the body was not read, or it is not complete JSON


def read_body(raw: bytes, content_length: str | None, max_bytes: int) -> BodyRead:
    """Parse at most `max_bytes` of a body; `content_length` (the header) tells how much was cut."""
    # final=False: a multi-byte character cut at the end is dropped, not replaced.
    try:
        text = raw.decode("utf-8") if len(raw) <= max_bytes else None  # valid and whole: the same text
    except UnicodeDecodeError:
        text = None
    if text is None:
        text = codecs.getincrementaldecoder("utf-8")("replace").decode(raw[:max_bytes], final=False)
    info = parse_llm_body(text)
    length = content_length or ""
    declared = int(length) if length.isdigit() else len(raw)
    missing = max(0, declared - len(raw)) + max(0, len(raw) - max_bytes)
    return BodyRead(info, missing, missing > 0 or not info.complete)
