"""Signals: the functions policy rules call on request fields.

`SIGNALS` maps each name the language knows to its implementation: each module
marks its signals with `@signal` (registry.py), and dsl/functions.py declares
their types for the checker. Every signal takes already-evaluated arguments, is
pure and fast, and returns None for a None input (the compiler caches each call
per request).

`compile_phrases` and `compile_cidrs` build the set arguments from data files
when policies load; they raise ValueError naming the file and line.
"""

from __future__ import annotations

from . import net, obfuscation, phrases, prompt, topics  # each module registers its signals
from .net import CidrSet, asn_org, compile_cidrs, ip_in
from .phrases import PhraseSet, compile_phrases, load_phrases
from .registry import SIGNALS
from .topics import TOPICS

__all__ = [
    "SIGNALS",
    "TOPICS",
    "CidrSet",
    "PhraseSet",
    "asn_org",
    "compile_cidrs",
    "compile_phrases",
    "ip_in",
    "load_phrases",
    "net",
    "obfuscation",
    "phrases",
    "prompt",
    "topics",
]
