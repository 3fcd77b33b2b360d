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
from collections.abc import Iterator

from .registry import signal

# Runs of the base64 alphabet (standard and URL-safe) long enough to carry a
# sentence, optionally padded; hex runs of at least 16 bytes.
_B64_RUN = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
_HEX_RUN = re.compile(r"\b(?:[0-9a-fA-F]{2}){16,}\b")
_MAX_RUNS = 8  # a prompt of pasted keys or hashes must not cost more than a few decodes

# Speed: Python's re tries _B64_RUN at every position of every word (and fails
# 15 characters later), about 25 us on an 840-character prompt. One translate
# maps the base64 alphabet to "a" and every other byte (non-ASCII UTF-8 bytes
# too) to a space; `in` then finds the runs in C. Hex digits are in the
# alphabet, so a text without 32 "a"s in a row has no hex run either.
_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-"
_B64_MASK = bytes(ord("a") if c in _B64_ALPHABET else 32 for c in range(256))
_B64_MIN = b"a" * 16
_HEX_MIN = b"a" * 32
# Decoded text: letters and the space to nothing, so what is left is the rest.
_ASCII_WORDISH = bytes(c for c in range(128) if chr(c).isalpha() or c == 32)


def _printable_text(raw: bytes) -> bool:
    """Decoded bytes that read as text: valid UTF-8, mostly letters and spaces."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    if len(text) < 8:
        return False
    if text.isascii():
        wordish = len(raw) - len(raw.translate(None, _ASCII_WORDISH))
    else:
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


def _b64_runs(s: str, mask: bytes) -> Iterator[str]:
    """The matches of _B64_RUN in s, in order. On ASCII text the mask's positions
    are the text's: each run is found with bytes.find, no regex; other text scans."""
    if not s.isascii():
        yield from (m.group() for m in _B64_RUN.finditer(s))
        return
    start = mask.find(_B64_MIN)
    while start >= 0:  # a maximal run: the search starts after the previous one's end
        end = mask.find(b" ", start)
        if end < 0:
            end = len(s)
        pad = end
        while pad < end + 2 and s.startswith("=", pad):
            pad += 1
        yield s[start:pad]
        start = mask.find(_B64_MIN, end)


@signal
def encoded_payload(s: str | None) -> bool | None:
    """Whether the prompt carries text hidden in base64 or hex (a run that decodes
    to readable UTF-8). Hashes, keys and binary blobs do not decode to text."""
    if s is None:
        return None
    mask = s.encode("utf-8", "surrogatepass").translate(_B64_MASK)
    if _B64_MIN not in mask:
        return False
    for n, run in enumerate(_b64_runs(s, mask)):
        if n >= _MAX_RUNS:
            break
        if _decodes_to_text(run):
            return True
    if _HEX_MIN in mask:
        for n, m in enumerate(_HEX_RUN.finditer(s)):
            if n >= _MAX_RUNS:
                break
            if _printable_text(bytes.fromhex(m.group())):
                return True
    return False


# Leetspeak: a digit standing for a letter inside a word ("3xpl41n", "h0w").
# Identifiers such as utf8, x86, ipv4, md5 or h264 end in digits or are
# acronyms; counting only a digit between two letters skips most of them.
# Words are runs of letters and digits ([^\W_]); every match of _LEET_INSIDE
# lies inside one word, and a word can hold several ("h4ck3r").
_LONG_WORD = re.compile(r"[^\W_]{3,}")
_LEET_INSIDE = re.compile(r"[A-Za-z][013457]+[A-Za-z]")
_WORD_END = re.compile(r"[\W_]")

# Speed: a regex and a Python test per word cost about 28 us on an
# 840-character prompt. On ASCII text one translate maps letters and digits to
# "a" and the rest to spaces, and a word of 3+ characters is one " aaa" (the
# occurrences cannot overlap): bytes.count counts them. Another maps letters
# to "L", leet digits to "D" and other digits to "N": leetspeak is "LD+L"
# inside a word, found from each "LD" with bytes.find. On other text the
# words are Unicode, so the regexes run on the text itself, and only when its
# UTF-8 bytes hold an "LD" (an ASCII letter right before a leet digit).
_ALNUM_MASK = bytes(ord("a") if chr(c).isalnum() and c < 128 else 32 for c in range(256))
_LEET_MASK = bytes(
    ord("L")
    if c < 128 and chr(c).isalpha()
    else ord("D")
    if chr(c) in "013457"
    else ord("N")
    if chr(c) in "2689"
    else 32
    for c in range(256)
)
_LEET_RUN = re.compile(rb"LD+L")


def _leet_words_ascii(mask: bytes) -> int:
    """_leet_words of an ASCII text, from its _LEET_MASK."""
    n = 0
    i = mask.find(b"LD")
    while i >= 0:
        if _LEET_RUN.match(mask, i):
            n += 1
            i = mask.find(b" ", i)  # the rest of this word holds no new word
            if i < 0:
                break
        else:
            i += 1
        i = mask.find(b"LD", i)
    return n


def _leet_words(s: str) -> int:
    """How many words hold a match of _LEET_INSIDE (each counted once)."""
    if s.isascii():
        return _leet_words_ascii(s.encode("ascii").translate(_LEET_MASK))
    if b"LD" not in s.encode("utf-8", "surrogatepass").translate(_LEET_MASK):
        return 0
    n = 0
    m = _LEET_INSIDE.search(s)
    while m is not None:
        n += 1
        end = _WORD_END.search(s, m.end())  # the rest of this word holds no new word
        if end is None:
            break
        m = _LEET_INSIDE.search(s, end.end())
    return n


@signal
def leet_ratio(s: str | None) -> float | None:
    """Share of words (of 3+ characters) written in leetspeak: letters with one of
    0 1 3 4 5 7 standing inside the word. 0.0 for text without such words."""
    if s is None:
        return None
    if s.isascii():
        words = (b" " + s.encode("ascii").translate(_ALNUM_MASK)).count(b" aaa")
    else:
        words = len(_LONG_WORD.findall(s))
    if not words:
        return 0.0
    return _leet_words(s) / words


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
