"""Cost of each signal on a 2 KB prompt (English prose with a few slots, one
inline code span), and of the IP signals on a warm and a cold LRU.

Run: .venv/bin/python -m pytest tests/benchmarks/test_bench_signals.py --benchmark-enable
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any
from collections.abc import Callable

import pytest

from policy_engine.compiler import _signal
from policy_engine.context import Context
from policy_engine.signals import SIGNALS, compile_cidrs, compile_phrases
from policy_engine.signals.net import _geo, _prefix, parse_ip
from policy_engine.signals.phrases import load_phrases

DATA = Path(__file__).resolve().parents[2] / "policies" / "data"

_SENTENCE = (
    "Please explain step by step how the function computeTotal in module billing_v2 handles "
    'the 3 edge cases that Alice reported on 2024-05-01. She said "it fails for negative '
    'amounts" and sent `calc(-5)`. Then compare with the approach used by Stripe and write '
    "a short summary for the team. What would you change? "
)
PROMPT_2KB = (_SENTENCE * 10)[:2048]
# The same size in Russian: the non-ASCII path (NFKC, casefold, Unicode regexes).
PROMPT_2KB_RU = (
    "Объясните шаг за шагом, как функция расчёта обрабатывает 3 случая, о которых "
    "сообщила Алиса. Она сказала «не работает». Что бы вы изменили? " * 20
)[:2048]

PROMPT_SIGNALS = [
    "fingerprint",
    "template_id",
    "simhash",
    "near_dup_key",
    "topic",
    "prompt_length",
    "word_count",
    "digit_ratio",
    "code_ratio",
    "question_count",
    "entropy",
    "encoded_payload",
    "leet_ratio",
    "script",
]


@pytest.mark.parametrize("name", PROMPT_SIGNALS)
def test_prompt_signal_2kb(benchmark: Any, name: str) -> None:
    f = SIGNALS[name]
    assert f(PROMPT_2KB) is not None
    benchmark(f, PROMPT_2KB)


@pytest.mark.parametrize("name", ["fingerprint", "template_id", "simhash", "topic", "leet_ratio", "encoded_payload"])
def test_prompt_signal_2kb_non_ascii(benchmark: Any, name: str) -> None:
    f = SIGNALS[name]
    assert f(PROMPT_2KB_RU) is not None
    benchmark(f, PROMPT_2KB_RU)


@pytest.mark.parametrize("text", ["ascii", "russian"])
def test_template_prefix_2kb(benchmark: Any, text: str) -> None:
    prompt = PROMPT_2KB if text == "ascii" else PROMPT_2KB_RU
    assert SIGNALS["template_prefix"](prompt, 8) is not None
    benchmark(SIGNALS["template_prefix"], prompt, 8)


def test_similarity_2kb(benchmark: Any) -> None:
    other = PROMPT_2KB.replace("Stripe", "Adyen")
    assert SIGNALS["similarity"](PROMPT_2KB, other) > 0.8
    benchmark(SIGNALS["similarity"], PROMPT_2KB, other)


@pytest.mark.parametrize("name", ["cot_elicitation", "probe_override"])
def test_phrase_set_2kb(benchmark: Any, name: str) -> None:
    phrases = load_phrases(str(DATA / f"{name}.txt"))
    benchmark(SIGNALS["match_count"], PROMPT_2KB, phrases)


def _cold(f: Callable[..., Any], cache_clear: Callable[[], None], *args: Any) -> Callable[[], Any]:
    def run() -> Any:
        cache_clear()
        return f(*args)

    return run


def test_ip_prefix_warm(benchmark: Any) -> None:
    benchmark(SIGNALS["ip_prefix"], "203.0.113.9", 24)


def test_ip_prefix_cold(benchmark: Any) -> None:
    def clear() -> None:
        _prefix.cache_clear()
        parse_ip.cache_clear()

    benchmark(_cold(SIGNALS["ip_prefix"], clear, "2001:db8:abcd:1234::1", 48))


def test_ip_in_10k_cidrs(benchmark: Any) -> None:
    nets = compile_cidrs([f"{a}.{b}.0.0/16" for a in range(1, 100) for b in range(0, 256, 3)], "bench")
    addrs = itertools.cycle([f"{a}.{a}.1.1" for a in range(1, 250)])
    benchmark(lambda: SIGNALS["ip_in"](next(addrs), nets))


def test_ip_in_10k_cidrs_through_the_signal_cache(benchmark: Any) -> None:
    """As a policy's `ip_in(client.ip, nets)` runs: the per-request cache hashes the
    arguments, the set among them, at every call."""
    nets = compile_cidrs([f"{a}.{b}.0.0/16" for a in range(1, 100) for b in range(0, 256, 3)], "bench")
    addrs = itertools.cycle([f"{a}.{a}.1.1" for a in range(1, 250)])
    benchmark(lambda: _signal(Context(), "ip_in", SIGNALS["ip_in"], (next(addrs), nets)))


def test_geo_country_warm(benchmark: Any) -> None:
    assert SIGNALS["geo_country"]("8.8.8.8") == "US"
    benchmark(SIGNALS["geo_country"], "8.8.8.8")


def test_geo_asn_cold(benchmark: Any) -> None:
    SIGNALS["geo_asn"]("8.8.8.8")  # load the database outside the timing

    def clear() -> None:
        _geo.cache_clear()
        parse_ip.cache_clear()

    benchmark(_cold(SIGNALS["geo_asn"], clear, "52.95.110.1"))


def test_compile_phrases(benchmark: Any) -> None:
    lines = (DATA / "probe_override.txt").read_text(encoding="utf-8").splitlines()
    benchmark(compile_phrases, lines, "probe_override.txt")
