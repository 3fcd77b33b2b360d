"""Prompt signals: fingerprints, template ids, SimHash and cheap text features.

Every function here is pure and takes the prompt text; a None input gives None
so that a rule over a request without a prompt evaluates to null, not an error.
The compiler caches each call per request, so nothing here memoises prompts.
"""

from __future__ import annotations

import math
import re
import unicodedata
from array import array
from itertools import compress
from operator import ne, not_, or_
from typing import Any, TypeVar
from collections.abc import Callable, Iterable

import xxhash

from .registry import signal

_xxh3 = xxhash.xxh3_64_hexdigest
_xxh3_int = xxhash.xxh3_64_intdigest

# Normalisation works on UTF-8 bytes: one bytes.translate maps ASCII
# punctuation and "_" to spaces and ASCII letters to lower case, and split/join
# collapses the spaces. Python's re costs ~40 ns a character on this job, the
# translate about 1 ns. Non-ASCII text first goes through NFKC, casefold and a
# regex for non-ASCII separators (slower, ~50 us on 2 KB, still linear).
# \x01 is the template slot marker and survives normalisation.
_SLOT = b"\x01"
_SLOT_RUN = re.compile(rb"\x01(?:[ \x01]*\x01)?")


def _ascii_table() -> bytes:
    table = bytearray(range(256))
    for c in range(128):
        ch = chr(c)
        if ch.isalnum():
            table[c] = ord(ch.lower())
        elif c != 1:
            table[c] = 32
    return bytes(table)


_ASCII_TABLE = _ascii_table()
_NON_ASCII_SEPARATORS = re.compile(r"[^\x00-\x7f\w]+")


def _normalized_bytes(s: str) -> bytes:
    if s.isascii():
        b = s.encode("ascii").translate(_ASCII_TABLE)
    else:
        s = unicodedata.normalize("NFKC", s).casefold()
        s = _NON_ASCII_SEPARATORS.sub(" ", s)
        b = s.encode("utf-8", "surrogatepass").translate(_ASCII_TABLE)
    return b" ".join(b.split())


def normalize(s: str) -> str:
    """NFKC, casefold, punctuation and whitespace runs to one space, trimmed."""
    return _normalized_bytes(s).decode("utf-8", "surrogatepass")


@signal
def fingerprint(s: str | None) -> str | None:
    """16 hex chars of xxh3_64 over the normalised prompt."""
    if s is None:
        return None
    return _xxh3(_normalized_bytes(s))


# --- template ids -----------------------------------------------------------
#
# A template id masks the parts of a prompt that generators fill in (numbers,
# names, quoted spans, code, URLs, emails, identifiers) so that slot-filled
# prompts from one template hash alike. Runs of adjacent slots collapse into
# one, so "Ann" and "Ann Lee", or "3" and "3.5", give the same id.
#
# Speed: Python's re tries every alternative of an alternation at every
# position, but scans fast to a leading literal or character class. So each
# pass below starts with one, rare passes run only when a cheap `in` test
# says they can match, and all replacements are constant strings.
_FENCE_OR_INLINE_CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]{1,400}`", re.DOTALL)
_URL = re.compile(r"(?:https?|ftp)://\S+|www\.\S+")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_DOUBLE_QUOTED = re.compile(r'"[^"\n]{0,400}"')
_SINGLE_QUOTED = re.compile(r"'(?<!\w')[^'\n]{0,400}'(?!\w)")  # not apostrophes
_TYPO_QUOTED = re.compile(r"[“„«‘‹「『][^”“»’›」』\n]{0,400}[”“»’›」』]")
_TYPO_OPENERS = frozenset("“„«‘‹「『")
_SPACED_SLOT = " \x01 "


def _mask_spans(s: str) -> str:
    """Mask code, URLs, emails and quoted spans (each pass only when it can match)."""
    if "`" in s:
        s = _FENCE_OR_INLINE_CODE.sub(_SPACED_SLOT, s)
    if "://" in s or "www." in s:
        s = _URL.sub(_SPACED_SLOT, s)
    if "@" in s:
        s = _EMAIL.sub(_SPACED_SLOT, s)
    if '"' in s:
        s = _DOUBLE_QUOTED.sub(_SPACED_SLOT, s)
    if "'" in s:
        s = _SINGLE_QUOTED.sub(_SPACED_SLOT, s)
    if not s.isascii() and not _TYPO_OPENERS.isdisjoint(s):
        s = _TYPO_QUOTED.sub(_SPACED_SLOT, s)
    return s


# Token masking. The text is split into sentences (at . ! ? : and line
# breaks) and words (letters, digits, "_"); the first letter of a sentence is
# lowered when its word is a common sentence opener (a capital there is only
# grammar). After that, any word with
# a capital (a name, camelCase, an acronym), a digit or "_" is a slot.
#
# ASCII text (the common case) takes a faster path: translates do the
# separators and the case test, and a Python loop runs over slots only.
# _slot_text is the general path; on ASCII text both give the same bytes (a
# test holds them to it). Adjacent slots become one slot in both.
_BREAK_CHARS = ".!?:\n"


def _ascii_token_table() -> bytes:
    """Separators to space, sentence breaks to \x02; word characters kept."""
    table = bytearray(range(256))
    for c in range(128):
        ch = chr(c)
        if ch in _BREAK_CHARS:
            table[c] = 2
        elif not (ch.isalnum() or ch == "_" or c == 1):
            table[c] = 32
    return bytes(table)


def _ascii_slot_table() -> bytes:
    """Capitals, digits and "_" to the slot byte \x01: a word stays alphabetic only if plain."""
    table = bytearray(range(256))
    for c in range(128):
        ch = chr(c)
        if ch.isupper() or ch.isdigit() or ch == "_":
            table[c] = 1
    return bytes(table)


_ASCII_TOKEN_TABLE = _ascii_token_table()
_ASCII_SLOT_TABLE = _ascii_slot_table()
_BREAKS = re.compile(r"[.!?:\n。！？]")
_NON_WORD = re.compile(r"[^\w\x01\x02]+")
_HAS_DIGIT = re.compile(r"[\d_\x01]")  # the slot marker counts, as on the ASCII path


# Words that often start a sentence. A capitalised word at a sentence start is
# lowered (kept as text) only when it is one of these; any other is taken for
# a name, so that "John has 3 apples" and "Mary has 5 apples" share a template.
_COMMON_STARTS = frozenset(
    """a an the this that these those there here it its i you he she we they my your ask
    our their his her me us them what why how when where who whom whose which whether
    is are was were be been am can could would should will shall may might must do
    does did have has had please write explain give tell list describe summarize
    summarise translate create make generate find show compare draft rewrite review
    check fix solve calculate compute answer help suggest provide act imagine
    suppose assume consider let given use using if in on at for from to of by with
    as about after before during while since until because although though so but
    and or not no yes also then now next first second finally however therefore
    thus instead otherwise today yesterday tomorrow each every all some any many
    most few several one two three new old dear hi hello hey thanks thank ok okay
    sure great good note remember make keep continue start stop ignore pretend
    think reason step output return print read analyze analyse classify extract
    convert format turn put take add remove replace identify evaluate rate rank
    design build implement test debug refactor optimize optimise improve edit""".split()
)
_COMMON_STARTS_BYTES = frozenset(w.encode("ascii") for w in _COMMON_STARTS)


def _lower_sentence_starts(sentences: list[Any], common: frozenset[Any]) -> list[Any]:
    out = []
    space: Any = " " if isinstance(sentences[0], str) else b" "
    for p in sentences:
        p = p.lstrip()
        end = p.find(space)  # separators are spaces by now
        if (p[:end] if end >= 0 else p).lower() in common:
            p = p[:1].lower() + p[1:]
        out.append(p)
    return out


def _mark_slots(words: list[Any], slots: Iterable[int], slot: Any) -> None:
    """Set words[i] to the slot for each index; a slot right after a slot becomes empty."""
    empty = slot[:0]
    last = -2
    for i in slots:
        words[i] = empty if i == last + 1 else slot
        last = i


def _ascii_tokens(s: str) -> bytes:
    """ASCII text with separators as spaces and sentence breaks as \x02."""
    return s.encode("ascii").translate(_ASCII_TOKEN_TABLE)


def _slot_words(sentences: list[bytes]) -> list[bytes]:
    """The template's words of ASCII sentences: plain lower-case words and slots,
    no two slots adjacent. The words of the first k sentences are the first words
    of all of them: each sentence, word and slot depends only on what precedes it."""
    b = b" ".join(_lower_sentence_starts(sentences, _COMMON_STARTS_BYTES)).translate(_ASCII_SLOT_TABLE)
    words = b.split()
    _mark_slots(words, compress(range(len(words)), map(not_, map(bytes.isalpha, words))), _SLOT)
    return list(filter(None, words))


def _slot_bytes(s: str) -> bytes:
    """ASCII text: masked, lower-cased words joined by single spaces."""
    return b" ".join(_slot_words(_ascii_tokens(s).split(b"\x02")))


def _nfkc(s: str) -> str:
    """Any text in NFKC, with \x02 (the sentence break below) a space."""
    return unicodedata.normalize("NFKC", s).replace("\x02", " ")


def _text_words(s: str) -> list[str]:
    """The template's words of NFKC text whose sentence breaks are \x02: words
    (before casefolding) and slots, no two slots adjacent. As in _slot_words,
    the words of the first k sentences are the first words of all of them."""
    pieces = _lower_sentence_starts(_NON_WORD.sub(" ", s).split("\x02"), _COMMON_STARTS)
    words = " ".join(pieces).split()
    cased = map(ne, words, map(str.lower, words))
    digits = map(bool, map(_HAS_DIGIT.search, words))
    _mark_slots(words, compress(range(len(words)), map(or_, cased, digits)), "\x01")
    return list(filter(None, words))


def _text_bytes(words: list[str]) -> bytes:
    return " ".join(words).casefold().encode("utf-8", "surrogatepass")


def _slot_text(s: str) -> bytes:
    """Any text: NFKC, masked, casefolded words joined by single spaces, as UTF-8."""
    return _text_bytes(_text_words(_BREAKS.sub("\x02", _nfkc(s))))


def _template_bytes(s: str) -> bytes:
    return _template_of_masked(_mask_spans(s))


def _template_of_masked(s: str) -> bytes:
    # Slots next to masked spans are not adjacent words yet: merge those runs.
    b = _slot_bytes(s) if s.isascii() else _slot_text(s)
    return _SLOT_RUN.sub(_SLOT, b) if b"\x01 \x01" in b else b


def template_text(s: str) -> str:
    """The normalised prompt with each slot shown as "<>" (what template_id hashes)."""
    return _template_bytes(s).decode("utf-8", "surrogatepass").replace("\x01", "<>")


@signal
def template_id(s: str | None) -> str | None:
    """16 hex chars identifying the prompt's template (slots masked)."""
    if s is None:
        return None
    return _xxh3(_template_bytes(s))


_PREFIX_WORDS_MAX = 64
_PREFIX_CHARS_PER_WORD = 32  # generous: a word plus its separators and a masked span or two


@signal
def template_prefix(s: str | None, n: int | None) -> str | None:
    """16 hex chars identifying the first `n` words of the prompt's template
    (slots masked as in template_id). A program that fills one scaffold with
    many sub-tasks ("Solve the following problem. Show all intermediate steps
    ... <task>") shares a prefix where the whole prompts' templates differ.
    Only the head of the prompt is read, so a 100k-token context costs what a
    short prompt costs. n is clamped to 1..64."""
    if s is None or n is None:
        return None
    n = max(1, min(int(n), _PREFIX_WORDS_MAX))
    return _xxh3(_template_head(s[: _PREFIX_CHARS_PER_WORD * n + 256], n))


def _template_head(s: str, n: int) -> bytes:
    """The first n words of _template_bytes(s), from only as many sentences as
    give n words (the first few, usually): the 512-character head of a simulated
    prompt is 11 sentences on average, each about 0.7 us (ASCII) or 3 us (other
    text). Spans are masked on the whole text first, since a quoted span or code
    block may run past those sentences. Slots never stand next to each other in
    _slot_words or _text_words, so _SLOT_RUN has nothing to merge there."""
    s = _mask_spans(s)
    if s.isascii():
        tokens = _ascii_tokens(s)
        return b" ".join(_first_words(lambda k: tokens.split(b"\x02", k), _slot_words, n))
    text = _nfkc(s)
    return _text_bytes(_first_words(lambda k: _BREAKS.split(text, k), lambda p: _text_words("\x02".join(p)), n))


W = TypeVar("W", str, bytes)


def _first_words(split: Callable[[int], list[W]], words_of: Callable[[list[W]], list[W]], n: int) -> list[W]:
    """The first n of words_of(every sentence), read from the first few: split(k)
    gives the first k sentences and then the rest in one piece."""
    k = 4
    while True:
        sentences = split(k)
        words = words_of(sentences[:k])
        if len(words) >= n or len(sentences) <= k:
            return words[:n]
        k *= 4


# --- SimHash ----------------------------------------------------------------
#
# Features are 3-word shingles. A shingle's hash combines the xxh3 hashes of
# its words as h(w1) ^ bswap(h(w2)) ^ rot32(h(w3)): three different bijections
# of one random hash, so shingles that differ in any word hash independently,
# while each word is hashed once. The combination and the per-bit majority
# run on whole arrays and big integers, never per shingle in Python.

_SHINGLE = 3  # words per shingle; shorter texts hash the whole text once


def _shingle_lanes(b: bytes) -> tuple[bytes, int]:
    """Shingle hashes as native-order 64-bit lanes, and how many there are."""
    words = b.split(b" ") if b else []
    if len(words) < _SHINGLE:
        return (array("Q", [_xxh3_int(b)]).tobytes(), 1) if b else (b"", 0)
    h = array("Q", map(_xxh3_int, words))
    n = len(h) - 2
    second = h[1:-1]
    second.byteswap()
    third = array("I", h[2:].tobytes())
    third[0::2], third[1::2] = third[1::2], third[0::2]
    lanes = (
        int.from_bytes(h[:-2].tobytes(), "little")
        ^ int.from_bytes(second.tobytes(), "little")
        ^ int.from_bytes(third.tobytes(), "little")
    )
    return lanes.to_bytes(8 * n, "little"), n


def _simhash_bytes(b: bytes) -> int:
    lanes, n = _shingle_lanes(b)
    if n == 0:
        return 0
    half = n / 2
    # masks[bit] has `bit` set in each of n bytes.
    masks = [int.from_bytes(m * n, "little") for m in _MASK_BYTES]
    out = 0
    for k in range(8):  # byte k of every lane, then each of its 8 bits
        column = int.from_bytes(lanes[k::8], "little")
        for bit, mask in enumerate(masks):
            if (column & mask).bit_count() > half:
                out |= 1 << (8 * k + bit)
    return out


_MASK_BYTES = [bytes([1 << bit]) for bit in range(8)]


@signal
def simhash(s: str | None) -> int | None:
    """64-bit SimHash over 3-word shingles of the normalised text.

    Bit j is set when more than half of the shingle hashes have bit j set; the
    empty text hashes to 0. The result is an unsigned 64-bit integer.
    """
    if s is None:
        return None
    return _simhash_bytes(_normalized_bytes(s))


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


@signal
def similarity(a: str | None, b: str | None) -> float | None:
    """1 - hamming(simhash a, simhash b) / 64, in [0, 1]."""
    if a is None or b is None:
        return None
    ha = _simhash_bytes(_normalized_bytes(a))
    hb = _simhash_bytes(_normalized_bytes(b))
    return 1.0 - hamming(ha, hb) / 64


# near_dup_key is a min-hash over the SimHash's shingle hashes, not a band of
# the SimHash itself. Measured on 60-word prompts, one changed word flips 3 to
# 14 of the 64 SimHash bits (every bit whose vote is close moves), so a 16-bit
# band kept its value in about 1 case in 10. The smallest shingle hash is the
# same for two texts with probability equal to the Jaccard similarity of their
# shingle sets: about 0.9 for one changed word in 60, near 0 for unrelated text.


@signal
def near_dup_key(s: str | None) -> str | None:
    """Locality-sensitive bucket key: "nd:" + the smallest shingle hash in hex."""
    if s is None:
        return None
    lanes, n = _shingle_lanes(_normalized_bytes(s))
    if n == 0:
        return "nd:" + "0" * 16
    hashes = array("Q")
    hashes.frombytes(lanes)
    return f"nd:{min(hashes):016x}"


# --- cheap features ---------------------------------------------------------


@signal
def prompt_length(s: str | None) -> int | None:
    """Length in characters (code points)."""
    return None if s is None else len(s)


@signal
def word_count(s: str | None) -> int | None:
    """Whitespace-separated words."""
    return None if s is None else len(s.split())


_DIGIT = re.compile(r"\d")
_ASCII_DIGITS = b"0123456789"


@signal
def digit_ratio(s: str | None) -> float | None:
    """Share of characters that are digits (0.0 for empty text)."""
    if s is None:
        return None
    if not s:
        return 0.0
    if s.isascii():
        b = s.encode("ascii")
        return (len(b) - len(b.translate(None, _ASCII_DIGITS))) / len(b)
    return len(_DIGIT.findall(s)) / len(s)


_FENCED = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_INLINE = re.compile(r"`[^`\n]{1,400}`")
# A line looks like code when it starts with a keyword of a common language,
# ends like a statement or a block, holds a two-character operator, is an
# assignment, or is only closing brackets.
_CODE_KEYWORDS = frozenset(
    "def class import from return elif else for while try except with function "
    "const let var public private static fn func package #include #define "
    "select insert update delete create".split()
)
_CODE_OPERATORS = ("=>", "->", "::", "==", "!=", "+=", "&&", "||")
_ASSIGNMENT_OR_CLOSER = re.compile(r"[\w.\[\]]+\s*=\s*\S|[}\])]+[;,]?$")


def _is_code_line(line: str) -> bool:
    stripped = line.strip()
    if not stripped:
        return False
    if stripped[-1] in ";{}" or _ASSIGNMENT_OR_CLOSER.match(stripped):
        return True
    first = stripped.split(None, 1)[0].split("(", 1)[0]
    # Lower-case keywords (SQL also upper-case): prose capitalises "For", "With".
    if first in _CODE_KEYWORDS or (first.isupper() and first.lower() in _CODE_KEYWORDS):
        return True
    return any(op in stripped for op in _CODE_OPERATORS)


@signal
def code_ratio(s: str | None) -> float | None:
    """Share of characters inside code blocks, inline code or code-like lines."""
    if s is None:
        return None
    if not s:
        return 0.0
    code = 0
    if "```" in s:
        code += sum(m.end() - m.start() for m in _FENCED.finditer(s))
        s_rest = _FENCED.sub("\n", s)
    else:
        s_rest = s
    prose: list[str] = []
    for line in s_rest.split("\n"):
        if _is_code_line(line):
            code += len(line)
        else:
            prose.append(line)
    if "`" in s_rest:
        code += sum(m.end() - m.start() for m in _INLINE.finditer("\n".join(prose)))
    return min(1.0, code / len(s))


_QUESTION = re.compile(r"[?？؟]+")


@signal
def question_count(s: str | None) -> int | None:
    """Runs of question marks (Latin, full-width, Arabic): "Why??" counts once."""
    if s is None:
        return None
    if s.isascii() and "??" not in s:
        return s.count("?")  # the common case, without a regex scan
    return len(_QUESTION.findall(s))


@signal
def entropy(s: str | None) -> float | None:
    """Shannon entropy of the character distribution, in bits per character."""
    if s is None:
        return None
    n = len(s)
    if n == 0:
        return 0.0
    h = 0.0
    for c in map(s.count, set(s)):
        p = c / n
        h -= p * math.log2(p)
    return h
