"""Signals: the functions policy rules call on request fields.

`SIGNALS` maps each name the language knows to its implementation. Every
signal takes already-evaluated arguments, is pure and fast, and returns None
for a None input (the compiler caches each call per request). The checker's
declarations in dsl/functions.py name the same functions with these types:

    fingerprint(string) -> string        template_id(string) -> string
    template_prefix(string, int) -> string
    simhash(string) -> int               near_dup_key(string) -> string
    similarity(string, string) -> float  topic(string) -> string
    prompt_length(string) -> int         word_count(string) -> int
    digit_ratio(string) -> float         code_ratio(string) -> float
    question_count(string) -> int        entropy(string) -> float
    matches_any(string, PhraseSet) -> bool
    match_count(string, PhraseSet) -> int
    ip_prefix(ip, int) -> string         ip_in(ip, CidrSet) -> bool
    geo_country(ip) -> string            geo_asn(ip) -> int
    network_kind(ip) -> string
    encoded_payload(string) -> bool      leet_ratio(string) -> float
    script(string) -> string

`compile_phrases` and `compile_cidrs` build the set arguments from data files
when policies load; they raise ValueError naming the file and line.
"""

from __future__ import annotations

from typing import Any
from collections.abc import Callable

from .obfuscation import encoded_payload, leet_ratio, script
from .net import CidrSet, asn_org, compile_cidrs, geo_asn, geo_country, ip_in, ip_prefix, network_kind
from .phrases import PhraseSet, compile_phrases, load_phrases, match_count, matches_any
from .prompt import (
    code_ratio,
    digit_ratio,
    entropy,
    fingerprint,
    near_dup_key,
    prompt_length,
    question_count,
    similarity,
    simhash,
    template_id,
    template_prefix,
    word_count,
)
from .topics import TOPICS, topic

SIGNALS: dict[str, Callable[..., Any]] = {
    "fingerprint": fingerprint,
    "template_id": template_id,
    "template_prefix": template_prefix,
    "simhash": simhash,
    "near_dup_key": near_dup_key,
    "similarity": similarity,
    "topic": topic,
    "prompt_length": prompt_length,
    "word_count": word_count,
    "digit_ratio": digit_ratio,
    "code_ratio": code_ratio,
    "question_count": question_count,
    "entropy": entropy,
    "encoded_payload": encoded_payload,
    "leet_ratio": leet_ratio,
    "script": script,
    "matches_any": matches_any,
    "match_count": match_count,
    "ip_prefix": ip_prefix,
    "ip_in": ip_in,
    "geo_country": geo_country,
    "geo_asn": geo_asn,
    "network_kind": network_kind,
}

__all__ = [
    "SIGNALS",
    "TOPICS",
    "CidrSet",
    "PhraseSet",
    "asn_org",
    "compile_cidrs",
    "compile_phrases",
    "load_phrases",
    *SIGNALS,
]
