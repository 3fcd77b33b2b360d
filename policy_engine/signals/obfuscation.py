"""Obfuscation and language signals: encoded payloads, leetspeak, writing script.

Guardrail probing wraps one refused request in many disguises (base64, hex,
leetspeak, other languages) to find where refusals stop. None of these is
evidence alone (developers decode base64, chat products serve every language),
so policies count them per account and combine them with other evidence.
All functions are linear in the prompt and return None for a None input.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata

from .registry import signal

# Runs of the base64 alphabet (standard and URL-safe) long enough to carry a
# sentence, optionally padded; hex runs of at least 16 bytes.
_B64_RUN = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
_HEX_RUN = re.compile(r"\b(?:[0-9a-fA-F]{2}){16,}\b")
_MAX_RUNS = 8  # a prompt of pasted keys or hashes must not cost more than a few decodes


def _printable_text(raw: bytes) -> bool:
    """Decoded bytes that read as text: valid UTF-8, mostly letters and spaces."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    if len(text) < 8:
        return False
    wordish = sum(1 for ch in text if ch.isalpha() or ch == " ")
    return wordish >= 0.7 * len(text) and " " in text


def _decodes_to_text(run: str) -> bool:
    # Random identifiers (API keys, hashes) are base64-alphabet too: they need
    # both cases and a digit or symbol to be worth a decode, and must decode to text.
    if run.isalpha() or run.islower() or run.isupper():
        return False
    body = run.rstrip("=")
    padded = body + "=" * (-len(body) % 4)
    try:
        raw = base64.b64decode(padded, altchars=b"-_", validate=False)
    except (binascii.Error, ValueError):
        return False
    return _printable_text(raw)


@signal
def encoded_payload(s: str | None) -> bool | None:
    """Whether the prompt carries text hidden in base64 or hex (a run that decodes
    to readable UTF-8). Hashes, keys and binary blobs do not decode to text."""
    if s is None:
        return None
    for n, m in enumerate(_B64_RUN.finditer(s)):
        if n >= _MAX_RUNS:
            break
        if _decodes_to_text(m.group()):
            return True
    if len(s) >= 32:
        for n, m in enumerate(_HEX_RUN.finditer(s)):
            if n >= _MAX_RUNS:
                break
            if _printable_text(bytes.fromhex(m.group())):
                return True
    return False


# Leetspeak: a digit standing for a letter inside a word ("3xpl41n", "h0w").
# Identifiers such as utf8, x86, ipv4, md5 or h264 end in digits or are
# acronyms; counting only a digit between two letters skips most of them.
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_LEET_DIGITS = frozenset("013457")
_LEET_INSIDE = re.compile(r"[A-Za-z][013457]+[A-Za-z]")


@signal
def leet_ratio(s: str | None) -> float | None:
    """Share of words (of 3+ characters) written in leetspeak: letters with one of
    0 1 3 4 5 7 standing inside the word. 0.0 for text without such words."""
    if s is None:
        return None
    words = [w for w in _WORD.findall(s) if len(w) >= 3]
    if not words:
        return 0.0
    leet = sum(1 for w in words if not _LEET_DIGITS.isdisjoint(w) and _LEET_INSIDE.search(w))
    return leet / len(words)


# Writing script of the letters, by Unicode name prefix. Only letters vote,
# so code, numbers and punctuation do not tip the answer.
_SCRIPTS = (
    ("LATIN", "latin"),
    ("CYRILLIC", "cyrillic"),
    ("GREEK", "greek"),
    ("ARABIC", "arabic"),
    ("HEBREW", "hebrew"),
    ("DEVANAGARI", "devanagari"),
    ("BENGALI", "bengali"),
    ("TAMIL", "tamil"),
    ("THAI", "thai"),
    ("HANGUL", "hangul"),
    ("HIRAGANA", "kana"),
    ("KATAKANA", "kana"),
    ("CJK", "han"),
    ("ARMENIAN", "armenian"),
    ("GEORGIAN", "georgian"),
    ("ETHIOPIC", "ethiopic"),
)
_SYLLABIC = frozenset(("han", "kana", "hangul"))  # a character carries about a word: it votes 3 times
_SCRIPT_CACHE: dict[str, str] = {}
_SAMPLE = 400  # letters looked at: the script of a long prompt shows in its first few hundred


def _script_of(ch: str) -> str:
    cached = _SCRIPT_CACHE.get(ch)
    if cached is None:
        name = unicodedata.name(ch, "")
        cached = next((label for prefix, label in _SCRIPTS if name.startswith(prefix)), "other")
        if len(_SCRIPT_CACHE) < 20_000:  # bounded: letters of every script fit many times over
            _SCRIPT_CACHE[ch] = cached
    return cached


@signal
def script(s: str | None) -> str | None:
    """The dominant writing script of the prompt's letters ("latin", "cyrillic",
    "arabic", "han", "kana", "hangul", "devanagari", ...); "none" without letters.
    Han, kana and hangul characters weigh three letters each (one carries about
    a word). Japanese text mixes kana and han: kana with han in the lead is "kana"."""
    if s is None:
        return None
    if s.isascii():
        return "latin" if any(ch.isalpha() for ch in s[: _SAMPLE * 4]) else "none"
    votes: dict[str, int] = {}
    seen = 0
    for ch in s:
        if not ch.isalpha():
            continue
        if ch.isascii():
            label = "latin"
        else:
            label = _script_of(ch)
        votes[label] = votes.get(label, 0) + (3 if label in _SYLLABIC else 1)
        seen += 1
        if seen >= _SAMPLE:
            break
    if not votes:
        return "none"
    if votes.get("kana") and votes.get("han", 0) + votes["kana"] >= max(votes.values()):
        return "kana"
    return max(votes.items(), key=lambda kv: kv[1])[0]
